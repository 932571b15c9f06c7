"""Chapter 02 kubeadm: the steps the notebook calls. The only module that records checks and figures.

plan (read-only): render + validate the config, consistency checks, preflight on every node over SSH,
the HA endpoint's configs, existing-cluster detection, the PKI audit from real files, what apply would
run, and verification through the cluster API. apply: init/join/reset need confirm=<cluster name>; kubeadm
must be installed on the node, otherwise they are reported unavailable with the exact commands.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import pandas as pd

from ... import kube
from ...kube.errors import KubeError
from ...transport.base import TargetUnreachable, Transport
from . import actions, config, consistency, ha, nodes, pki, preflight, schema
from .verify import Verified, verify

if TYPE_CHECKING:
    from ...run import Run

CHAPTER = "kubeadm"
P = ParamSpec("P")
R = TypeVar("R")


def step(name: str) -> Callable[[Callable[Concatenate[Run, P], R]], Callable[Concatenate[Run, P], R]]:
    """Record what the function runs, and the checks it decides, under step ``name``: the report's
    anchors are per step and host, so each check links to the evidence block of its own step (a check
    decided from the survey's facts links to that host's survey block)."""
    def wrap(fn: Callable[Concatenate[Run, P], R]) -> Callable[Concatenate[Run, P], R]:
        @functools.wraps(fn)
        def inner(run: Run, /, *args: P.args, **kwargs: P.kwargs) -> R:
            with run.recorder.in_step(name):
                return fn(run, *args, **kwargs)
        return inner
    return wrap


@dataclass
class Host:
    name: str
    address: str
    role: str  # control-plane | worker


@dataclass
class Survey:
    hosts: list[Host]
    facts: dict[str, nodes.NodeFacts] = field(default_factory=dict)
    lab: dict[str, bool] = field(default_factory=dict)
    initialised: dict[str, bool] = field(default_factory=dict)
    cluster: Verified | None = None
    rendered: config.Rendered | None = None
    wall_s: float = 0.0

    @property
    def control_planes(self) -> list[Host]:
        return [h for h in self.hosts if h.role == "control-plane"]


def hosts(run: Run) -> list[Host]:
    """Selected hosts, the first control plane first."""
    out = [Host(h.name, h.address, "control-plane" if {"control-plane", "master"} & set(h.roles) else "worker")
           for h in run.params.selected_hosts()]
    return sorted(out, key=lambda h: h.role != "control-plane")


def render_config(run: Run, kubernetes_version: str | None = None) -> config.Rendered:
    """The kubeadm config for this run's cluster (ConfigRefused when it cannot be rendered)."""
    hs = hosts(run)
    cps = [config.Node(h.name, h.address) for h in hs if h.role == "control-plane"] or \
        [config.Node(hs[0].name, hs[0].address)]
    return config.render(run.params.kubeadm, kubernetes_version or run.params.kubernetes_version,
                         run.params.cluster_name, cps[0], config.proxy_mode_for(run.params), cps)


@step("config")
def plan_config(run: Run) -> config.Rendered | None:
    """Render and validate offline; record the consistency checks that need no host."""
    s, hs = run.params.kubeadm, hosts(run)
    try:
        rendered = render_config(run)
    except config.ConfigRefused as exc:
        run.check("config.render", "runner", "fail", str(exc))
        return None
    run.check("config.render", "runner", "pass", f"{rendered.api_version} for Kubernetes {rendered.version.tag}")
    problems = schema.validate(rendered.text)
    run.check("config.schema", "runner", "fail" if problems else "pass",
              "; ".join(problems) if problems else f"valid against the {rendered.api_version.split('/')[1]} "
                                                   "schema (unknown fields, types, CIDRs)")
    findings = consistency.networks(s.pod_network_cidr, s.service_cidr, {h.name: h.address for h in hs},
                                    getattr(run.params.calico_ips, "pod_subnet", None))
    findings += consistency.endpoint({h.name: h.address for h in hs if h.role == "control-plane"},
                                     s.control_plane_endpoint, s.ha)
    findings.append(consistency.proxy_mode(config.proxy_mode_for(run.params), rendered.version))
    imgs = consistency.images(rendered.version, s.image_repository)
    findings.append(("images.list", "info", f"{len(imgs.images)} images: {', '.join(imgs.images)} ({imgs.note})"))
    for check, status, detail in findings:
        run.check(check, "runner", status, detail)
    run.figure("kubeadm_images", imgs.images)
    return rendered




def _lab_proven(f: nodes.NodeFacts, flagged: bool) -> bool:
    """system-init's proof of a lab node: a container, the lab's marker, a host key in its known_hosts."""
    from ..system_init.labproof import lab_known_hosts, missing_proof

    return flagged and not missing_proof(f.lab, f.hostname, lab_known_hosts)


@step("survey")
def survey(run: Run, rendered: config.Rendered | None) -> Survey:
    """One SSH round trip per node (in parallel) and the cluster API; records unreachable hosts."""
    import time

    t0 = time.monotonic()
    s, hs = run.params.kubeadm, hosts(run)
    sv = Survey(hs, rendered=rendered)
    first = hs[0].name if hs else ""
    flagged = {h.name: h.lab for h in run.params.selected_hosts()}

    def one(t: Transport) -> nodes.NodeFacts:
        role = next(h.role for h in hs if h.name == t.name)
        cfg = rendered.text if rendered is not None and t.name == first else None
        return nodes.gather(t, s.cri_socket, role == "control-plane", s.etcd_disk_test, cfg, timeout=240)

    for host, outcome in run.fleet().map(one, timeout=400).items():
        if outcome.value is None:
            run.check("node.reach", host, "unreachable" if outcome.unreachable else "error", outcome.error or "")
            continue
        f = outcome.value
        sv.facts[host] = f
        sv.lab[host] = _lab_proven(f, flagged.get(host, False))
        sv.initialised[host] = "/var/lib/kubelet/config.yaml" in f.kube.present
    _read_cluster(run, sv)
    sv.wall_s = round(time.monotonic() - t0, 2)
    return sv


def _read_cluster(run: Run, sv: Survey, when: str = "") -> None:
    """The cluster as the API shows it now (``sv.cluster``), under the verify step."""
    with run.recorder.in_step("verify"):
        try:
            sv.cluster = verify(kube.connect(run), {h.name: h.address for h in sv.hosts})
        except (KubeError, TargetUnreachable, OSError) as exc:
            sv.cluster = None
            run.check("api.reach", "api", "unreachable", f"cluster API not reachable{when}: {exc}")


@step("survey")
def record_existing(run: Run, sv: Survey) -> None:
    """Initialised nodes (Kubespray's marker) vs the API; super-admin.conf only on the first control plane."""
    registered = sv.cluster.registered if sv.cluster else set()
    first = sv.control_planes[0].name if sv.control_planes else None
    for host, f in sv.facts.items():
        if "/etc/kubernetes/super-admin.conf" in f.kube.present and host != first:
            run.check("pki.super_admin", host, "fail", "super-admin.conf (system:masters, break-glass) is on this "
                      "node: it must never leave the first control plane; remove it here")
    for h in sv.hosts:
        if h.name not in sv.facts:
            continue
        marker = sv.initialised[h.name]
        in_api = h.name in registered
        if marker:
            run.check("cluster.existing", h.name, "info", "initialised (/var/lib/kubelet/config.yaml present)"
                      + ("; registered in the API" if in_api else "; NOT registered in the API"))
        elif in_api:
            status = "n/a in lab" if sv.lab.get(h.name) else "warn"
            run.check("cluster.existing", h.name, status, "registered in the API but no /var/lib/kubelet/config.yaml "
                      "on the node" + (" (the lab: the API server models the nodes; no kubelet runs)"
                                       if status == "n/a in lab" else " (reset or renamed node?)"))
        else:
            run.check("cluster.existing", h.name, "info", "not initialised: apply would init/join it")


@step("preflight")
def record_preflight(run: Run, sv: Survey) -> pd.DataFrame:
    """Every kubeadm preflight check × node; the matrix (rows: check, columns: node)."""
    s = run.params.kubeadm
    version = config.Version.parse(run.params.kubernetes_version)
    cells: dict[str, dict[str, str]] = {}
    for h in sv.hosts:
        f = sv.facts.get(h.name)
        if f is None:
            continue
        ctx = preflight.Context(h.role, sv.lab[h.name], sv.initialised[h.name], version, s.pod_network_cidr,
                                s.service_cidr, [x.address for x in sv.hosts], s.etcd_fsync_p99_ms)
        for name, status, detail in preflight.evaluate(f, ctx):
            run.check(f"preflight.{name}", h.name, status, detail)
            cells.setdefault(name, {})[h.name] = status
        for check, status, detail in consistency.skew(version, f.kube.kubeadm, f.kube.kubelet, h.name):
            run.check(check, h.name, status, detail)
        pause = consistency.images(version, s.image_repository).pause
        cfg = f.files.get("/etc/containerd/config.toml")
        sandbox = None
        if cfg:
            from ...facts import containerd as containerd_f

            parsed, _err = containerd_f.parse_config(cfg)
            sandbox = containerd_f.cri_config(parsed).sandbox_image if parsed else None
        run.check(*_at(consistency.sandbox(pause, sandbox, h.name), h.name))
        if f.kubeadm.available:
            rc = f.kubeadm.validate_rc
            run.check("config.kubeadm_validate", h.name, "pass" if rc == 0 else "fail",
                      f"kubeadm config validate: exit {rc}; {f.kubeadm.validate_out.strip()[:500]}")
    if sv.facts and not any(f.kubeadm.available for f in sv.facts.values()):
        run.check("config.kubeadm_validate", "runner", "n/a in lab" if all(sv.lab.values()) else "info",
                  "kubeadm not installed on any node: validated offline with the schema only")
    frame = pd.DataFrame(cells).T.reindex(columns=[h.name for h in sv.hosts if h.name in sv.facts])
    return frame.rename_axis("check").reset_index()


def _at(finding: tuple[str, str, str], host: str) -> tuple[str, str, str, str]:
    return finding[0], host, finding[1], finding[2]


@step("pki")
def audit_pki(run: Run, sv: Survey, now: dt.datetime | None = None) -> pd.DataFrame:
    """Expiry of every kubeadm certificate, the apiserver SANs and the CA hash, on every control plane."""
    s = run.params.kubeadm
    now = now or dt.datetime.now(dt.UTC)
    rows: list[dict[str, Any]] = []
    cps = [(h.name, h.address) for h in sv.control_planes]
    for h in sv.control_planes:
        f = sv.facts.get(h.name)
        if f is None:
            continue
        present = {p: v for p, v in f.certs.items() if v}
        if not present:
            run.check("pki.present", h.name, "info", f"no kubeadm PKI under {pki.PKI_DIR} (not initialised)")
            continue
        missing = [p for p in (*pki.CERTS, *pki.PUBLIC_KEYS) if p not in present]
        run.check("pki.present", h.name, "warn" if missing else "pass",
                  f"missing: {', '.join(missing)}" if missing else
                  f"all {len(pki.CERTS)} certificates and sa.pub present")
        soonest: tuple[float, str] | None = None
        for path in pki.CERTS:
            pem = present.get(path)
            if pem is None:
                continue
            try:
                info = pki.load(path, pem)
            except ValueError as exc:
                run.check("pki.parse", h.name, "fail", f"{path}: not a PEM certificate ({exc})")
                continue
            days = info.days_left(now)
            rows.append({"node": h.name, "certificate": path, "subject": info.subject,
                         "expires": info.not_after.strftime("%Y-%m-%d"), "days_left": round(days, 1),
                         "ca": info.is_ca})
            if soonest is None or days < soonest[0]:
                soonest = (days, path)
            if path == "apiserver.crt":
                wanted = pki.expected_sans(config.endpoint_host(s.control_plane_endpoint), cps, s.cert_sans,
                                           s.service_cidr, s.service_dns_domain)
                gone = pki.missing_sans(info, wanted)
                run.check("pki.apiserver_sans", h.name, "fail" if gone else "pass",
                          f"apiserver.crt lacks {', '.join(gone)} (renew it: `kubeadm init phase certs apiserver` "
                          "after moving the old pair away)" if gone else
                          f"apiserver.crt covers the {len(wanted)} expected names and addresses")
        if soonest is not None:
            days, path = soonest
            status = "fail" if days <= 0 else ("warn" if days < s.cert_warn_days else "pass")
            run.check("pki.expiry", h.name, status, f"soonest: {path} in {days:.0f} days "
                      f"(warn under {s.cert_warn_days}; `kubeadm certs renew all` renews the leaves)")
        if "sa.pub" in present:
            ok = pki.public_key_ok(str(present["sa.pub"]))
            run.check("pki.sa_pub", h.name, "pass" if ok else "fail", "sa.pub is a public key" if ok else
                      "sa.pub is not a PEM public key")
        ca = present.get("ca.crt")
        if ca:
            digest = pki.ca_cert_hash(ca)
            run.check("pki.ca_hash", h.name, "info", f"--discovery-token-ca-cert-hash {digest}")
            run.figure("ca_cert_hash", digest)
    frame = pd.DataFrame(rows, columns=["node", "certificate", "subject", "expires", "days_left", "ca"])
    if not frame.empty:
        run.figure("pki_min_days_left", float(frame["days_left"].min()))
    return frame


@step("ha")
def ha_endpoint(run: Run, sv: Survey) -> dict[str, str]:
    """The HA configs; the VIP answering on its port, from the first control plane."""
    s = run.params.kubeadm
    version = config.Version.parse(run.params.kubernetes_version)
    files = ha.render(s.ha, s.control_plane_endpoint, s.vip_interface,
                      [(h.name, h.address) for h in sv.control_planes], version)
    host = config.endpoint_host(s.control_plane_endpoint)
    if host and sv.control_planes and sv.control_planes[0].name in sv.facts:
        with run.guarded("ha", sv.control_planes[0].name):  # an unreachable node: a check, no traceback
            port = (config.endpoint_with_port(s.control_plane_endpoint) or "").rsplit(":", 1)[1]
            t = run.transport(sv.control_planes[0].name)
            answers = nodes.tcp_open(t, host, port)
            roles = {x.name: x.role for x in sv.hosts}
            holders = sorted(n for n, f in sv.facts.items() if host in f.addresses)
            workers = [n for n in holders if roles.get(n) != "control-plane"]
            if workers:
                run.check("ha.vip", host, "fail", f"{host} is held by {', '.join(workers)}, not a control plane")
            elif answers:
                run.check("ha.vip", host, "pass", f"{host}:{port} answers (from {t.name})"
                          + (f"; held by {', '.join(holders)}" if holders else ""))
            else:
                initialised = any(sv.initialised.values())
                run.check("ha.vip", host, "fail" if initialised else "info",
                          f"{host}:{port} does not answer" + ("" if initialised else " (expected before init)"))
    return files


@step("actions")
def plan_actions(run: Run, sv: Survey) -> pd.DataFrame:
    """What apply would run, per node; init/join/reset are destructive and need confirm. In apply, where
    kubeadm is installed, they run (execute.Conductor): init, control planes one at a time behind a gate,
    workers in parallel."""
    s = run.params.kubeadm
    endpoint = _endpoint(sv)
    ca_hash = run.figures.get("ca_cert_hash")
    state = {h: sv.initialised[h] or bool(f.kube.present or f.kube.manifests) for h, f in sv.facts.items()}
    acts = actions.plan([(h.name, h.role) for h in sv.hosts if h.name in sv.facts], sv.initialised, endpoint,
                        ca_hash, s.token_ttl, s.init_timeout_s, s.reset, state)
    from ...run import DestructiveRefused

    if run.params.mode == "apply":
        try:
            run.require_confirm("kubeadm init/join/reset")
        except DestructiveRefused as exc:
            for a in acts:
                if a.step != "none":
                    run.check(f"apply.{a.step}", a.host, "drift", f"refused, nothing changed: {exc}")
            return _actions_frame(acts)
    if not any(c.step == "preflight" for c in run.checks):  # called without them: apply is never unguarded
        record_preflight(run, sv)
        audit_pki(run, sv)
    runnable: list[actions.Action] = []
    found = actions.blockers(run.checks, s.ignore_preflight_errors)
    for a in acts:
        f = sv.facts[a.host]
        if a.step == "none":
            run.check("apply.node", a.host, "pass", a.why)
        elif not f.kube.kubeadm:
            status = "n/a in lab" if sv.lab[a.host] else ("error" if run.params.mode == "apply" else "drift")
            run.check(f"apply.{a.step}", a.host, status, "unavailable: kubeadm not installed"
                      + (" (not installable in the lab)" if sv.lab[a.host] else " (chapter 01 installs it)")
                      + f"; would run: {' ; '.join(a.commands)}")
        elif run.params.mode == "apply":
            runnable.append(a)
        else:
            held = (found.get("runner", []) + found.get(a.host, [])) if a.step != "reset" else []
            run.check(f"apply.{a.step}", a.host, "drift", f"apply would run: {' ; '.join(a.commands)}"
                      + (f" (held back while {', '.join(held)} fail)" if held else ""))
    if run.params.mode == "apply":
        runnable = _unblocked(run, sv, runnable)
        if runnable:
            _conduct(run, sv, runnable, endpoint)
        elif all(a.step == "none" for a in acts):
            run.check("apply.summary", "runner", "pass", "nothing to do: every node is initialised and no reset "
                      "is pending; no kubeadm command ran")
    return _actions_frame(acts)


def _unblocked(run: Run, sv: Survey, runnable: list[actions.Action]) -> list[actions.Action]:
    """Drop what the chapter's own checks say would fail: a blocked init or control plane stops every join
    after it (control planes join in order), a blocked worker only itself. Resets are never blocked."""
    found = actions.blockers(run.checks, run.params.kubeadm.ignore_preflight_errors)
    hint = "fix them, or name preflight checks in kubeadm.ignore_preflight_errors"
    out: list[actions.Action] = []
    stop: str | None = ", ".join(found["runner"]) + " failed" if "runner" in found else None
    for a in runnable:
        mine = found.get(a.host)
        if a.step == "reset":
            out.append(a)
        elif stop:
            run.check(f"apply.{a.step}", a.host, "fail", f"not attempted: {stop} ({hint})")
        elif mine:
            run.check(f"apply.{a.step}", a.host, "fail", f"not attempted: {', '.join(mine)} failed here ({hint})")
            if a.step in ("init", "join-control-plane"):
                stop = f"{a.host} could not {a.step.replace('-', ' ')}"
        else:
            out.append(a)
    return out


def _endpoint(sv: Survey) -> str:
    s = sv.rendered
    cfg = next((d for d in s.documents if d.get("kind") == "ClusterConfiguration"), {}) if s else {}
    return str(cfg.get("controlPlaneEndpoint") or (f"{sv.control_planes[0].address}:6443" if sv.control_planes
                                                    else "<endpoint>:6443"))


def _conduct(run: Run, sv: Survey, runnable: list[actions.Action], endpoint: str) -> None:
    """Run the actions on nodes with kubeadm; each outcome becomes a check, timings become figures."""
    from . import execute

    if sv.rendered is None:
        run.check("apply.summary", "runner", "fail", "no valid kubeadm config was rendered: nothing ran")
        return
    ready = [h for h in sv.control_planes if sv.initialised.get(h.name) and h.name not in run.params.kubeadm.reset]
    first = next((a.host for a in runnable if a.step == "init"), ready[0].name if ready else None)
    members = [execute.Member(h.name, h.address, h.role, sv.lab.get(h.name, False)) for h in sv.hosts]
    conductor = execute.Conductor(run, run.params.kubeadm, sv.rendered, endpoint, members, first,
                                  lambda o: run.check(o.check, o.host, o.status, o.detail))
    with run.guarded("actions", first or "runner"):
        conductor.conduct(runnable)
    run.figure("apply_timings_s", conductor.timings)
    _read_cluster(run, sv, " after apply")  # verify shows the cluster apply left, not the one before


def _actions_frame(acts: list[actions.Action]) -> pd.DataFrame:
    return pd.DataFrame([{"node": a.host, "step": a.step, "commands": "\n".join(a.commands), "why": a.why}
                         for a in acts], columns=["node", "step", "commands", "why"])


@step("verify")
def record_verify(run: Run, sv: Survey) -> pd.DataFrame:
    if sv.cluster is None:
        return pd.DataFrame(columns=["node", "ready", "kubelet"])
    for check, host, status, detail in sv.cluster.rows:
        run.check(check, host, status, detail)
    return pd.DataFrame(sv.cluster.nodes, columns=["node", "ready", "kubelet"])


@dataclass
class Result:
    survey: Survey
    preflight: pd.DataFrame
    pki: pd.DataFrame
    ha_files: dict[str, str]
    actions: pd.DataFrame
    nodes: pd.DataFrame


def plan(run: Run) -> Result:
    """The whole chapter in one call (the notebook calls the steps one by one)."""
    rendered = plan_config(run)
    sv = survey(run, rendered)
    record_existing(run, sv)
    pf = record_preflight(run, sv)
    audit = audit_pki(run, sv)
    files = ha_endpoint(run, sv)
    acts = plan_actions(run, sv)
    ns = record_verify(run, sv)
    run.figure("survey_wall_s", sv.wall_s)
    return Result(sv, pf, audit, files, acts, ns)
