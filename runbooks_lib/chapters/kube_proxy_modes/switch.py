"""Part B: switch kube-proxy's mode in a cluster, node by node, with a health gate and rollback.

The seed's procedure — edit the kube-proxy ConfigMap's ``mode``, delete every kube-proxy pod at
once, and restart Calico — done safely on the objects layer (:mod:`runbooks_lib.kube.plan`,
:mod:`runbooks_lib.kube.verify`). The plan is pure (:mod:`.switchplan`), the judging of captured
rules too (:mod:`.verifyrules`); this module reaches the cluster and the nodes:

* ``read_state``: the current mode (config.conf of ConfigMap kube-system/kube-proxy; ``mode: ""``
  is the Linux default, iptables), the server version, the nodes and their kube-proxy pods.
* ``plan_config``: the ConfigMap change as a server-side apply dry run (field diff; kubeadm owns
  ``data.config.conf`` on a real cluster, so the plan shows that conflict and takes the field over).
* ``gather_node_facts`` (SSH, where hosts are given): what :func:`.switchplan.prerequisites` judges.
* ``apply_switch`` (mode=apply + confirm): apply the ConfigMap (forced only in a confirmed run), then
  per node delete its kube-proxy pod, wait (watch, by selector) for the replacement to be Ready, and
  run the health gate (kube-proxy /healthz on :10256 of the node address, and a ClusterIP probe from
  a pod on that node). On a failed gate the ConfigMap goes back to the old text and every node
  already switched (the failed one included) is restarted again.
* ``gather_verify``: the text :func:`.verifyrules.verify_node` judges after a switch.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...facts import kernel as kernel_facts
from ...facts import modules as module_facts
from ...kube import KubeClient, KubeError, NodeInfo, probe_pod, run_id_of, verify
from ...kube import plan as objects
from ...transport import Transport
from .facts import parse_nft_version
from .switchplan import (
    CONFIG_KEY,
    CONFIGMAP,
    IPVS_MODULES,
    NAMESPACE,
    POD_SELECTOR,
    WARNINGS,
    NodeFacts,
    ProxyState,
    SwitchPlan,
    configmap,
    parse_ipvsadm_version,
    parse_mode,
)

# ----------------------------------------------------------------------------- state and facts


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

    def as_step(self) -> tuple[bool, str]:
        return self.ok, self.detail


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
    healthz = healthz_check(ctx.node.internal_ip, timeout=ctx.timeout) if ctx.node.internal_ip else (
        False, "node has no InternalIP address")
    probe = clusterip_probe(ctx)
    return GateResult(healthz[0] and probe[0], [("kube-proxy healthz", *healthz), ("ClusterIP probe", *probe)])


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
    switched: list[str] = field(default_factory=list)
    failed_node: str | None = None
    rolled_back: bool = False
    steps: list[Step] = field(default_factory=list)
    #: (check, target, status, detail) for :func:`.chapter.apply` to record, in the order they happened
    outcomes: list[tuple[str, str, str, str]] = field(default_factory=list)

    def frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame([vars(s) for s in self.steps], columns=["node", "action", "ok", "detail", "duration_s"])

    def step(self, run: Any, node: str, action: str, fn: Callable[..., tuple[bool, str]], *args: Any) -> bool:
        """``fn(*args)`` as one step, under its evidence step; a KubeError is a failed step."""
        t0 = time.monotonic()
        with run.recorder.in_step(f"{action} {node}"):
            try:
                ok, detail = fn(*args)
            except KubeError as exc:
                ok, detail = False, str(exc)
        self.steps.append(Step(node, action, ok, detail, round(time.monotonic() - t0, 2)))
        return ok


def plan_config(kc: KubeClient, text: str) -> objects.Plan:
    """The ConfigMap with ``text`` as config.conf, planned by server-side apply dry run (force intended)."""
    return objects.plan(kc, [configmap(text)], force=True)


def apply_config(kc: KubeClient, text: str, confirmed: bool) -> tuple[bool, str]:
    """Server-side apply config.conf (taking it over from kubeadm only when ``confirmed``)."""
    (change,) = objects.apply(kc, plan_config(kc, text), confirmed=confirmed).changes
    ok = change.applied or change.action == "unchanged"
    return ok, f"config.conf mode -> {parse_mode(text)[1]}: " + (change.describe() if ok else change.note)


def restart_kube_proxy_on(kc: KubeClient, node: str, timeout: float = 120.0) -> tuple[bool, str]:
    """Delete the kube-proxy pod(s) on ``node``; wait (watch) for the DaemonSet's replacement to be Ready."""
    old = kc.list_objects("Pod", NAMESPACE, label_selector=POD_SELECTOR, field_selector=f"spec.nodeName={node}")
    generation = str(kc.get("DaemonSet", CONFIGMAP, NAMESPACE)["metadata"].get("generation", 1))
    for pod in old:
        kc.delete("Pod", pod["metadata"]["name"], NAMESPACE)
    r = verify.wait(kc, verify.pods_ready(NAMESPACE, POD_SELECTOR, node=node, revision=generation,
                                          replacing={p["metadata"]["uid"] for p in old}), timeout)
    return r.ok, (f"replacement Ready: {r.last_message}" if r.ok else
                  f"no Ready replacement: {r.detail}" + (f"; events: {r.recent_events}" if r.recent_events else ""))


def _probe_target(kc: KubeClient) -> tuple[str, int]:
    svc = kc.get("Service", "kubernetes", "default")
    return str(svc["spec"]["clusterIP"]), int(svc["spec"]["ports"][0]["port"])


def apply_switch(run: Any, kc: KubeClient, plan: SwitchPlan, *, gate: Gate = default_gate,
                 pod_timeout: float = 120.0, gate_timeout: float = 10.0, probe_namespace: str = "default",
                 probe_image: str = "busybox:1.36", probe_target: tuple[str, int] | None = None) -> SwitchResult:
    """Switch (needs mode=apply and confirm). Returns what happened per node; rolls back on a failed gate."""
    run.require_confirm(f"switching kube-proxy from {plan.from_mode} to {plan.to_mode} (restarts kube-proxy on "
                        f"every node)")
    result = SwitchResult(plan.from_mode, plan.to_mode)
    if plan.no_change:
        run.recorder.note(f"no change: kube-proxy already runs in {plan.to_mode} mode")
        result.outcomes.append(("kube-proxy mode", "cluster", "pass", f"no change: already {plan.to_mode}"))
        return result
    if plan.blocked:
        detail = "; ".join(f"{p.node}: {p.check}: {p.detail}" for p in plan.blocked)
        raise KubeError(f"switch to {plan.to_mode} blocked by prerequisites: {detail}")
    nodes, run_id = {n.name: n for n in kc.nodes()}, run_id_of(run)
    target = probe_target or _probe_target(kc)
    probes = {name: f"kp-probe-{name}"[:63] for name in plan.order}
    try:
        for name in plan.order:  # probe pods first, so a gate never waits for an image pull
            kc.apply([probe_pod(probes[name], probe_namespace, name, run_id, image=probe_image)])
        for name in plan.order:
            kc.wait_pod_ready(probes[name], probe_namespace, timeout=pod_timeout)
        result.step(run, "cluster", f"patch ConfigMap to {plan.to_mode}", apply_config, kc, plan.new_config,
                    run.params.confirmed)
        for name in plan.order:
            result.switched.append(name)
            ctx = GateContext(kc, nodes[name], plan.to_mode, probes[name], probe_namespace, target, gate_timeout)
            ok = (result.step(run, name, "restart kube-proxy", restart_kube_proxy_on, kc, name, pod_timeout)
                  and result.step(run, name, "health gate", lambda c: gate(c).as_step(), ctx))
            result.outcomes.append((f"kube-proxy {plan.to_mode} on node", name, "changed" if ok else "fail",
                                    result.steps[-1].detail))
            if not ok:
                result.failed_node = name
                _rollback(run, kc, plan, result, pod_timeout)
                break
    finally:
        kc.delete_by_run_label(run_id, kinds=["Pod"], namespace=probe_namespace)
    if result.failed_node is None:
        result.outcomes.append(("kube-proxy mode", "cluster", "changed", f"{plan.from_mode} -> {plan.to_mode} on "
                                f"{len(result.switched)} node(s)"))
        run.recorder.note(WARNINGS[1])
    return result


def _rollback(run: Any, kc: KubeClient, plan: SwitchPlan, result: SwitchResult, pod_timeout: float) -> None:
    """ConfigMap back to the old text; restart kube-proxy again on every node already switched."""
    result.rolled_back = True
    ok = result.step(run, "cluster", f"rollback ConfigMap to {plan.from_mode}", apply_config, kc, plan.old_config,
                     run.params.confirmed)
    result.outcomes.append(("kube-proxy rollback: ConfigMap", "cluster", "changed" if ok else "error",
                            result.steps[-1].detail))
    for name in result.switched:
        ok = result.step(run, name, "rollback restart kube-proxy", restart_kube_proxy_on, kc, name, pod_timeout)
        result.outcomes.append((f"kube-proxy rollback to {plan.from_mode}", name, "changed" if ok else "error",
                                result.steps[-1].detail))


# ----------------------------------------------------------------------------- verify (on the node)

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
