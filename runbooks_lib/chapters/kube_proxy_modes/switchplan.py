"""Part B's plan (pure): the mode in kube-proxy's config text, the prerequisites of a mode on a node
(ip_vs modules and ipvsadm for ipvs; kernel >= 5.13 and nft >= 1.0.1 for nftables), and the switch plan:
the ConfigMap diff (only the ``mode:`` line changes) and the rollout order (workers first, one at a time,
control-plane nodes last). :mod:`.switch` reads the state and runs the plan."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from ...facts import kernel as kernel_facts
from ...kube import NodeInfo, text_diff

NAMESPACE = "kube-system"
CONFIGMAP = "kube-proxy"
CONFIG_KEY = "config.conf"
POD_SELECTOR = "k8s-app=kube-proxy"
MODES = ("iptables", "ipvs", "nftables")
NFT_MIN_KERNEL = (5, 13, 0)
NFT_MIN_TOOL = (1, 0, 1)
IPVS_MODULES = ("ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "nf_conntrack")
WARNINGS = [
    "Switching the proxy mode re-programs every Service rule on each node: while kube-proxy restarts on a "
    "node, new connections from that node to Services can fail for a few seconds (established ones are "
    "mostly kept by conntrack). Switch in a maintenance window.",
    "Calico detects the kube-proxy mode when calico-node starts (it handles IPVS specially): restart the "
    "calico-node pods after the switch, as the seed notes "
    "(kubectl -n kube-system rollout restart daemonset calico-node).",
]


def parse_mode(config_text: str) -> tuple[str, str]:
    """(raw, effective) mode of a KubeProxyConfiguration: raw "" means iptables on Linux."""
    doc = yaml.safe_load(config_text) or {}
    raw = str(doc.get("mode") or "")
    return raw, raw or "iptables"


def set_mode(config_text: str, mode: str) -> str:
    """The same text with only the top-level ``mode:`` line changed (added if missing)."""
    if mode not in MODES:
        raise ValueError(f"unknown kube-proxy mode {mode!r}; one of {', '.join(MODES)}")
    line = f'mode: "{mode}"' if mode else 'mode: ""'
    new, count = re.subn(r'(?m)^mode:.*$', line, config_text)
    if count == 0:
        new = config_text.rstrip("\n") + f"\n{line}\n"
    if parse_mode(new)[1] != mode:
        raise ValueError("could not set the mode in config.conf")
    return new


def configmap(config_text: str) -> dict[str, object]:
    """The desired kube-proxy ConfigMap: only config.conf (kubeconfig.conf stays kubeadm's)."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONFIGMAP, "namespace": NAMESPACE},
            "data": {CONFIG_KEY: config_text}}


def version_tuple(git_version: str) -> tuple[int, int, int]:
    m = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", git_version or "")
    if not m:
        raise ValueError(f"not a Kubernetes version: {git_version!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


@dataclass
class ProxyState:
    """What the cluster says now."""

    mode_raw: str
    mode: str
    config_text: str
    server_version: str
    nodes: list[NodeInfo]
    pods: dict[str, list[str]]  # node -> kube-proxy pod names


@dataclass
class NodeFacts:
    """Per-node facts read over SSH (None: not known)."""

    host: str
    kernel: str | None = None
    ip_vs_modules: list[str] = field(default_factory=list)
    proc_ip_vs: bool | None = None
    ipvsadm_version: str | None = None
    nft_version: tuple[int, ...] | None = None


def parse_ipvsadm_version(text: str) -> str | None:
    m = re.search(r"ipvsadm v(\d+(?:\.\d+)*)", text)
    return m.group(1) if m else None


@dataclass
class Prereq:
    node: str
    check: str
    status: str  # pass | fail | warn
    detail: str


def prerequisites(mode: str, node: NodeInfo, server_version: str, facts: NodeFacts | None = None) -> list[Prereq]:
    """Whether ``node`` can run kube-proxy in ``mode`` (version gates, kernel, modules, tools)."""
    out: list[Prereq] = []
    major, minor, _ = version_tuple(server_version)
    ver = (major, minor)
    kernel_text = (facts.kernel if facts and facts.kernel else None) or node.kernel_version
    kernel = kernel_facts.parse_version(kernel_text) if kernel_text else None
    if mode == "nftables":
        if ver < (1, 29):
            out.append(Prereq(node.name, "nftables mode in this version", "fail",
                              f"Kubernetes {server_version} has no nftables mode (alpha in 1.29, GA in 1.33)"))
        elif ver < (1, 31):
            out.append(Prereq(node.name, "nftables mode in this version", "warn",
                              f"alpha in {major}.{minor}: needs the feature gate NFTablesProxyMode=true on kube-proxy"))
        else:
            out.append(Prereq(node.name, "nftables mode in this version", "pass",
                              f"{'GA' if ver >= (1, 33) else 'beta, on by default'} in {major}.{minor}"))
        if kernel is None:
            out.append(Prereq(node.name, "kernel >= 5.13", "warn", "kernel version unknown"))
        else:
            ok = kernel >= NFT_MIN_KERNEL
            out.append(Prereq(node.name, "kernel >= 5.13", "pass" if ok else "fail", kernel_text or ""))
        if facts is None:
            out.append(Prereq(node.name, "nft >= 1.0.1", "warn", "not checked: no SSH host for this node"))
        elif facts.nft_version is None:
            out.append(Prereq(node.name, "nft >= 1.0.1", "fail", "nft not installed"))
        else:
            v = ".".join(map(str, facts.nft_version))
            out.append(Prereq(node.name, "nft >= 1.0.1", "pass" if facts.nft_version >= NFT_MIN_TOOL else "fail",
                              f"nftables v{v}"))
    elif mode == "ipvs":
        if ver >= (1, 35):
            out.append(Prereq(node.name, "ipvs mode in this version", "warn",
                              f"deprecated since 1.35 (KEP-5495): prefer nftables on {major}.{minor}"))
        else:
            out.append(Prereq(node.name, "ipvs mode in this version", "pass", f"supported in {major}.{minor}"))
        if facts is None:
            out.append(Prereq(node.name, "ip_vs kernel modules", "warn", "not checked: no SSH host for this node"))
        else:
            present = facts.proc_ip_vs or "ip_vs" in facts.ip_vs_modules
            detail = ("loaded: " + ", ".join(facts.ip_vs_modules)) if facts.ip_vs_modules else (
                "/proc/net/ip_vs present (built in)" if facts.proc_ip_vs else
                "ip_vs not loaded and /proc/net/ip_vs absent: modprobe ip_vs (and list it in "
                "/etc/modules-load.d/ipvs.conf) or use a kernel with CONFIG_IP_VS")
            out.append(Prereq(node.name, "ip_vs kernel modules", "pass" if present else "fail", detail))
            out.append(Prereq(node.name, "ipvsadm", "pass" if facts.ipvsadm_version else "warn",
                              f"ipvsadm v{facts.ipvsadm_version}" if facts.ipvsadm_version else
                              "ipvsadm not installed (kube-proxy does not need it; verification does)"))
    else:
        out.append(Prereq(node.name, "iptables mode", "pass", "iptables ships in the kube-proxy image"))
    return out


@dataclass
class SwitchPlan:
    from_mode: str
    to_mode: str
    no_change: bool
    old_config: str
    new_config: str
    diff: str
    order: list[str]
    prereqs: list[Prereq]
    warnings: list[str]
    objects: Any = None  # the ConfigMap change as kube.plan planned it (server-side apply dry run)

    @property
    def blocked(self) -> list[Prereq]:
        return [p for p in self.prereqs if p.status == "fail"]


def rollout_order(nodes: list[NodeInfo]) -> list[str]:
    """Workers first (the first one is the canary), control-plane nodes last; by name within each."""
    return [n.name for n in sorted(nodes, key=lambda n: (n.is_control_plane, n.name))]


def plan_switch(state: ProxyState, to_mode: str, facts: dict[str, NodeFacts] | None = None,
                order: list[str] | None = None) -> SwitchPlan:
    facts = facts or {}
    no_change = state.mode == to_mode and state.mode_raw == to_mode
    new = state.config_text if no_change else set_mode(state.config_text, to_mode)
    prereqs = [p for n in state.nodes for p in prerequisites(to_mode, n, state.server_version, facts.get(n.name))]
    names = [n.name for n in state.nodes]
    chosen = order or rollout_order(state.nodes)
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        raise ValueError(f"rollout order names nodes the cluster does not have: {', '.join(unknown)}")
    warnings = list(WARNINGS)
    if state.mode == to_mode and state.mode_raw != to_mode:
        warnings.insert(0, f'mode is "{state.mode_raw}" (the default, {state.mode}); the plan writes it explicitly')
    return SwitchPlan(state.mode, to_mode, no_change, state.config_text, new,
                      "" if no_change else text_diff(state.config_text, new, f"configmap {NAMESPACE}/{CONFIGMAP}"),
                      chosen, prereqs, warnings)
