"""Notebook 03's glue: connect, read, node facts over SSH, the benchmark (Part A, apply only), the
recommendation, and the switch (Part B): plan, apply + verify.

Each function records its outcome with ``run.check`` and returns plain data for the notebook's
tables; an error it raises is recorded as an ``error`` check, with its traceback in the evidence
under the step that raised (:meth:`Run.guarded`), and the notebook goes on. The cluster logic lives in
:mod:`.switch`, the benchmark in :mod:`.benchmark`; this module composes them with the run's
parameters, hosts and evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ... import kube
from ...facts import lab as labfacts
from ...facts.kernel import parse_version as parse_kernel_version
from ...inventory import node_hosts
from ...kube import KubeClient, KubeError
from ...transport import LocalTransport, TargetUnreachable, Transport
from ..system_init.labproof import lab_known_hosts, missing_proof
from . import benchmark, switch, switchplan, verifyrules
from .recommend import Recommendation, recommend
from .settings import Settings

CLUSTER = "cluster"
@dataclass
class Cluster:
    """What Part B knows about the cluster: the client (None when unreachable), state, node -> host."""

    kc: KubeClient | None
    target: str
    error: str | None = None
    state: switchplan.ProxyState | None = None
    service_count: int | None = None  # Services in the cluster (all namespaces), from the API
    hosts: dict[str, str] = field(default_factory=dict)  # node name -> inventory host
    facts: dict[str, switchplan.NodeFacts] = field(default_factory=dict)  # node name -> facts


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




def read(run: Any, cluster: Cluster) -> switchplan.ProxyState | None:
    """Current mode, version and Service count (recorded as info) and the node -> inventory host map."""
    if cluster.kc is None:
        return None
    with run.guarded("kube-proxy mode (current)", CLUSTER):
        cluster.state = switch.read_state(cluster.kc)
        cluster.service_count = len(cluster.kc.list_objects("Service"))
    state = cluster.state
    if state is None:
        return None
    run.check("kube-proxy mode (current)", CLUSTER, "info",
              f'{state.mode} (config.conf mode: "{state.mode_raw}"), Kubernetes {state.server_version}, '
              f"{len(state.nodes)} node(s), {cluster.service_count} Services")
    run.figure("kpm_current_mode", {"mode": state.mode, "mode_raw": state.mode_raw,
                                    "server_version": state.server_version, "services": cluster.service_count,
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

    outcomes: dict[str, Any] = {}
    with run.guarded("node facts over SSH", ", ".join(node_of)):
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


# ----------------------------------------------------------------------------- Part A: benchmark

@dataclass
class BenchPlan:
    """What the benchmark would run, and where: decided from the parameters alone."""

    host: str | None  # inventory host name, "local", or None: no host, the benchmark is not run
    why: str  # how the host was chosen, or why there is none
    settings: Settings
    error: str | None = None  # a bench_host that names no selected host

    def text(self) -> str:
        s = self.settings
        where = f"on {self.host} ({self.why})" if self.host else f"nowhere: {self.why}"
        return (f"grid N={', '.join(map(str, s.grid))} Services × {', '.join(s.modes)} ({s.endpoints} endpoints "
                f"each), {s.connections} new connections per point in {s.probe_rounds} interleaved rounds, "
                f"{where}, as root in throwaway network namespaces kpm-<run id>-*")


def lab_proof_missing(transport: Transport) -> list[str]:
    """What is missing for the host to prove a lab node (system-init's proof: a container, the lab's
    marker naming it, a host key in that lab's known_hosts); [] when proven."""
    res = transport.run(f"hostname; {labfacts.COMMAND}", timeout=30)
    hostname, _, rest = res.stdout.partition("\n")
    return missing_proof(labfacts.parse(rest), hostname.strip(), lab_known_hosts)


def plan_benchmark(run: Any, settings: Settings) -> BenchPlan:
    """The benchmark host: ``bench_host`` when set (an inventory host or ``local``), else the lab's
    first node when the target is the lab, else none (never a production node by default)."""
    hosts = [h.name for h in run.params.selected_hosts()]
    if settings.bench_host == "local":
        return BenchPlan("local", "kube_proxy_modes.bench_host: this machine", settings)
    if settings.bench_host:
        if settings.bench_host not in hosts:
            return BenchPlan(None, "", settings, f"kube_proxy_modes.bench_host {settings.bench_host!r} is not among "
                                                 f"the selected hosts: {', '.join(hosts) or '-'}")
        return BenchPlan(settings.bench_host, "kube_proxy_modes.bench_host", settings)
    if run.params.is_lab and hosts:
        return BenchPlan(hosts[0], "the lab's first node; kube_proxy_modes.bench_host not set", settings)
    return BenchPlan(None, "kube_proxy_modes.bench_host is not set and the target is not the lab; name a spare "
                           "node (or local) to benchmark on", settings)


def bench_transport(run: Any, plan: BenchPlan) -> Transport:
    """The transport of the planned bench host (``local``: this machine)."""
    if plan.host is None:
        raise ValueError(plan.error or plan.why)
    if plan.host == "local":
        run.add_target("bench host: this machine (local, network namespaces)")
        return LocalTransport("local", recorder=run.recorder)
    run.add_target(f"bench host {plan.host} (SSH)")
    return run.transport(plan.host)


def dataplane_benchmark(run: Any, settings: Settings,
                        progress: benchmark.Progress | None = benchmark.print_progress) -> benchmark.BenchmarkResult | None:
    """Part A as the run's mode allows: plan mode records what would run and where (nothing is
    contacted); apply runs it on the planned host and records the checks. None when nothing ran."""
    result: benchmark.BenchmarkResult | None = None
    with run.guarded("kube-proxy benchmark", settings.bench_host or "-"):
        result = _part_a(run, settings, progress)
    return result


def benchmark_note(run: Any) -> str:
    """The last benchmark check's detail: what plan mode would run, or why nothing ran."""
    notes = [c.detail for c in run.checks if c.check.startswith("kube-proxy benchmark")]
    return notes[-1] if notes else ""


def _part_a(run: Any, settings: Settings, progress: benchmark.Progress | None) -> benchmark.BenchmarkResult | None:
    plan = plan_benchmark(run, settings)
    run.figure("kpm_benchmark_plan", {"host": plan.host, "why": plan.why, "grid": settings.grid,
                                      "modes": list(settings.modes), "connections": settings.connections,
                                      "probe_rounds": settings.probe_rounds, "runs": run.params.mode == "apply"})
    if plan.error:
        run.check("kube-proxy benchmark host", settings.bench_host or "-", "error", plan.error)
        return None
    if run.params.mode != "apply":
        run.check("kube-proxy benchmark", plan.host or "-", "info",
                  f"not run in plan mode (it creates network namespaces and loads rules as root); apply would run "
                  f"{plan.text()}")
        return None
    if plan.host is None:
        run.check("kube-proxy benchmark", "-", "warn", f"not run: {plan.why}")
        return None
    transport = bench_transport(run, plan)
    if not settings.bench_host:  # defaulted to the lab's first node: its facts must prove it is one
        missing = lab_proof_missing(transport)
        if missing:
            run.check("kube-proxy benchmark host", plan.host or "-", "error",
                      f"{plan.host} is flagged lab but its facts do not prove it: {'; '.join(missing)}. Not "
                      "benchmarking on it; set kube_proxy_modes.bench_host to run there on purpose")
            return None
    with run.recorder.in_step("benchmark"):
        result = benchmark.run_benchmark(transport, settings, progress=progress)
    record(run, result)
    return result


def record(run: Any, result: benchmark.BenchmarkResult) -> None:
    """Checks and key figures of a benchmark run."""
    host = result.host
    if result.errors:
        unreachable = any(e.startswith("unreachable:") for e in result.errors)
        run.check("kube-proxy benchmark ran", host, "unreachable" if unreachable else "error", "; ".join(result.errors))
    else:
        run.check("kube-proxy benchmark ran", host, "pass",
                  f"grid {[d['n'] for d in result.documents]} in {result.duration_s:.0f} s")
    for check, status, detail in benchmark.mode_checks(result.documents):
        run.check(check, host, status, detail)
    run.check("benchmark left nothing behind", host, "fail" if result.leftovers else "pass",
              "; ".join(result.leftovers) or "no namespaces, processes, rules or sets of the run remain")
    frame = result.frame()
    if not frame.empty:
        for check, status, detail in benchmark.shape_findings(frame):
            run.check(check, host, status, detail)
        ok = frame[frame["status"] == "ok"]
        for key, col in (("kpm_p50_us", "p50_us"), ("kpm_program_s", "program_s"),
                         ("kpm_incremental_s", "incremental_s")):
            run.figure(key, {str(m): {int(n): v for n, v in g.set_index("n")[col].items()}
                             for m, g in ok.groupby("mode") if g[col].notna().any()})
    run.figure("kpm_timed", {m: e.get("timed") for d in result.documents[:1] for m, e in d.get("modes", {}).items()})
    run.figure("kpm_duration_s", round(result.duration_s, 1))
    run.figure("kpm_unavailable", result.unavailable())


def _kernel(cluster: Cluster, result: benchmark.BenchmarkResult | None) -> tuple[tuple[int, int, int] | None, str]:
    """The lowest kernel of the cluster's nodes (SSH facts, else the API's nodeInfo), else the bench host's."""
    state = cluster.state
    found = {n: parse_kernel_version(f.kernel or "") for n, f in cluster.facts.items()}
    for node in state.nodes if state else []:
        if found.get(node.name) is None:
            found[node.name] = parse_kernel_version(node.kernel_version)
    kernels = [k for k in found.values() if k is not None]
    if kernels:
        return min(kernels), f"lowest of {len(kernels)} node(s)"
    bench = parse_kernel_version((result.environment().get("kernel") or "") if result else "")
    return bench, ("the bench host's" if bench else "unknown")


def recommendation(run: Any, cluster: Cluster, settings: Settings,
                   result: benchmark.BenchmarkResult | None) -> Recommendation | None:
    """The mode for this cluster, from its Service count and version (the API's when it answers),
    its nodes' kernels and this run's measurements; recorded as an info check and a figure (an
    unusable version is an error check, and None)."""
    rec: Recommendation | None = None
    with run.guarded("recommended kube-proxy mode", CLUSTER):
        rec = _recommendation(run, cluster, settings, result)
    return rec


def _recommendation(run: Any, cluster: Cluster, settings: Settings,
                    result: benchmark.BenchmarkResult | None) -> Recommendation:
    state = cluster.state
    if settings.service_count is not None:
        count: int | None = settings.service_count
        count_src = "kube_proxy_modes.service_count" + (
            f"; the cluster has {cluster.service_count}" if cluster.service_count is not None else "")
    elif cluster.service_count is not None:
        count, count_src = cluster.service_count, "cluster API"
    else:
        count, count_src = None, "unknown: no cluster API and kube_proxy_modes.service_count not set"
    if state is not None and state.server_version:
        version, version_src = state.server_version, "cluster API"
    else:
        version, version_src = run.params.kubernetes_version, "parameters (kubernetes_version)"
    kernel, kernel_src = _kernel(cluster, result)
    ipvs_nodes = any(f.proc_ip_vs or "ip_vs" in f.ip_vs_modules for f in cluster.facts.values())
    frame = result.frame() if result is not None and result.documents else None
    rec = recommend(count, version, kernel=kernel, ipvs_available=ipvs_nodes,
                    current_mode=state.mode if state else None, measured=frame)
    rec.inputs = {"service_count": count, "service_count_from": count_src, "kubernetes_version": version,
                  "kubernetes_version_from": version_src, "kernel": kernel, "kernel_from": kernel_src,
                  "measured_on": result.host if frame is not None and result is not None else None}
    run.check("recommended kube-proxy mode", CLUSTER, "info", f"{rec.mode}: " + "; ".join(rec.reasons))
    run.figure("kpm_recommendation", {"mode": rec.mode, **rec.inputs})
    return rec


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


def plan(run: Any, cluster: Cluster, settings: Settings) -> switchplan.SwitchPlan | None:
    """The switch plan for ``settings.target_mode``: prerequisites per node (each recorded), the
    ConfigMap diff and the rollout order."""
    if cluster.state is None or settings.target_mode is None:
        return None
    try:
        p = switchplan.plan_switch(cluster.state, settings.target_mode, cluster.facts, settings.rollout_order or None)
    except ValueError as exc:  # a rollout order naming unknown nodes
        run.check("kube-proxy switch plan", CLUSTER, "error", str(exc))
        return None
    if not p.no_change and cluster.kc is not None:  # the ConfigMap change by SSA dry run: diff, owner of the field
        with run.guarded("kube-proxy ConfigMap plan", CLUSTER):
            p.objects = switch.plan_config(cluster.kc, p.new_config)
            p.objects.record(run)
    for pr in p.prereqs:
        run.check(f"prerequisite: {pr.check}", pr.node, pr.status, pr.detail)
    if p.no_change:
        run.check("kube-proxy switch plan", CLUSTER, "pass", f"no change: already {p.to_mode}")
    elif p.blocked:  # the failed prerequisites are the failures; apply would not switch
        run.check("kube-proxy switch plan", CLUSTER, "info",
                  f"{p.from_mode} -> {p.to_mode}; rollout order {', '.join(p.order)}; "
                  f"BLOCKED on {len(p.blocked)} prerequisite(s)")
    else:  # a pending change: apply (with confirm) would switch
        run.check("kube-proxy switch plan", CLUSTER, "drift",
                  f"{p.from_mode} -> {p.to_mode}; rollout order {', '.join(p.order)}")
    run.figure("kpm_switch_plan", {"from": p.from_mode, "to": p.to_mode, "no_change": p.no_change,
                                   "order": p.order, "blocked": [f"{b.node}: {b.check}" for b in p.blocked]})
    return p


def prereq_frame(p: switchplan.SwitchPlan) -> pd.DataFrame:
    return pd.DataFrame([vars(x) for x in p.prereqs], columns=["node", "check", "status", "detail"])


def plan_text(p: switchplan.SwitchPlan) -> str:
    """The plan as text: direction, order, ConfigMap diff."""
    if p.no_change:
        return f"no change: kube-proxy already runs in {p.to_mode} mode"
    dry_run = "".join(f"\nserver-side apply dry run: {c.describe()}" for c in p.objects.changes) if p.objects else ""
    return (f"switch kube-proxy {p.from_mode} -> {p.to_mode}\nrollout order (one node at a time, health gate "
            f"after each): {' -> '.join(p.order)}\n\n{p.diff}{dry_run}")


def apply(run: Any, cluster: Cluster, p: switchplan.SwitchPlan | None, settings: Settings) -> switch.SwitchResult | None:
    """mode=apply with confirm: switch; otherwise record that nothing changed (the switch stays
    pending: the plan's drift) and why."""
    if p is None or cluster.kc is None:
        return None
    if not run.params.confirmed:
        if not p.no_change:
            why = "plan mode" if run.params.mode != "apply" else "apply without confirm (the switch restarts kube-proxy)"
            run.check("kube-proxy switch apply", CLUSTER, "info",
                      f"{why}: nothing changed (mode=apply and confirm={run.params.cluster_name} to switch)")
        return None
    gate = switch.default_gate if settings.gate == "full" else switch.clusterip_gate
    result: switch.SwitchResult | None = None
    if p.blocked:
        run.check("kube-proxy switch prerequisites", CLUSTER, "fail",
                  "; ".join(f"{b.node}: {b.check}: {b.detail}" for b in p.blocked))
    with run.guarded("kube-proxy switch apply", CLUSTER):
        result = switch.apply_switch(run, cluster.kc, p, gate=gate, pod_timeout=settings.pod_timeout_s,
                                     probe_image=settings.probe_image)
    record_switch(run, result)
    return result


def record_switch(run: Any, result: switch.SwitchResult | None) -> None:
    """One check per outcome of a switch (per node switched or failed, the rollback, the mode)."""
    for check, target, status, detail in result.outcomes if result else []:
        run.check(check, target, status, detail)


def verify(run: Any, cluster: Cluster, p: switchplan.SwitchPlan, result: switch.SwitchResult | None,
           timeout: float = 120.0) -> pd.DataFrame:
    """After a switch: rules of the new mode on each node with an SSH host, stale old rules, metrics."""
    cols = ["node", "check", "status", "detail"]
    if result is None or result.rolled_back or not result.switched:
        return pd.DataFrame([], columns=cols)
    node_of = {h: n for n, h in cluster.hosts.items() if n in result.switched}
    rows: list[switchplan.Prereq] = []
    outcomes: dict[str, Any] = {}
    if node_of:
        with run.guarded("verify", ", ".join(node_of)):
            outcomes = run.fleet().map(switch.gather_verify, timeout=timeout, hosts=list(node_of))
        for host, out in outcomes.items():
            if out.ok and out.value is not None:
                rows += verifyrules.verify_node(node_of[host], p.to_mode, p.from_mode, out.value)
            else:
                rows.append(switchplan.Prereq(node_of[host], "verify", "unreachable" if out.unreachable else "error",
                                          out.error or ""))
    for n in result.switched:
        if n not in cluster.hosts:
            rows.append(switchplan.Prereq(n, "verify", "warn", "no SSH host for this node: rules not checked"))
    for r in rows:
        run.check(f"verify: {r.check}", cluster.hosts.get(r.node, r.node), r.status, r.detail)
    return pd.DataFrame([vars(r) for r in rows], columns=cols)
