"""The HA endpoint's configs (pure): keepalived + HAProxy on the control planes, or kube-vip's static pod.

Shapes follow kubeadm's HA guide (kubernetes/kubeadm docs/ha-considerations.md: keepalived with a
check script on the VIP, HAProxy in TCP mode on 8443 balancing to every apiserver's 6443) and
kube-vip's static-pod manifest (ARP mode). On Kubernetes ≥ 1.29 kube-vip must use super-admin.conf
during `kubeadm init` on the first control plane only (admin.conf has no rights before RBAC exists),
then admin.conf again (kube-vip/kube-vip#684; KubeKey does this).
"""

from __future__ import annotations

import yaml

from .config import Version, endpoint_host, endpoint_with_port

KUBE_VIP_IMAGE = "ghcr.io/kube-vip/kube-vip:v0.8.9"


def _port(endpoint: str) -> int:
    full = endpoint_with_port(endpoint) or ""
    return int(full.rsplit(":", 1)[1])


def keepalived(endpoint: str, interface: str, priority: int, router_id: int = 51) -> str:
    vip = endpoint_host(endpoint)
    return (
        "global_defs {\n    router_id LVS_DEVEL\n}\n"
        "vrrp_script check_apiserver {\n  script \"/etc/keepalived/check_apiserver.sh\"\n"
        "  interval 3\n  weight -2\n  fall 10\n  rise 2\n}\n\n"
        "vrrp_instance VI_1 {\n"
        f"    state {'MASTER' if priority >= 101 else 'BACKUP'}\n    interface {interface}\n"
        f"    virtual_router_id {router_id}\n    priority {priority}\n"
        "    authentication {\n        auth_type PASS\n        auth_pass <keepalived password>\n    }\n"
        f"    virtual_ipaddress {{\n        {vip}\n    }}\n"
        "    track_script {\n        check_apiserver\n    }\n}\n"
    )


def haproxy(endpoint: str, control_planes: list[tuple[str, str]]) -> str:
    port = _port(endpoint)
    servers = "\n".join(f"    server {n} {a}:6443 check verify none" for n, a in control_planes)
    return (
        "global\n    log stdout format raw local0\n    daemon\n\n"
        "defaults\n    mode http\n    log global\n    option httplog\n    option dontlognull\n"
        "    timeout connect 5s\n    timeout client 35s\n    timeout server 35s\n\n"
        f"frontend apiserver\n    bind *:{port}\n    mode tcp\n    option tcplog\n"
        "    default_backend apiserverbackend\n\n"
        "backend apiserverbackend\n    option httpchk\n    http-check connect ssl\n"
        "    http-check send meth GET uri /healthz\n    http-check expect status 200\n"
        "    mode tcp\n    balance roundrobin\n" + servers + "\n"
    )


def kube_vip(endpoint: str, interface: str, version: Version, first: bool) -> str:
    """kube-vip's static pod; on the first control plane of ≥ 1.29 it mounts super-admin.conf for init."""
    kubeconfig = "/etc/kubernetes/super-admin.conf" if first and (version.major, version.minor) >= (1, 29) \
        else "/etc/kubernetes/admin.conf"
    env = {"vip_arp": "true", "port": str(_port(endpoint)), "vip_interface": interface, "vip_cidr": "32",
           "cp_enable": "true", "cp_namespace": "kube-system", "vip_leaderelection": "true",
           "vip_leaseduration": "5", "vip_renewdeadline": "3", "vip_retryperiod": "1",
           "address": endpoint_host(endpoint) or ""}
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "kube-vip", "namespace": "kube-system"},
        "spec": {
            "containers": [{
                "name": "kube-vip", "image": KUBE_VIP_IMAGE, "imagePullPolicy": "IfNotPresent",
                "args": ["manager"], "env": [{"name": k, "value": v} for k, v in env.items()],
                "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
                "volumeMounts": [{"mountPath": "/etc/kubernetes/admin.conf", "name": "kubeconfig"}],
            }],
            "hostAliases": [{"hostnames": ["kubernetes"], "ip": "127.0.0.1"}],
            "hostNetwork": True,
            "volumes": [{"name": "kubeconfig", "hostPath": {"path": kubeconfig}}],
        },
    }
    return yaml.safe_dump(pod, sort_keys=False)


def render(ha: str, endpoint: str | None, interface: str, control_planes: list[tuple[str, str]],
           version: Version) -> dict[str, str]:
    """{file on the control planes: content} for the chosen HA mode ({} for none / no endpoint)."""
    if not endpoint or ha == "none":
        return {}
    if ha == "keepalived-haproxy":
        return {"/etc/keepalived/keepalived.conf (first control plane)": keepalived(endpoint, interface, 101),
                "/etc/keepalived/keepalived.conf (others)": keepalived(endpoint, interface, 100),
                "/etc/haproxy/haproxy.cfg": haproxy(endpoint, control_planes)}
    return {"/etc/kubernetes/manifests/kube-vip.yaml (first control plane, during init)":
            kube_vip(endpoint, interface, version, True),
            "/etc/kubernetes/manifests/kube-vip.yaml (other control planes; first after init)":
            kube_vip(endpoint, interface, version, False)}
