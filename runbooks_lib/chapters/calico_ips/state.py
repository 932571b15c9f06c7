"""Read the Calico install from the cluster API and the CNI conflist from each node (reach layer)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from ...kube import KubeClient, KubeError
from ...transport import Transport
from . import parse
from .floating import Install

Obj = dict[str, Any]
#: Calico kinds read for the plan; all are CRDs (crd.projectcalico.org/v1) on a manifest install
CALICO_KINDS = ("IPPool", "IPAMBlock", "IPReservation", "FelixConfiguration")


@dataclass
class ClusterState:
    """Everything the plan reads from the API (CR lists are None when the CRDs are not served)."""

    server_version: str
    node_ips: dict[str, str]
    calico_node: Obj | None  # the calico-node DaemonSet (kube-system or calico-system)
    installation: Obj | None  # operator.tigera.io/v1 Installation default
    calico_config: Obj | None
    kubeadm_config: Obj | None
    crs: dict[str, list[Obj] | None] = field(default_factory=dict)
    crd_error: str | None = None  # why Calico CRs could not be read
    pod_ips: dict[str, str] = field(default_factory=dict)  # IP -> ns/name of live pods

    @property
    def pools(self) -> list[parse.Pool] | None:
        items = self.crs.get("IPPool")
        return None if items is None else parse.pools(items)

    @property
    def felix_default(self) -> Obj | None:
        return next((o for o in self.crs.get("FelixConfiguration") or [] if o["metadata"]["name"] == "default"), None)

    def install(self) -> Install:
        ds = self.calico_node
        image = ""
        if ds:
            containers = ds["spec"]["template"]["spec"].get("containers") or []
            image = next((c["image"] for c in containers if c.get("name") == "calico-node"), "")
        mode = "operator" if self.installation else "manifest" if ds else "none"
        template = None
        if self.calico_config:
            text = (self.calico_config.get("data") or {}).get("cni_network_config")
            template = parse.cni_config(text) if text else None
        env = parse.env_of(ds)
        felix = self.felix_default
        return Install(mode, parse.image_version(image) if image else None, parse.dataplane(felix, env),
                       parse.encapsulation(self.pools or [], env), template,
                       ((felix or {}).get("spec") or {}).get("floatingIPs"),
                       self.crs.get("FelixConfiguration") is not None)


def _optional(kc: KubeClient, kind: str, name: str, ns: str | None, api_version: str | None = None) -> Obj | None:
    """An object that may be absent, or whose type the server may not serve at all."""
    try:
        return kc.get_or_none(kind, name, ns, api_version)
    except KubeError:
        return None


def read_cluster(kc: KubeClient) -> ClusterState:
    ds = _optional(kc, "DaemonSet", "calico-node", "kube-system") or _optional(kc, "DaemonSet", "calico-node",
                                                                                 "calico-system")
    st = ClusterState(
        server_version=str(kc.server_version().get("gitVersion", "")),
        node_ips={n.name: n.internal_ip or "" for n in kc.nodes()},
        calico_node=ds,
        installation=_optional(kc, "Installation", "default", None, "operator.tigera.io/v1"),
        calico_config=_optional(kc, "ConfigMap", "calico-config", "kube-system"),
        kubeadm_config=_optional(kc, "ConfigMap", "kubeadm-config", "kube-system"))
    for kind in CALICO_KINDS:
        try:
            st.crs[kind] = kc.list_objects(kind, api_version=parse.CRD_API)
        except KubeError as exc:
            st.crs[kind] = None
            st.crd_error = st.crd_error or f"{kind}: {exc}"
    for p in kc.list_objects("Pod"):
        for ip in (p.get("status") or {}).get("podIPs") or []:
            if not (p.get("spec") or {}).get("hostNetwork"):
                st.pod_ips[ip["ip"]] = f"{p['metadata']['namespace']}/{p['metadata']['name']}"
    return st


def read_conflist(transport: Transport) -> parse.CniConfig:
    """The node's /etc/cni/net.d/10-calico.conflist (as install-cni wrote it)."""
    r = transport.run(f"cat {parse.CONFLIST}", sudo=True)
    if not r.ok:
        return parse.CniConfig(error=f"{parse.CONFLIST}: {(r.stderr or r.stdout).strip() or f'exit {r.exit_code}'}")
    return parse.cni_config(r.stdout)


def read_nat(transport: Transport) -> str:
    """``iptables-save -t nat`` on a node (Felix's cali-fip-* chains live there); "" when it fails."""
    r = transport.run("iptables-save -t nat", sudo=True)
    return r.stdout if r.ok else ""


def reach(transport: Transport, ip: str, port: int) -> tuple[bool, str]:
    """An HTTP answer (status < 500) from ip:port, asked from a node with curl (5 s). A bare TCP
    connect proves nothing: a transparent proxy or a NAT box may accept any connection."""
    ipaddress.ip_address(ip)  # never a shell string from anywhere else
    r = transport.run(f"curl -sS -m 5 -o /dev/null -w '%{{http_code}}' http://{ip}:{int(port)}/", sudo=False)
    code = r.stdout.strip()
    ok = r.ok and code.isdigit() and 100 <= int(code) < 500
    return ok, f"HTTP {code}" if r.ok else f"exit {r.exit_code} {(r.stderr or '').strip()[:120]}"
