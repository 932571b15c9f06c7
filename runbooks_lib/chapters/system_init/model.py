"""System init's model: the nodes, the wanted state (from parameters) and one Finding per check."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ...changes import Change, NoChange
from .gather import BRIDGE_KEYS
from .settings import Settings

MODULES = {
    "iptables": ["overlay", "br_netfilter", "nf_conntrack"],
    "ipvs": ["overlay", "br_netfilter", "nf_conntrack", "ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh"],
    "nftables": ["overlay", "br_netfilter", "nf_conntrack", "nf_tables"],
}


@dataclass
class Node:
    name: str
    address: str
    roles: list[str]
    lab: bool


@dataclass
class Desired:
    """The wanted state, from parameters (the same for every node)."""

    settings: Settings
    kubernetes_version: str
    sandbox_image: str
    proxy_mode: str
    cluster: list[tuple[str, str]]          # (name, IP) for /etc/hosts
    unnamed: list[str] = field(default_factory=list)   # inventory hosts whose address is not an IP
    cluster_name: str = ""                               # what confirm must repeat for destructive changes

    @property
    def modules(self) -> list[str]:
        return MODULES[self.proxy_mode]

    @property
    def packages(self) -> list[str]:
        return list(dict.fromkeys(self.settings.packages + self.settings.packages_extra))

    @property
    def tools(self) -> list[str]:
        return list(dict.fromkeys(self.settings.required_tools + self.settings.recommended_tools))

    def sysctl_keys(self) -> list[str]:
        return list(dict.fromkeys(["net.ipv4.ip_forward", *BRIDGE_KEYS, "vm.swappiness",
                                   *self.settings.sysctl_extra, *self.settings.sysctl_minimum]))


@dataclass
class Finding:
    check: str
    status: str
    detail: str
    change: Change | None = None


def from_change(check: str, result: Change | NoChange, problem: str = "") -> Finding:
    """pass for a NoChange; drift (apply would change this) with the change attached otherwise."""
    if isinstance(result, NoChange):
        return Finding(check, "pass", result.reason)
    actionable = bool(result.commands or result.path)
    return Finding(check, "drift", f"{problem + '; ' if problem else ''}planned: {result.summary}",
                   result if actionable else None)


def desired_from(params: object) -> Desired:
    """Desired state from a Params object (duck-typed to keep this module free of I/O)."""
    p = params
    s: Settings = p.system_init  # type: ignore[attr-defined]
    repo = s.image_repository or p.kubeadm.image_repository  # type: ignore[attr-defined]
    sandbox = s.sandbox_image or f"{repo.rstrip('/')}/pause:{s.pause_version}"
    kpm = getattr(p, "kube_proxy_modes", None)
    mode = getattr(kpm, "target_mode", None) or s.kube_proxy_mode
    cluster, unnamed = [], []
    for h in p.hosts:  # type: ignore[attr-defined]
        try:
            ipaddress.ip_address(h.address)
            cluster.append((h.name, h.address))
        except ValueError:
            unnamed.append(h.name)
    return Desired(s, p.kubernetes_version, sandbox, mode, cluster, unnamed,  # type: ignore[attr-defined]
                   p.cluster_name)  # type: ignore[attr-defined]
