"""Consistency of the desired cluster before any host is asked (pure): networks, HA endpoint, versions,
images. Each function returns findings ``(check, status, detail)``."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .config import Version, endpoint_host, endpoint_with_port

Finding = tuple[str, str, str]

#: pause / etcd / CoreDNS that kubeadm's constants name for each minor's first release
#: (cmd/kubeadm/app/constants/constants.go; `kubeadm config images list` is authoritative for a patch)
IMAGES: dict[str, tuple[str, str, str]] = {
    "1.28": ("3.9", "3.5.9-0", "v1.10.1"),
    "1.29": ("3.9", "3.5.10-0", "v1.11.1"),
    "1.30": ("3.9", "3.5.12-0", "v1.11.1"),
    "1.31": ("3.10", "3.5.15-0", "v1.11.3"),
    "1.32": ("3.10", "3.5.16-0", "v1.11.3"),
    "1.33": ("3.10", "3.5.21-0", "v1.12.0"),
    "1.34": ("3.10.1", "3.6.4-0", "v1.12.1"),
}
DEFAULT_REGISTRY = "registry.k8s.io"


def _net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=False)


def networks(pod: str, service: str, node_addresses: dict[str, str], calico_pool: str | None) -> list[Finding]:
    """Pod vs service vs node networks must not overlap; the pod subnet is Calico's pool."""
    out: list[Finding] = []
    p, s = _net(pod), _net(service)
    if p.overlaps(s):
        out.append(("networks.overlap", "fail", f"pod subnet {pod} overlaps service subnet {service}"))
    clash = [f"{n} ({a})" for n, a in node_addresses.items()
             if any(ipaddress.ip_address(a) in net for net in (p, s))]
    if clash:
        out.append(("networks.nodes", "fail", f"node addresses inside the pod or service subnet: {', '.join(clash)}"))
    if not any(f[0] == "networks.overlap" for f in out) and not clash:
        out.append(("networks.overlap", "pass", f"pod {pod}, service {service} and the {len(node_addresses)} "
                                                "node address(es) are disjoint"))
    if calico_pool is None:
        out.append(("networks.calico_pool", "pass", f"calico_ips.pod_subnet not set: chapter 04 takes kubeadm's "
                                                    f"podSubnet {pod} as CALICO_IPV4POOL_CIDR"))
    elif _net(calico_pool) != p:
        out.append(("networks.calico_pool", "fail", f"Calico pool {calico_pool} is not the pod subnet {pod}"))
    else:
        out.append(("networks.calico_pool", "pass", f"Calico pool = pod subnet {pod}"))
    return out


def endpoint(control_planes: dict[str, str], endpoint_value: str | None, ha: str) -> list[Finding]:
    """More than one control plane needs a controlPlaneEndpoint that is not one node's own address."""
    host = endpoint_host(endpoint_value)
    own = {a: n for n, a in control_planes.items()} | {n: n for n in control_planes}
    if len(control_planes) > 1 and not host:
        return [("ha.endpoint", "fail", f"{len(control_planes)} control planes but no "
                 "kubeadm.control_plane_endpoint: joining a second control plane is refused by kubeadm "
                 "('doesn't have a stable controlPlaneEndpoint address')")]
    if host and host in own:
        status = "fail" if len(control_planes) > 1 else "warn"
        return [("ha.endpoint", status, f"controlPlaneEndpoint {host} is {own[host]}'s own address: a single "
                 "point of failure; use a VIP (keepalived + HAProxy or kube-vip) or a load balancer")]
    if not host:
        return [("ha.endpoint", "info", "one control plane, no controlPlaneEndpoint: fine for a single "
                 "control plane; set one now if control planes will be added later (it cannot be added "
                 "without re-issuing certificates)")]
    port = (endpoint_with_port(endpoint_value) or ":6443").rsplit(":", 1)[1]
    if ha == "keepalived-haproxy" and port == "6443":
        return [("ha.endpoint", "fail", "HAProxy runs on the control planes, where kube-apiserver already binds "
                 "6443: give the endpoint another port (kubeadm's HA guide uses 8443), e.g. VIP:8443")]
    if ha == "none":
        return [("ha.endpoint", "info", f"controlPlaneEndpoint {host} is served outside this runbook "
                 "(kubeadm.ha: none)")]
    return [("ha.endpoint", "pass", f"controlPlaneEndpoint {host} served by {ha}")]


def skew(target: Version, kubeadm: str | None, kubelet: str | None, host: str) -> list[Finding]:
    """kubeadm must be the target minor; kubelet at most 3 minors older (and never newer)."""
    out: list[Finding] = []
    for tool, found in (("kubeadm", kubeadm), ("kubelet", kubelet)):
        if found is None:
            continue
        try:
            v = Version.parse(found)
        except ValueError:
            out.append((f"version.{tool}", "warn", f"{host}: cannot read {tool} version {found!r}"))
            continue
        diff = target.minor - v.minor
        if tool == "kubeadm" and diff != 0:
            out.append(("version.kubeadm", "fail", f"{host}: kubeadm {found} cannot deploy {target.tag} "
                        "(install the target's kubeadm first)"))
        elif tool == "kubelet" and (diff < 0 or diff > 3):
            out.append(("version.kubelet", "fail", f"{host}: kubelet {found} vs target {target.tag}: outside the "
                        "supported skew (kubelet may be up to 3 minors older, never newer)"))
        else:
            out.append((f"version.{tool}", "pass", f"{host}: {tool} {found} fits {target.tag}"))
    return out


@dataclass
class ImageList:
    images: list[str]
    pause: str | None
    note: str


def images(version: Version, repository: str) -> ImageList:
    """The images kubeadm pulls for ``version`` from ``repository`` (CoreDNS path rule included)."""
    repo = repository.rstrip("/")
    tags = IMAGES.get(version.minor_str)
    core = [f"{repo}/{c}:{version.tag}" for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler",
                                                   "kube-proxy")]
    if tags is None:
        return ImageList(core, None, f"pause/etcd/CoreDNS tags for {version.minor_str} are not in this runbook's "
                                     f"table: `kubeadm config images list --kubernetes-version {version.tag} "
                                     f"--image-repository {repo}` on a node with kubeadm is authoritative")
    pause, etcd, coredns = tags
    # kubeadm: registry.k8s.io keeps CoreDNS under coredns/coredns; a custom repository gets <repo>/coredns
    dns = f"{repo}/coredns/coredns:{coredns}" if repo == DEFAULT_REGISTRY else f"{repo}/coredns:{coredns}"
    pause_image = f"{repo}/pause:{pause}"
    return ImageList(core + [pause_image, f"{repo}/etcd:{etcd}", dns], pause_image,
                     f"tags of {version.minor_str}.0 (a patch release may move etcd/CoreDNS)")


def sandbox(expected: str | None, configured: str | None, host: str) -> Finding:
    """containerd's sandbox_image vs the pause image kubeadm expects (kubeadm warns on a mismatch)."""
    if expected is None:
        return ("images.pause", "info", f"{host}: pause image for this version unknown here; containerd has "
                                        f"{configured or 'no sandbox_image'}")
    if configured is None:
        return ("images.pause", "info", f"{host}: no containerd sandbox_image set (chapter 01 sets {expected})")
    if configured == expected:
        return ("images.pause", "pass", f"{host}: containerd sandbox_image {configured}")
    return ("images.pause", "warn", f"{host}: containerd sandbox_image {configured} but kubeadm expects {expected} "
                                    "(kubeadm warns; set system_init.pause_version and apply chapter 01)")


def proxy_mode(mode: str, version: Version) -> Finding:
    if mode == "ipvs" and (version.major, version.minor) >= (1, 35):
        return ("kube_proxy.mode", "warn", f"ipvs mode is deprecated since 1.35 (target {version.minor_str}): "
                                           "prefer nftables; chapter 03 benchmarks and switches modes")
    return ("kube_proxy.mode", "pass", f"kube-proxy mode {mode}")
