"""Pure parsers for Calico: the CNI conflist, calico-config's template, IPPools, IPAM blocks,
kubeadm's podSubnet, the calico-node image, and the Calico ↔ Kubernetes support table."""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

Obj = dict[str, Any]
Net = ipaddress.IPv4Network | ipaddress.IPv6Network
Addr = ipaddress.IPv4Address | ipaddress.IPv6Address

CONFLIST = "/etc/cni/net.d/10-calico.conflist"
CRD_API = "crd.projectcalico.org/v1"

#: Calico minor -> (oldest, newest) Kubernetes minor Tigera tests it on ("System requirements for
#: Kubernetes" of each versioned docs page). Sources in docs/calico-ips.md; 3.28: 1.27-1.30,
#: 3.29: 1.29-1.32 (both quoted from Tigera's pages), 3.31-3.33 as summarised by kupre v0.5.0.
SUPPORT: dict[tuple[int, int], tuple[tuple[int, int], tuple[int, int]]] = {
    (3, 22): ((1, 21), (1, 23)),
    (3, 26): ((1, 24), (1, 27)),
    (3, 28): ((1, 27), (1, 30)),
    (3, 29): ((1, 29), (1, 32)),
    (3, 31): ((1, 32), (1, 35)),
    (3, 32): ((1, 34), (1, 36)),
    (3, 33): ((1, 35), (1, 37)),
}
#: FelixConfiguration floatingIPs exists (default Disabled) from these versions (calico PR #5861)
FELIX_FIP_SWITCH = ((3, 21, 5), (3, 22, 2), (3, 23, 0))


@dataclass
class CniConfig:
    """The calico plugin of a CNI conflist (or of calico-config's cni_network_config template)."""

    ipam_type: str | None = None
    policy_type: str | None = None
    feature_control: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # unparsable, or no calico plugin

    @property
    def floating_ips(self) -> bool:
        return self.feature_control.get("floating_ips") is True


_PLACEHOLDER = re.compile(r"(?<![\"\w])(__[A-Z0-9_]+__)(?![\"\w])")


def _load_template(text: str) -> Any:
    """JSON with install-cni's bare placeholders (``"mtu": __CNI_MTU__``) quoted so it parses."""
    return json.loads(_PLACEHOLDER.sub(r'"\1"', text))


def cni_config(text: str) -> CniConfig:
    """The calico plugin's ipam/policy/feature_control from a conflist or its template."""
    try:
        doc = _load_template(text)
    except ValueError as exc:
        return CniConfig(error=f"not JSON: {exc}")
    plugins = doc.get("plugins") if isinstance(doc, dict) else None
    plugins = plugins if isinstance(plugins, list) else [doc]
    for p in plugins:
        if isinstance(p, dict) and p.get("type") == "calico":
            return CniConfig((p.get("ipam") or {}).get("type"), (p.get("policy") or {}).get("type"),
                             dict(p.get("feature_control") or {}))
    return CniConfig(error="no plugin of type calico")


def with_floating_ips(text: str) -> str:
    """calico-config's cni_network_config with ``feature_control.floating_ips: true`` on the calico
    plugin; placeholders are kept bare, as install-cni expects them."""
    doc = _load_template(text)
    for p in doc.get("plugins", []):
        if p.get("type") == "calico":
            p.setdefault("feature_control", {})["floating_ips"] = True
    bare = set(_PLACEHOLDER.findall(text))
    out = json.dumps(doc, indent=2)
    return re.sub(r'"(__[A-Z0-9_]+__)"', lambda m: m.group(1) if m.group(1) in bare else m.group(0), out)


@dataclass
class Pool:
    name: str
    cidr: Net
    node_selector: str = "all()"
    allowed_uses: list[str] = field(default_factory=lambda: ["Workload", "Tunnel"])
    ipip_mode: str = "Never"
    vxlan_mode: str = "Never"
    disabled: bool = False

    @property
    def manual_only(self) -> bool:
        """``!all()``: Calico never auto-assigns from it; only explicit requests (ipAddrs) use it."""
        return self.node_selector.replace(" ", "") == "!all()"


def pools(objs: list[Obj]) -> list[Pool]:
    out = []
    for o in objs:
        spec = o.get("spec") or {}
        out.append(Pool(o["metadata"]["name"], ipaddress.ip_network(spec.get("cidr", ""), strict=False),
                        spec.get("nodeSelector") or "all()", list(spec.get("allowedUses") or ["Workload", "Tunnel"]),
                        spec.get("ipipMode") or "Never", spec.get("vxlanMode") or "Never",
                        bool(spec.get("disabled"))))
    return out


def reserved(objs: list[Obj]) -> list[Net]:
    """CIDRs of IPReservation objects (``spec.reservedCIDRs``)."""
    return [ipaddress.ip_network(c, strict=False) for o in objs for c in (o.get("spec") or {}).get("reservedCIDRs") or []]


def allocated_in_blocks(ip: Addr, blocks: list[Obj]) -> str | None:
    """The IPAM handle holding ``ip`` per the IPAMBlocks (``spec.allocations[i]`` indexes
    ``spec.attributes``; null = free), or None when no block allocates it."""
    for b in blocks:
        spec = b.get("spec") or {}
        net = ipaddress.ip_network(spec.get("cidr", "0.0.0.0/32"), strict=False)
        if ip.version != net.version or ip not in net:
            continue
        allocs = spec.get("allocations") or []
        i = int(ip) - int(net.network_address)
        if i < len(allocs) and allocs[i] is not None:
            attrs = spec.get("attributes") or []
            a = attrs[allocs[i]] if isinstance(allocs[i], int) and allocs[i] < len(attrs) else {}
            return str(a.get("handle_id") or f"block {b['metadata']['name']}")
    return None


def kubeadm_pod_subnet(cm: Obj | None) -> str | None:
    """``networking.podSubnet`` of kubeadm-config's ClusterConfiguration."""
    text = ((cm or {}).get("data") or {}).get("ClusterConfiguration") or ""
    doc = yaml.safe_load(text) if text else None
    return ((doc or {}).get("networking") or {}).get("podSubnet") if isinstance(doc, dict) else None


def image_version(image: str) -> tuple[int, int, int] | None:
    """``docker.io/calico/node:v3.28.1`` -> (3, 28, 1)."""
    m = re.search(r":v?(\d+)\.(\d+)(?:\.(\d+))?", image.rsplit("/", 1)[-1])
    return (int(m[1]), int(m[2]), int(m[3] or 0)) if m else None


def vstr(v: tuple[int, int, int]) -> str:
    return "v" + ".".join(map(str, v))


def minor(version: str) -> tuple[int, int] | None:
    m = re.match(r"v?(\d+)\.(\d+)", version.strip())
    return (int(m[1]), int(m[2])) if m else None


def support(calico: tuple[int, int, int], kubernetes: str) -> tuple[str, str]:
    """(status, detail) of this Calico on this Kubernetes per :data:`SUPPORT`."""
    k = minor(kubernetes)
    row = SUPPORT.get(calico[:2])
    cv = vstr(calico)
    if k is None:
        return "warn", f"Kubernetes version {kubernetes!r} not understood"
    if row is None:
        return "warn", f"Calico {cv}: no entry in the chapter's support table; check Tigera's requirements page"
    lo, hi = row
    span = f"{lo[0]}.{lo[1]}-{hi[0]}.{hi[1]}"
    if lo <= k <= hi:
        return "pass", f"Calico {cv} is tested on Kubernetes {span}; the cluster runs {k[0]}.{k[1]}"
    return "fail", f"Calico {cv} is tested on Kubernetes {span} only; the cluster runs {k[0]}.{k[1]}: upgrade Calico"


def felix_has_fip_switch(v: tuple[int, int, int]) -> bool:
    """Felix's floatingIPs switch (default Disabled) exists in this Calico version."""
    return any(v[:2] == s[:2] and v >= s for s in FELIX_FIP_SWITCH) or v[:2] > (3, 23)


def env_of(ds: Obj | None, container: str = "calico-node") -> dict[str, str]:
    """Literal env values of a container of a DaemonSet (valueFrom entries are skipped)."""
    spec = ((((ds or {}).get("spec") or {}).get("template") or {}).get("spec") or {})
    for c in spec.get("containers") or []:
        if c.get("name") == container:
            return {e["name"]: str(e["value"]) for e in c.get("env") or [] if "value" in e}
    return {}


def dataplane(felix: Obj | None, env: dict[str, str]) -> str:
    """bpf / nftables / iptables from FelixConfiguration default, else calico-node's env."""
    spec = (felix or {}).get("spec") or {}
    if spec.get("bpfEnabled") is True or env.get("FELIX_BPFENABLED", "").lower() == "true":
        return "bpf"
    if (spec.get("nftablesMode") or env.get("FELIX_NFTABLESMODE", "")) == "Enabled":
        return "nftables"
    return "iptables"


def encapsulation(pool_list: list[Pool], env: dict[str, str]) -> str:
    """IPIP / VXLAN / none from the pools (else the env the first pool is created from)."""
    modes = {("IPIP" if p.ipip_mode != "Never" else "VXLAN" if p.vxlan_mode != "Never" else "none")
             for p in pool_list if not p.disabled}
    if not pool_list:
        if env.get("CALICO_IPV4POOL_VXLAN", "Never") != "Never":
            modes = {"VXLAN"}
        elif env.get("CALICO_IPV4POOL_IPIP", "Always") != "Never":
            modes = {"IPIP"}
        else:
            modes = {"none"}
    return "+".join(sorted(modes))


def overlaps(a: Net, b: Net) -> bool:
    return a.version == b.version and a.overlaps(b)
