"""Part B glue for notebook 03: connect, read, gather node facts over SSH, plan, apply + verify.

Each function records its outcome with ``run.check`` and returns plain data for the notebook's
tables. The cluster logic lives in :mod:`.switch`; this module only composes it with the run's
parameters, hosts and evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ... import kube
from ...kube import KubeClient, KubeError
from ...transport import TargetUnreachable
from . import switch
from .settings import Settings

CLUSTER = "cluster"


@dataclass
class Cluster:
    """What Part B knows about the cluster: the client (None when unreachable), state, node -> host."""

    kc: KubeClient | None
    target: str
    error: str | None = None
    state: switch.ProxyState | None = None
    hosts: dict[str, str] = field(default_factory=dict)  # node name -> inventory host
    facts: dict[str, switch.NodeFacts] = field(default_factory=dict)  # node name -> facts


def connect(run: Any) -> Cluster:
    """``kube.connect(run)``; an unreachable API or a bad kubeconfig is recorded, not raised."""
    try:
        kc = kube.connect(run)
    except TargetUnreachable as exc:
        run.check("cluster API", CLUSTER, "unreachable", str(exc))
        return Cluster(None, "", str(exc))
    except KubeError as exc:
        run.check("cluster API", CLUSTER, "error", str(exc))
        return Cluster(None, "", str(exc))
    target = kc.describe()
    run.check("cluster API", CLUSTER, "pass", target)
    return Cluster(kc, target)


def node_hosts(nodes: list[kube.NodeInfo], hosts: list[Any]) -> dict[str, str]:
    """Map cluster node names to inventory hosts: same name, else same address (InternalIP)."""
    by_name = {h.name: h.name for h in hosts}
    by_addr = {h.address: h.name for h in hosts}
    out: dict[str, str] = {}
    for n in nodes:
        host = by_name.get(n.name) or (by_addr.get(n.internal_ip) if n.internal_ip else None)
        if host:
            out[n.name] = host
    return out


def read(run: Any, cluster: Cluster) -> switch.ProxyState | None:
    """Current mode and version (recorded as info) and the node -> inventory host map."""
    if cluster.kc is None:
        return None
    state = switch.read_state(cluster.kc)
    cluster.state = state
    run.check("kube-proxy mode (current)", CLUSTER, "info",
              f'{state.mode} (config.conf mode: "{state.mode_raw}"), Kubernetes {state.server_version}, '
              f"{len(state.nodes)} node(s)")
    run.figure("kpm_current_mode", {"mode": state.mode, "mode_raw": state.mode_raw,
                                    "server_version": state.server_version,
                                    "nodes": [n.name for n in state.nodes]})
    cluster.hosts = node_hosts(state.nodes, run.params.selected_hosts())
    missing = [n.name for n in state.nodes if n.name not in cluster.hosts]
    if missing:
        run.check("node facts over SSH", ", ".join(missing), "warn",
                  "no inventory host for these nodes: their prerequisites are judged from the API only")
    return state


def gather_facts(run: Any, cluster: Cluster, timeout: float = 120.0) -> pd.DataFrame:
    """Per-node prerequisite facts over SSH (uname, lsmod, /proc/net/ip_vs, ipvsadm, nft), in parallel."""
    rows: list[dict[str, Any]] = []
    if not cluster.hosts:
        return pd.DataFrame(rows, columns=["node", "host", "status", "kernel", "nft", "ip_vs", "ipvsadm"])
    node_of = {h: n for n, h in cluster.hosts.items()}

    with run.recorder.in_step("node facts"):
        outcomes = run.fleet().map(switch.gather_node_facts, timeout=timeout, hosts=list(node_of))
    for host, out in outcomes.items():
        node = node_of[host]
        if out.ok and out.value is not None:
            f = out.value
            cluster.facts[node] = f
            nft = ".".join(map(str, f.nft_version)) if f.nft_version else None
            ipvs = "yes" if (f.proc_ip_vs or "ip_vs" in f.ip_vs_modules) else "no"
            rows.append({"node": node, "host": host, "status": "pass", "kernel": f.kernel, "nft": nft,
                         "ip_vs": ipvs, "ipvsadm": f.ipvsadm_version})
            run.check("node facts over SSH", host, "pass", f"kernel {f.kernel}, nft {nft or 'absent'}, ip_vs {ipvs}")
        else:
            status = "unreachable" if out.unreachable else "error"
            rows.append({"node": node, "host": host, "status": status, "kernel": None, "nft": None,
                         "ip_vs": None, "ipvsadm": None})
            run.check("node facts over SSH", host, status, out.error or "")
    return pd.DataFrame(rows, columns=["node", "host", "status", "kernel", "nft", "ip_vs", "ipvsadm"])


def no_switch(run: Any, cluster: Cluster, recommendation: Any | None) -> str:
    """target_mode unset: the current state and the recommendation; record that nothing was planned."""
    state = cluster.state
    current = state.mode if state else "unknown (no cluster API)"
    rec = getattr(recommendation, "mode", None)
    text = (f"no switch planned: kube_proxy_modes.target_mode is not set. Current mode: {current}"
            + (f"; recommended: {rec}" if rec else "")
            + (f" (set kube_proxy_modes.target_mode={rec} to plan it)" if rec and rec != current else ""))
    run.check("kube-proxy mode switch", CLUSTER, "info", text)
    return text


def plan(run: Any, cluster: Cluster, settings: Settings) -> switch.SwitchPlan | None:
    """The switch plan for ``settings.target_mode``: prerequisites per node (each recorded), the
    ConfigMap diff and the rollout order."""
    if cluster.state is None or settings.target_mode is None:
        return None
    try:
        p = switch.plan_switch(cluster.state, settings.target_mode, cluster.facts, settings.rollout_order or None)
    except ValueError as exc:  # a rollout order naming unknown nodes
        run.check("kube-proxy switch plan", CLUSTER, "error", str(exc))
        return None
    for pr in p.prereqs:
        run.check(f"prerequisite: {pr.check}", pr.node, pr.status, pr.detail)
    if p.no_change:
        run.check("kube-proxy switch plan", CLUSTER, "pass", f"no change: already {p.to_mode}")
    else:
        blocked = f"; BLOCKED on {len(p.blocked)} prerequisite(s)" if p.blocked else ""
        run.check("kube-proxy switch plan", CLUSTER, "info",
                  f"{p.from_mode} -> {p.to_mode}; rollout order {', '.join(p.order)}{blocked}")
    run.figure("kpm_switch_plan", {"from": p.from_mode, "to": p.to_mode, "no_change": p.no_change,
                                   "order": p.order, "blocked": [f"{b.node}: {b.check}" for b in p.blocked]})
    return p


def prereq_frame(p: switch.SwitchPlan) -> pd.DataFrame:
    return pd.DataFrame([vars(x) for x in p.prereqs], columns=["node", "check", "status", "detail"])


def plan_text(p: switch.SwitchPlan) -> str:
    """The plan as text: direction, order, ConfigMap diff."""
    if p.no_change:
        return f"no change: kube-proxy already runs in {p.to_mode} mode"
    return (f"switch kube-proxy {p.from_mode} -> {p.to_mode}\nrollout order (one node at a time, health gate "
            f"after each): {' -> '.join(p.order)}\n\n{p.diff}")


def apply(run: Any, cluster: Cluster, p: switch.SwitchPlan | None, settings: Settings) -> switch.SwitchResult | None:
    """mode=apply: switch (apply_switch refuses without confirm); plan mode: record that nothing changed."""
    if p is None or cluster.kc is None:
        return None
    if run.params.mode != "apply":
        if not p.no_change:
            run.check("kube-proxy switch apply", CLUSTER, "info",
                      f"plan mode: nothing changed (mode=apply and confirm={run.params.cluster_name} to switch)")
        return None
    gate = switch.default_gate if settings.gate == "full" else switch.clusterip_gate
    try:
        return switch.apply_switch(run, cluster.kc, p, gate=gate, pod_timeout=settings.pod_timeout_s,
                                   probe_image=settings.probe_image)
    except KubeError as exc:
        run.check("kube-proxy switch apply", CLUSTER, "error", str(exc))
        return None


def verify(run: Any, cluster: Cluster, p: switch.SwitchPlan, result: switch.SwitchResult | None,
           timeout: float = 120.0) -> pd.DataFrame:
    """After a switch: rules of the new mode on each node with an SSH host, stale old rules, metrics."""
    cols = ["node", "check", "status", "detail"]
    if result is None or result.rolled_back or not result.switched:
        return pd.DataFrame([], columns=cols)
    node_of = {h: n for n, h in cluster.hosts.items() if n in result.switched}
    rows: list[switch.Prereq] = []
    if node_of:
        with run.recorder.in_step("verify"):
            outcomes = run.fleet().map(switch.gather_verify, timeout=timeout, hosts=list(node_of))
        for host, out in outcomes.items():
            if out.ok and out.value is not None:
                rows += switch.verify_node(node_of[host], p.to_mode, p.from_mode, out.value)
            else:
                rows.append(switch.Prereq(node_of[host], "verify", "unreachable" if out.unreachable else "error",
                                          out.error or ""))
    for n in result.switched:
        if n not in cluster.hosts:
            rows.append(switch.Prereq(n, "verify", "warn", "no SSH host for this node: rules not checked"))
    for r in rows:
        run.check(f"verify: {r.check}", cluster.hosts.get(r.node, r.node), r.status, r.detail)
    return pd.DataFrame([vars(r) for r in rows], columns=cols)
