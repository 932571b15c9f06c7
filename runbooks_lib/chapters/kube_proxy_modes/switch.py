"""Part B: switch kube-proxy's mode in a cluster, node by node, with a health gate and rollback.

The seed's procedure — edit the kube-proxy ConfigMap's ``mode``, delete every kube-proxy pod at
once, and restart Calico — done safely:

* ``read_state``: the current mode (config.conf of ConfigMap kube-system/kube-proxy; ``mode: ""``
  is the Linux default, iptables), the server version, the nodes and their kube-proxy pods.
* ``gather_node_facts`` (SSH, where hosts are given) and ``prerequisites``: ip_vs modules and
  ipvsadm for ipvs; kernel >= 5.13 and nft >= 1.0.1 (kube-proxy's documented minimum) for nftables.
* ``plan_switch``: the ConfigMap diff (only the ``mode:`` line changes) and the rollout order
  (workers first, one at a time, control-plane nodes last).
* ``apply_switch`` (mode=apply + confirm): patch the ConfigMap, then per node delete its
  kube-proxy pod, wait for the replacement to be Ready, and run the health gate (kube-proxy
  /healthz on :10256 of the node address, and a ClusterIP probe from a pod on that node). On a
  failed gate the ConfigMap goes back to the old text and every node already switched (the failed
  one included) is restarted again.
* ``verify`` parsers (pure, on captured text): rules of the new mode present, stale rules of the
  old mode, kube-proxy metrics from :10249.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from ...facts import kernel as kernel_facts
from ...facts import modules as module_facts
from ...kube import KubeClient, KubeError, NodeInfo, probe_pod, run_id_of, text_diff
from ...transport import Transport
from .facts import parse_nft_version

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


# ----------------------------------------------------------------------------- config text

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


def version_tuple(git_version: str) -> tuple[int, int, int]:
    m = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", git_version or "")
    if not m:
        raise ValueError(f"not a Kubernetes version: {git_version!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


# ----------------------------------------------------------------------------- state and facts

@dataclass
class ProxyState:
    """What the cluster says now."""

    mode_raw: str
    mode: str
    config_text: str
    server_version: str
    nodes: list[NodeInfo]
    pods: dict[str, list[str]]  # node -> kube-proxy pod names


def read_state(kc: KubeClient) -> ProxyState:
    cm = kc.get("ConfigMap", CONFIGMAP, NAMESPACE)
    text = (cm.get("data") or {}).get(CONFIG_KEY)
    if text is None:
        raise KubeError(f"ConfigMap {NAMESPACE}/{CONFIGMAP} has no {CONFIG_KEY} key: is this a kubeadm cluster?")
    raw, mode = parse_mode(text)
    pods: dict[str, list[str]] = {}
    for pod in kc.list_objects("Pod", NAMESPACE, label_selector=POD_SELECTOR):
        pods.setdefault(pod["spec"].get("nodeName", ""), []).append(pod["metadata"]["name"])
    return ProxyState(raw, mode, text, str(kc.version.get("gitVersion", "")), kc.nodes(), pods)


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


def gather_node_facts(transport: Transport) -> NodeFacts:
    """The kernel release, its IPVS modules (:mod:`runbooks_lib.facts.kernel` / ``.modules``, as system-init
    reads them), ipvsadm --version and nft --version on one host."""
    facts = NodeFacts(transport.name)
    r = transport.run(kernel_facts.UNAME, sudo=False)
    facts.kernel = kernel_facts.parse_release(r.stdout) if r.ok else None
    r = transport.run(module_facts.PROC_MODULES, sudo=False)
    loaded = module_facts.parse_proc_modules(r.stdout) if r.ok else set()
    facts.ip_vs_modules = [m for m in IPVS_MODULES if m in loaded]
    r = transport.run(module_facts.PROBES, sudo=False)
    facts.proc_ip_vs = module_facts.capability("ip_vs", loaded=set(), filesystems=set(), sys_module=set(),
                                               probes=module_facts.parse_lines(r.stdout)) is not None
    r = transport.run("ipvsadm --version", sudo=True)
    facts.ipvsadm_version = parse_ipvsadm_version(r.stdout + r.stderr) if r.ok else None
    r = transport.run("nft --version", sudo=True)  # /usr/sbin is not in a non-root PATH on Debian
    facts.nft_version = parse_nft_version(r.stdout) if r.ok else None
    return facts


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


# ----------------------------------------------------------------------------- plan

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


# ----------------------------------------------------------------------------- health gate

@dataclass
class GateContext:
    kc: KubeClient
    node: NodeInfo
    mode: str
    probe_pod: str | None
    probe_namespace: str
    probe_target: tuple[str, int]
    timeout: float = 10.0


@dataclass
class GateResult:
    ok: bool
    checks: list[tuple[str, bool, str]]

    @property
    def detail(self) -> str:
        return "; ".join(f"{name}: {'ok' if ok else 'FAILED'} ({d})" for name, ok, d in self.checks)


Gate = Callable[[GateContext], GateResult]


def healthz_check(address: str, port: int = 10256, timeout: float = 5.0) -> tuple[bool, str]:
    """GET http://<node>:10256/healthz (kube-proxy answers 200 with lastUpdated/currentTime when healthy)."""
    url = f"http://{address}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - an http URL we build
            body = resp.read(2048).decode("utf-8", "replace")
            return resp.status == 200, f"{url} -> {resp.status} {body.strip()[:200]}"
    except urllib.error.HTTPError as exc:
        return False, f"{url} -> {exc.code} {exc.read(512).decode('utf-8', 'replace').strip()[:200]}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url}: {getattr(exc, 'reason', exc)}"


def clusterip_probe(ctx: GateContext) -> tuple[bool, str]:
    """A TCP connect from the probe pod on the node to a Service ClusterIP (through this node's rules)."""
    if not ctx.probe_pod:
        return False, "no probe pod on this node"
    ip, port = ctx.probe_target
    res = ctx.kc.exec(ctx.probe_pod, ctx.probe_namespace, ["nc", "-z", "-w", str(int(ctx.timeout)), ip, str(port)],
                      timeout=ctx.timeout + 5)
    where = f"{ctx.probe_pod} -> {ip}:{port}"
    return res.ok, f"{where}: exit {res.exit_code}" + (f", {res.stderr.strip()}" if res.stderr.strip() else "")


def default_gate(ctx: GateContext) -> GateResult:
    """kube-proxy /healthz on the node address, then a ClusterIP probe from the node's probe pod."""
    checks = []
    if ctx.node.internal_ip:
        ok, detail = healthz_check(ctx.node.internal_ip, timeout=ctx.timeout)
    else:
        ok, detail = False, "node has no InternalIP address"
    checks.append(("kube-proxy healthz", ok, detail))
    ok2, detail2 = clusterip_probe(ctx)
    checks.append(("ClusterIP probe", ok2, detail2))
    return GateResult(ok and ok2, checks)


def clusterip_gate(ctx: GateContext) -> GateResult:
    """Only the ClusterIP probe: for operator machines that cannot reach node addresses."""
    ok, detail = clusterip_probe(ctx)
    return GateResult(ok, [("ClusterIP probe", ok, detail)])


# ----------------------------------------------------------------------------- apply

@dataclass
class Step:
    node: str
    action: str
    ok: bool
    detail: str
    duration_s: float


@dataclass
class SwitchResult:
    from_mode: str
    to_mode: str
    switched: list[str]
    failed_node: str | None
    rolled_back: bool
    steps: list[Step]
    #: (check, target, status, detail) for :func:`.chapter.apply` to record, in the order they happened
    outcomes: list[tuple[str, str, str, str]] = field(default_factory=list)

    def frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame([vars(s) for s in self.steps], columns=["node", "action", "ok", "detail", "duration_s"])


def restart_kube_proxy_on(kc: KubeClient, node: str, timeout: float = 120.0) -> str:
    """Delete the kube-proxy pod(s) on ``node`` and wait for the DaemonSet's replacement to be Ready."""
    old = kc.list_objects("Pod", NAMESPACE, label_selector=POD_SELECTOR, field_selector=f"spec.nodeName={node}")
    old_uids = {p["metadata"]["uid"] for p in old}
    for pod in old:
        kc.delete("Pod", pod["metadata"]["name"], NAMESPACE)
    deadline = time.monotonic() + timeout
    seen = "no replacement yet"
    while time.monotonic() < deadline:
        pods = kc.list_objects("Pod", NAMESPACE, label_selector=POD_SELECTOR, field_selector=f"spec.nodeName={node}")
        fresh = [p for p in pods if p["metadata"]["uid"] not in old_uids]
        for p in fresh:
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (p.get("status") or {}).get("conditions") or [])
            seen = f"{p['metadata']['name']} {(p.get('status') or {}).get('phase', 'Pending')}"
            if ready:
                return str(p["metadata"]["name"])
        time.sleep(kc.poll_interval)
    events = kc.events_for("DaemonSet", "kube-proxy", NAMESPACE, limit=3)
    raise KubeError(f"kube-proxy on {node}: no Ready replacement within {timeout:g} s (last: {seen}); events: "
                    + ("; ".join(f"{e['reason']}: {e['message']}" for e in events) or "none"))


def _restarter(kc: KubeClient, node: str, timeout: float) -> Callable[[], tuple[bool, str]]:
    def fn() -> tuple[bool, str]:
        return True, "replacement Ready: " + restart_kube_proxy_on(kc, node, timeout)
    return fn


def _probe_target(kc: KubeClient) -> tuple[str, int]:
    svc = kc.get("Service", "kubernetes", "default")
    return str(svc["spec"]["clusterIP"]), int(svc["spec"]["ports"][0]["port"])


def apply_switch(run: Any, kc: KubeClient, plan: SwitchPlan, *, gate: Gate = default_gate,
                 pod_timeout: float = 120.0, gate_timeout: float = 10.0, probe_namespace: str = "default",
                 probe_image: str = "busybox:1.36", probe_target: tuple[str, int] | None = None) -> SwitchResult:
    """Switch (needs mode=apply and confirm). Returns what happened per node; rolls back on a failed gate."""
    run.require_confirm(f"switching kube-proxy from {plan.from_mode} to {plan.to_mode} (restarts kube-proxy on "
                        f"every node)")
    steps: list[Step] = []
    if plan.no_change:
        run.recorder.note(f"no change: kube-proxy already runs in {plan.to_mode} mode")
        return SwitchResult(plan.from_mode, plan.to_mode, [], None, False, steps,
                            [("kube-proxy mode", "cluster", "pass", f"no change: already {plan.to_mode}")])
    if plan.blocked:
        detail = "; ".join(f"{p.node}: {p.check}: {p.detail}" for p in plan.blocked)
        raise KubeError(f"switch to {plan.to_mode} blocked by prerequisites: {detail}")
    nodes = {n.name: n for n in kc.nodes()}
    run_id = run_id_of(run)
    target = probe_target or _probe_target(kc)
    probes: dict[str, str] = {}
    result = SwitchResult(plan.from_mode, plan.to_mode, [], None, False, steps)

    def step(node: str, action: str, fn: Callable[[], tuple[bool, str]]) -> bool:
        t0 = time.monotonic()
        with run.recorder.in_step(f"{action} {node}"):
            try:
                ok, detail = fn()
            except KubeError as exc:
                ok, detail = False, str(exc)
        steps.append(Step(node, action, ok, detail, round(time.monotonic() - t0, 2)))
        return ok

    try:
        for name in plan.order:  # probe pods first, so a gate never waits for an image pull
            pod_name = f"kp-probe-{name}"[:63]
            kc.apply([probe_pod(pod_name, probe_namespace, name, run_id, image=probe_image)])
            probes[name] = pod_name
        for name in plan.order:
            kc.wait_pod_ready(probes[name], probe_namespace, timeout=pod_timeout)

        def patch(text: str) -> Callable[[], tuple[bool, str]]:
            def fn() -> tuple[bool, str]:
                ch = kc.patch_configmap_key(CONFIGMAP, NAMESPACE, CONFIG_KEY, text)
                return True, f"config.conf mode -> {parse_mode(text)[1]}" + ("" if ch.changed else " (no change)")
            return fn

        step("cluster", f"patch ConfigMap to {plan.to_mode}", patch(plan.new_config))
        for name in plan.order:
            ok = step(name, "restart kube-proxy", _restarter(kc, name, pod_timeout))
            result.switched.append(name)
            gate_result = GateResult(False, [])
            if ok:
                ctx = GateContext(kc, nodes[name], plan.to_mode, probes.get(name), probe_namespace, target,
                                  gate_timeout)

                def run_gate(c: GateContext = ctx) -> tuple[bool, str]:
                    nonlocal gate_result
                    gate_result = gate(c)
                    return gate_result.ok, gate_result.detail
                ok = step(name, "health gate", run_gate)
            if ok:
                result.outcomes.append((f"kube-proxy {plan.to_mode} on node", name, "changed", gate_result.detail))
                continue
            result.failed_node = name
            result.outcomes.append((f"kube-proxy {plan.to_mode} on node", name, "fail", steps[-1].detail))
            _rollback(kc, plan, result, step, pod_timeout)
            break
    finally:
        if probes:
            kc.delete_by_run_label(run_id, kinds=["Pod"], namespace=probe_namespace)
    if result.failed_node is None:
        result.outcomes.append(("kube-proxy mode", "cluster", "changed", f"{plan.from_mode} -> {plan.to_mode} on "
                                f"{len(result.switched)} node(s)"))
        run.recorder.note(WARNINGS[1])
    return result


def _rollback(kc: KubeClient, plan: SwitchPlan, result: SwitchResult,
              step: Callable[[str, str, Callable[[], tuple[bool, str]]], bool], pod_timeout: float) -> None:
    """ConfigMap back to the old text; restart kube-proxy again on every node already switched."""
    result.rolled_back = True

    def restore() -> tuple[bool, str]:
        kc.patch_configmap_key(CONFIGMAP, NAMESPACE, CONFIG_KEY, plan.old_config)
        return True, f"config.conf restored (mode {plan.from_mode})"

    ok = step("cluster", f"rollback ConfigMap to {plan.from_mode}", restore)
    result.outcomes.append(("kube-proxy rollback: ConfigMap", "cluster", "changed" if ok else "error",
                            steps_detail(result)))
    for name in result.switched:
        ok = step(name, "rollback restart kube-proxy", _restarter(kc, name, pod_timeout))
        result.outcomes.append((f"kube-proxy rollback to {plan.from_mode}", name, "changed" if ok else "error",
                                result.steps[-1].detail))


def steps_detail(result: SwitchResult) -> str:
    return result.steps[-1].detail if result.steps else ""


# ----------------------------------------------------------------------------- verify (pure parsers)

@dataclass
class VirtualService:
    proto: str
    address: str
    port: int
    scheduler: str
    real_servers: list[str]


def parse_ipvsadm_ln(text: str) -> list[VirtualService]:
    """Virtual services and their real servers from ``ipvsadm -Ln``."""
    out: list[VirtualService] = []
    for line in text.splitlines():
        m = re.match(r"^(TCP|UDP|SCTP)\s+(\S+):(\d+)\s+(\S+)", line)
        if m:
            out.append(VirtualService(m.group(1), m.group(2), int(m.group(3)), m.group(4), []))
            continue
        m = re.match(r"^\s+->\s+(\S+:\d+)\s+\S+\s+\d+", line)
        if m and out:
            out[-1].real_servers.append(m.group(1))
    return out


def parse_nft_kube_proxy(text: str) -> dict[str, Any]:
    """From ``nft list table ip kube-proxy``: is the table there, its chains, service chains, and the
    elements of the service-ips map."""
    present = bool(re.search(r"^table ip kube-proxy\b", text, re.M))
    chains = re.findall(r"^\s*chain (\S+) \{", text, re.M)
    services = [c for c in chains if c.startswith("service-")]
    m = re.search(r"map service-ips \{.*?elements = \{(.*?)\}", text, re.S)
    elements = [e.strip() for e in m.group(1).split(",") if e.strip()] if m else []
    return {"present": present, "chains": len(chains), "service_chains": len(services),
            "endpoint_chains": len([c for c in chains if c.startswith("endpoint-")]), "service_ips": len(elements)}


def parse_iptables_kube(text: str) -> dict[str, int]:
    """Counts of kube-proxy iptables state in ``iptables-save`` output: KUBE-SVC-/KUBE-SEP- chains and
    KUBE-SERVICES rules."""
    return {"kube_svc_chains": len(re.findall(r"^:KUBE-SVC-\S+", text, re.M)),
            "kube_sep_chains": len(re.findall(r"^:KUBE-SEP-\S+", text, re.M)),
            "kube_services_rules": len(re.findall(r"^-A KUBE-SERVICES ", text, re.M)),
            "kube_chains": len(re.findall(r"^:KUBE-", text, re.M))}


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)(?:\s+\d+)?$')


def parse_prometheus(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample of a Prometheus text exposition."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line.strip())
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        try:
            out.append((m.group(1), labels, float(m.group(3))))
        except ValueError:
            continue
    return out


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Prometheus-style quantile from cumulative (le, count) buckets (linear within a bucket)."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            if count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return buckets[-1][0]


def histogram(samples: list[tuple[str, dict[str, str], float]], name: str) -> dict[str, Any] | None:
    """count, sum, mean and p50/p90/p99 of a histogram (all label sets summed)."""
    buckets: dict[float, float] = {}
    total = count = 0.0
    found = False
    for sname, labels, value in samples:
        if sname == f"{name}_bucket":
            le = float("inf") if labels.get("le") == "+Inf" else float(labels.get("le", "inf"))
            buckets[le] = buckets.get(le, 0.0) + value
            found = True
        elif sname == f"{name}_sum":
            total += value
        elif sname == f"{name}_count":
            count += value
    if not found:
        return None
    pairs = sorted(buckets.items())
    return {"count": int(count), "sum_s": round(total, 6), "mean_s": round(total / count, 6) if count else None,
            "p50_s": histogram_quantile(pairs, 0.5), "p90_s": histogram_quantile(pairs, 0.9),
            "p99_s": histogram_quantile(pairs, 0.99)}


def parse_proxy_metrics(text: str) -> dict[str, Any]:
    """kube-proxy's :10249/metrics: sync duration and network programming latency histograms, and the
    last sync time."""
    samples = parse_prometheus(text)
    last = [v for n, _l, v in samples if n == "kubeproxy_sync_proxy_rules_last_timestamp_seconds"]
    return {"sync_proxy_rules_duration": histogram(samples, "kubeproxy_sync_proxy_rules_duration_seconds"),
            "network_programming_duration": histogram(samples, "kubeproxy_network_programming_duration_seconds"),
            "last_sync_timestamp": last[0] if last else None}


#: commands whose output ``verify_node`` judges (run on the node over SSH)
VERIFY_COMMANDS = {
    "ipvsadm": "ipvsadm -Ln",
    "nft": "nft list table ip kube-proxy",
    "iptables": "iptables-save -t nat",
    "metrics": "curl -s --max-time 5 http://127.0.0.1:10249/metrics",
}


def gather_verify(transport: Transport) -> dict[str, tuple[int, str]]:
    """(exit code, output) of each VERIFY_COMMANDS entry on one node."""
    out = {}
    for key, cmd in VERIFY_COMMANDS.items():
        r = transport.run(cmd, sudo=key != "metrics", timeout=30)
        out[key] = (r.exit_code, r.stdout if r.ok else (r.stdout + r.stderr))
    return out


def verify_node(node: str, mode: str, old_mode: str | None, outputs: dict[str, tuple[int, str]]) -> list[Prereq]:
    """Judge captured outputs: new mode's rules present, old mode's rules gone, metrics readable."""
    rows: list[Prereq] = []
    ipt = parse_iptables_kube(outputs.get("iptables", (1, ""))[1]) if outputs.get("iptables", (1, ""))[0] == 0 else None
    nft = parse_nft_kube_proxy(outputs.get("nft", (1, ""))[1]) if outputs.get("nft", (1, ""))[0] == 0 else None
    ipvs = parse_ipvsadm_ln(outputs.get("ipvsadm", (1, ""))[1]) if outputs.get("ipvsadm", (1, ""))[0] == 0 else None
    present = {"iptables": bool(ipt and ipt["kube_svc_chains"]), "nftables": bool(nft and nft["service_chains"]),
               "ipvs": bool(ipvs)}
    counts = {"iptables": f"{ipt['kube_svc_chains'] if ipt else 0} KUBE-SVC chains",
              "nftables": f"{nft['service_chains'] if nft else 0} service chains, "
                          f"{nft['service_ips'] if nft else 0} service-ips elements",
              "ipvs": f"{len(ipvs) if ipvs else 0} virtual services"}
    rows.append(Prereq(node, f"{mode} rules present", "pass" if present[mode] else "fail", counts[mode]))
    if old_mode and old_mode != mode:
        stale = present[old_mode]
        rows.append(Prereq(node, f"stale {old_mode} rules", "warn" if stale else "pass",
                           f"still there: {counts[old_mode]}" if stale else "none left"))
    code, text = outputs.get("metrics", (1, ""))
    m = parse_proxy_metrics(text) if code == 0 else None
    sync = (m or {}).get("sync_proxy_rules_duration")
    if sync:
        rows.append(Prereq(node, "kube-proxy sync duration", "pass",
                           f"{sync['count']} syncs, mean {sync['mean_s']} s, p99 <= {sync['p99_s']} s"))
    else:
        rows.append(Prereq(node, "kube-proxy sync duration", "warn", "metrics on 127.0.0.1:10249 not readable"))
    return rows
