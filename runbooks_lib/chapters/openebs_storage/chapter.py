"""Notebook 06's glue — the only module that records checks and figures: release and version
decision, node prerequisites over SSH, the cluster's storage, the install plan, cStor (legacy), the
trials and their cleanup. Each step's error becomes an ``error`` check (:meth:`Run.guarded`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ... import kube
from ...inventory import node_hosts
from ...kube import KubeClient, KubeError, helm, plan, sources
from ...transport import TargetUnreachable
from ..system_init.labproof import lab_known_hosts
from . import cstor, fio, nodes, prereq, release, storage, sts, sts_run, trials
from .settings import Settings

CLUSTER = "cluster"
BD_KIND = ("BlockDevice", cstor.BD_API)


@dataclass
class Cluster:
    kc: KubeClient | None
    target: str = ""
    error: str = ""
    lab: bool = False
    rel: helm.HelmRelease | None = None
    decision: release.Decision | None = None
    classes: dict[str, storage.ClassInfo] = field(default_factory=dict)
    hosts: dict[str, str] = field(default_factory=dict)   # node name -> inventory host


def connect(run: Any) -> Cluster:
    """``kube.connect(run)``; unreachable or a bad kubeconfig is a check, not an exception."""
    try:
        kc = kube.connect(run)
    except TargetUnreachable as exc:
        run.check("cluster API", CLUSTER, "unreachable", str(exc))
        return Cluster(None, error=str(exc))
    except KubeError as exc:
        run.check("cluster API", CLUSTER, "error", str(exc))
        return Cluster(None, error=str(exc))
    run.check("cluster API", CLUSTER, "pass", kc.describe())
    c = Cluster(kc, kc.describe(), lab=kc.target.is_double)
    c.hosts = node_hosts(kc.nodes(), run.params.selected_hosts())
    return c


def detect_release(run: Any, c: Cluster, s: Settings) -> release.Decision | None:
    """The installed release from its Helm Secret, and what it means for ``s.engine``."""
    if c.kc is None:
        return None
    with run.guarded("openebs.release", CLUSTER):
        c.rel = helm.read_release(c.kc, s.release, s.namespace)
        c.decision = release.decide(c.rel, s)
        run.check("openebs.release", CLUSTER, c.decision.status, c.decision.detail)
        for note in c.decision.notes:
            run.check("openebs.release.values", CLUSTER, "warn", note)
        r = c.rel
        run.figure("openebs_release", None if r is None else {
            "chart": r.chart, "chart_version": r.chart_version, "app_version": r.app_version, "status": r.status,
            "revision": r.revision, "secret": r.secret})
    return c.decision


def node_prereqs(run: Any, s: Settings, timeout: float = 90.0) -> pd.DataFrame:
    """Every selected node's facts over SSH (in parallel), judged for the engine: a check per row,
    and a matrix (check x node) of statuses."""
    hosts = [h.name for h in run.params.selected_hosts()]
    matrix: dict[str, dict[str, str]] = {}
    todo: list[str] = []
    with run.guarded("node facts over SSH", ", ".join(hosts) or "-"):
        outcomes = run.fleet().map(lambda t: nodes.gather(t, s.base_path, lab_known_hosts), timeout=timeout,
                                   hosts=hosts)
        if run.params.mode == "apply" and s.engine == "cstor-legacy":
            todo = [h for h, o in outcomes.items() if o.value is not None
                    and any(st == "drift" for c, st, _ in prereq.iscsi(o.value, True) if c == "iscsi")]
            for host, done in run.fleet().map(nodes.install_iscsi, timeout=360, hosts=todo).items():
                run.check("iscsi.install", host, "changed" if done.ok else "fail", done.value or done.error or "")
            if todo:  # re-read what was changed: the checks below judge the nodes as they are now
                outcomes.update(run.fleet().map(lambda t: nodes.gather(t, s.base_path, lab_known_hosts),
                                                timeout=timeout, hosts=todo))
        for host, out in outcomes.items():
            if not out.ok or out.value is None:
                run.check("node facts over SSH", host, "unreachable" if out.unreachable else "error", out.error or "")
                continue
            for check, status, detail in prereq.judge(out.value, s):
                if status == "drift" and run.params.mode == "apply" and host in todo:
                    status, detail = "fail", f"still after apply: {detail}"
                run.check(check, host, status, detail)
                matrix.setdefault(check, {})[host] = status
    return pd.DataFrame(matrix).T.reindex(columns=hosts).rename_axis("check")


def cluster_storage(run: Any, c: Cluster) -> pd.DataFrame:
    """StorageClasses (provisioner, binding mode, default), Pending PVCs diagnosed, BlockDevices."""
    rows: list[dict[str, Any]] = []
    if c.kc is None:
        return pd.DataFrame(rows)
    kc = c.kc
    with run.guarded("storage.classes", CLUSTER):
        c.classes = {i.name: i for i in map(storage.class_info, kc.list_objects("StorageClass"))}
        rows = [i.row() for i in c.classes.values()]
        run.check("storage.classes", CLUSTER, "info", ", ".join(
            f"{i.name} ({i.provisioner}, {i.binding})" for i in c.classes.values()) or "no StorageClass")
        run.check("storage.default_class", CLUSTER, *storage.default_classes(list(c.classes.values())))
        pvcs = [p for p in kc.list_objects("PersistentVolumeClaim") if (p.get("status") or {}).get("phase") == "Pending"]
        pods = kc.list_objects("Pod") if pvcs else []
        for p in pvcs:
            status, why = storage.diagnose_pending(p, c.classes, pods, lab=c.lab, scheduled=scheduled(kc, p, pods))
            run.check("storage.pvc_pending", f"{p['metadata'].get('namespace')}/{p['metadata']['name']}", status, why)
    with run.guarded("storage.blockdevices", CLUSTER):
        try:
            bds = kc.list_objects(BD_KIND[0], None, api_version=BD_KIND[1])
        except KubeError as exc:
            run.check("storage.blockdevices", CLUSTER, "info", f"BlockDevice not served (NDM not installed): {exc}")
        else:
            run.check("storage.blockdevices", CLUSTER, "info", ", ".join(
                f"{b['metadata']['name']} ({cstor.bd_node(b)}, {(b.get('status') or {}).get('claimState')})"
                for b in bds) or "none")
    return pd.DataFrame(rows)


def scheduled(kc: KubeClient, pvc: dict[str, Any], pods: list[dict[str, Any]]) -> set[str]:
    """Names of the PVC's consumers with nodeName that the scheduler placed (a Scheduled event)."""
    out = set()
    for p in storage.consumers(pvc, pods):
        if (p.get("spec") or {}).get("nodeName"):
            events = kc.events_for("Pod", p["metadata"]["name"], p["metadata"].get("namespace"))
            if any(e.get("reason") == "Scheduled" for e in events):
                out.add(p["metadata"]["name"])
    return out


def install_plan(run: Any, c: Cluster, s: Settings) -> plan.Plan | None:
    """From a rendered manifest (objects plan; apply applies it), a local chart (helm template when
    the runner has helm), or else the exact helm commands for the operator (info)."""
    commands = "; ".join(release.helm_commands(s))
    if c.kc is None:
        return None
    objs: list[dict[str, Any]] = []
    with run.guarded("install.plan", CLUSTER):
        if s.engine == "cstor-legacy" or (s.manifest is None and s.chart is None):
            run.check("install.plan", CLUSTER, "info", f"no manifest or chart given; the operator runs: {commands}")
            return None
        if s.manifest:
            objs = sources.from_file(s.manifest)
        else:
            try:
                r = helm.render_chart(str(s.chart), s.release, s.namespace, set_values=release.install_values(s))
            except helm.HelmError as exc:
                run.check("install.plan", CLUSTER, "n/a", f"{exc}. Commands: {commands}")
                return None
            run.recorder.note(f"rendered {s.chart} with {r.helm_version}")
            objs = r.objects
        p = plan.plan(c.kc, objs)
        if run.params.mode == "apply":
            plan.apply(c.kc, p, confirmed=run.params.confirmed)
        p.record(run)
        return p
    return None


def cstor_step(run: Any, c: Cluster, s: Settings) -> list[str]:
    """The seed's cStor step: refused on 4.x; otherwise the CSPC validated as the webhook would,
    existing cStor volumes' health chains, and (apply + confirm) the pool and class."""
    if s.engine != "cstor-legacy":
        with run.recorder.in_step("cstor"):
            run.check("cstor", CLUSTER, "info", f"engine {s.engine}: cStor (legacy) not chosen")
        return []
    d = c.decision or release.decide(c.rel, s)
    if d.status == "fail":
        run.check("cstor.version", CLUSTER, "fail", d.detail)
        return []
    if c.kc is None:
        return []
    errors: list[str] = []
    with run.guarded("cstor.cspc", CLUSTER):
        try:
            bds = c.kc.list_objects(BD_KIND[0], s.namespace, api_version=BD_KIND[1])
        except KubeError as exc:
            run.check("cstor.cspc", CLUSTER, "fail", f"BlockDevices cannot be read (NDM/cStor CRDs not installed?): "
                                                      f"{exc}; install openebs-cstor/cstor {s.cstor_chart_version} first")
            return [str(exc)]
        errors = cstor.validate(s.cstor_pools, bds, s.cstor_replica_count)
        for e in errors:
            run.check("cstor.cspc", CLUSTER, "fail", f"refused before any request: {e}")
        if errors:
            return errors
        p = plan.plan(c.kc, cstor.render(s))
        if run.params.mode == "apply":
            run.require_confirm("cStor pool (legacy trial)")
            plan.apply(c.kc, p, confirmed=True)
        p.record(run)
    return errors


def cstor_health(run: Any, c: Cluster) -> None:
    """PVC Bound → CVC Bound → CV Healthy → CVRs Healthy for each cStor PVC; CSPIs ONLINE."""
    if c.kc is None or not any(i.provisioner == "cstor.csi.openebs.io" for i in c.classes.values()):
        return
    kc = c.kc
    with run.guarded("cstor.health", CLUSTER):
        cls = {n for n, i in c.classes.items() if i.provisioner == "cstor.csi.openebs.io"}
        for pvc in kc.list_objects("PersistentVolumeClaim"):
            if (pvc.get("spec") or {}).get("storageClassName") not in cls:
                continue
            status, text = cstor.chain_verdict(sts_run.volume_chain(kc, pvc, run.params.openebs_storage.namespace))
            run.check("cstor.health", f"{pvc['metadata']['namespace']}/{pvc['metadata']['name']}", status, text)
        for name, ok, phase in cstor.pool_instances(kc.list_objects("CStorPoolInstance", None,
                                                                    api_version=cstor.CSTOR_API)):
            run.check("cstor.cspi", name, "pass" if ok else "fail", phase)


def statefulset_trial(run: Any, c: Cluster, s: Settings) -> sts_run.Trial | None:
    """The seed's StatefulSet on cStor volumes (engine cstor-legacy, pool usable). Plan / no confirm:
    what apply would create (server-side dry run). Apply + confirm: claims Bound and healthy, pods
    Ready in ordinal order, pod 0 deleted and back with its claim and marker; cleanup always."""
    if s.engine != "cstor-legacy" or c.kc is None:
        return None
    kc, check, ns = c.kc, "cstor.sts", s.sts_namespace
    run_id = kube.run_id_of(run)
    n = sts.names_for(run_id)
    with run.guarded(check, CLUSTER):
        online, seen = sts_run.pools_online(kc)
        missing = [] if cstor.CLASS_NAME in c.classes else [f"StorageClass {cstor.CLASS_NAME} absent"]
        if not online or missing:
            run.check(check, CLUSTER, "n/a", "the StatefulSet trial needs a usable cStor pool: "
                      + "; ".join(missing + [f"no CStorPoolInstance ONLINE ({seen})"] * (not online)))
            return None
        t = sts_run.Trial(n, ns, sts.replicas_for(s.sts_replicas, online))
        objs = sts.render(s, n, ns, t.replicas, run_id)
        what = (f"Service + StatefulSet {ns}/{n.sts} ({t.replicas} replicas, OrderedReady, {s.sts_image}, claims "
                f"{', '.join(n.claim(i) for i in range(t.replicas))} of {s.sts_size} on {cstor.CLASS_NAME})")
        if run.params.mode != "apply" or not run.params.confirmed:
            p = plan.plan(kc, objs)
            bad = [ch.describe() for ch in p.changes if ch.action in ("error", "conflict")]
            run.check(check, ns, "fail" if bad else "info",
                      f"server-side dry run refused: {'; '.join(bad)}" if bad else
                      f"apply with confirm={run.params.cluster_name} creates {what}, observes it and deletes it "
                      f"with its claims (dry run: {p.summary()})")
            return None
        for old in sts_run.leftovers(kc, ns, run_id):
            run.check("cstor.sts.leftover", ns, "warn", f"{old}: left by another run (its cleanup did not finish)")
        wait_binding = not (c.lab and not sts_run.csi_driver(kc))
        try:
            sts_run.run_trial(kc, s, objs, t, wait_binding=wait_binding)
            record_trial(run, c, t, what)
        finally:
            done = sts_run.cleanup(kc, ns, run_id, s.pvc_timeout_s)
            deleted, left = done.deleted, done.left
            run.check("cstor.sts.cleanup", ns, "fail" if left else "changed" if deleted else "pass",
                      f"still there: {', '.join(left)}" if left else
                      f"deleted {len(deleted)} ({', '.join(deleted)}); nothing of this run left" if deleted
                      else "nothing of this run to delete")
            kept = {pv: why for pv, why in done.volumes.items() if why != "reclaimed"}
            if done.volumes:
                run.check("cstor.sts.reclaim", ns, ("warn" if all("Retain" in w for w in kept.values()) else "fail")
                          if kept else "pass",
                          "; ".join(f"PersistentVolume {pv} {why}" + (": delete it and its cStor volume by hand"
                                                                       if "Retain" in why else "")
                                    for pv, why in kept.items()) if kept else
                          f"the {len(done.volumes)} volumes of the trial's claims were reclaimed (PVs deleted)")
        return t
    return None


def record_trial(run: Any, c: Cluster, t: sts_run.Trial, what: str) -> None:
    """The checks and figures of one StatefulSet trial."""
    assert t.plan is not None
    t.plan.record(run)
    run.figure("cstor_statefulset", {
        "replicas": t.replicas, "unavailable": t.unavailable, "wall_s": t.wall_s, "pod0_back_s": t.back_s,
        "bind_s": {o.claim: o.bind_s for o in t.ordinals}, "ready_s": {o.pod: o.ready_s for o in t.ordinals}})
    lab = "n/a in lab" if c.lab else "fail"
    for o in t.ordinals:
        if o.created is not None and not o.created.ok:
            run.check("cstor.sts.claim", o.claim, "fail", f"the StatefulSet controller made no claim: {o.created.detail}")
        elif t.unavailable:
            run.check("cstor.sts.claim", o.claim, lab, f"unavailable: no cStor provisioner answers in the lab "
                      f"({t.unavailable}; CSIDriver {sts_run.CSI_DRIVER} is not registered, so no binding was "
                      "waited for)")
        elif o.bound is not None and not o.bound.ok:
            pvc = c.kc.get("PersistentVolumeClaim", o.claim, t.namespace) if c.kc else {}
            status, why = storage.diagnose_pending(pvc, c.classes, [], lab=c.lab)
            run.check("cstor.sts.claim", o.claim, "n/a in lab" if status == "n/a in lab" else "fail",
                      f"{o.bound.detail}: {why}")
        else:
            run.check("cstor.sts.claim", o.claim, "fail" if o.problems else "pass", "; ".join(o.problems) or
                      f"created from the claim template, Bound {o.bind_s} s after "
                      f"{'apply' if o.index == 0 else f'pod {o.index - 1} Ready'}")
            run.check("cstor.sts.health", o.claim, *cstor.chain_verdict(o.chain))
        if o.ready is not None:
            run.check("cstor.sts.ready", o.pod, "pass" if o.ready.ok else "fail",
                      f"Ready {o.ready_s} s after its claim was Bound" if o.ready.ok else o.ready.detail)
    if not t.ordinals or t.unavailable or not all(o.ready and o.ready.ok for o in t.ordinals):
        return
    bad = sts.order_violations(t.snapshots)
    run.check("cstor.sts.order", t.names.sts, "fail" if bad else "pass", "; ".join(bad) or
              f"OrderedReady: in {len(t.snapshots)} snapshots no pod existed before its predecessors were Ready")
    pod = t.names.pod(0)
    if t.written is None or not t.written.ok:
        err = (t.written.stderr or t.written.stdout).strip() if t.written else "no exec"
        run.check("cstor.sts.marker", pod, "n/a in lab" if c.lab else "fail",
                  f"unavailable: exec cannot write in {pod}'s volume ({err})")
    back = t.back.detail if t.back else ""
    run.check("cstor.sts.stable_storage", pod, "fail" if t.restart_problems else "pass",
              "; ".join(t.restart_problems) + (f" ({back})" if t.restart_problems else "") or
              f"deleted and back in {t.back_s} s with claim {t.names.claim(0)} on the same volume")
    if t.read is not None:
        got = t.read.stdout.strip()
        run.check("cstor.sts.marker", pod, "pass" if got == t.marker else "fail",
                  f"marker {t.marker} written before the delete, read back by the new pod" if got == t.marker
                  else f"read back {got or (t.read.stderr.strip() or 'nothing')!r}, not {t.marker}")


# ----------------------------------------------------------------------------- trials

def fio_trials(run: Any, s: Settings) -> pd.DataFrame:
    """Apply: fio on every selected node against the hostpath base path's filesystem, in parallel
    (node-level trials: in a real cluster the same jobs run in a pod on a PVC). Plan: what would run."""
    hosts = [h.name for h in run.params.selected_hosts()]
    cols = ["host", "job", "iops", "bw_kib_s", "p50_ms", "p99_ms", "sync_p99_ms"]
    if run.params.mode != "apply":
        with run.recorder.in_step("trial.fio"):
            run.check("trial.fio", ", ".join(hosts) or "-", "info",
                      f"apply runs {len(fio.JOBS)} fio jobs x {s.fio_runtime_s} s on each node under {s.base_path} "
                      f"(node-level, nothing left behind): {', '.join(j for j, _ in fio.JOBS)}")
        return pd.DataFrame(columns=cols)
    rows: list[dict[str, Any]] = []
    figures: dict[str, Any] = {}
    budget = (s.fio_runtime_s + 1) * len(fio.JOBS) + 480
    with run.guarded("trial.fio", ", ".join(hosts)):
        outcomes = run.fleet().map(lambda t: trials.node_fio(t, s, s.fio_install), timeout=budget, hosts=hosts)
        for host, out in outcomes.items():
            r = out.value
            if r is None or r.error:
                run.check("trial.fio", host, "unreachable" if out.unreachable else "fail",
                          out.error or (r.error if r else ""))
                continue
            figures[host] = {"fio_version": r.fio_version, "duration_s": r.duration_s, "installed": r.installed,
                             "jobs": fio.summary(r.results)}
            rows += [{"host": host, **{k: v for k, v in vars(j).items()}} for j in r.results]
            by = {j.job: j for j in r.results}
            sync = by.get("fdatasync_2300")
            p99 = sync.sync_p99_ms if sync else None
            detail = (f"{r.fio_version}, node-level on {s.base_path}'s filesystem, {r.duration_s:.0f} s"
                      + (f", installed {r.installed}" if r.installed else "") + ": "
                      + "; ".join(f"{j.job} {j.iops:.0f} IOPS {j.bw_kib_s / 1024:.1f} MiB/s p50 {j.p50_ms} ms "
                                  f"p99 {j.p99_ms} ms" for j in r.results if j.job != "fdatasync_2300"))
            run.check("trial.fio", host, "pass", detail)
            if p99 is not None:
                ok = p99 <= fio.FDATASYNC_P99_MS
                run.check("trial.fio.fdatasync_p99", host, "pass" if ok else "warn",
                          f"fdatasync p99 {p99} ms ({'within' if ok else 'above'} etcd's {fio.FDATASYNC_P99_MS:g} ms "
                          "guideline)")
            left = trials.leftovers(run.transport(host), s.base_path)
            run.check("trial.fio.cleanup", host, "pass" if left == "0" else "fail", f"{left} fio dir(s) left")
    run.figure("fio", figures)
    return pd.DataFrame(rows, columns=cols)


def trial_classes(c: Cluster, s: Settings) -> list[str]:
    if s.trial_classes:
        return s.trial_classes
    return [n for n, i in c.classes.items() if i.provisioner == "openebs.io/local" and "hostpath" in n] or (
        ["openebs-hostpath"] if "openebs-hostpath" in c.classes else [])


def pvc_trials(run: Any, c: Cluster, s: Settings, namespace: str = "default") -> list[trials.PvcTrial]:
    """Per class: PVC + consumer pod (apply + confirm: the cleanup deletes them), bind and attach
    latency, write/read/checksum, the file found on the node under the PV path (hostpath)."""
    done: list[trials.PvcTrial] = []
    if c.kc is None:
        return done
    names = trial_classes(c, s)
    if not names:
        run.check("trial.pvc", CLUSTER, "n/a", "no OpenEBS hostpath StorageClass to trial (trial_classes empty)")
        return done
    if not run.params.confirmed:
        run.check("trial.pvc", CLUSTER, "info", f"apply with confirm={run.params.cluster_name} creates a {s.trial_size} "
                                                f"PVC + pod per class ({', '.join(names)}) and deletes them after")
        return done
    run_id = kube.run_id_of(run)
    for sc in names:
        if sc not in c.classes:
            run.check("trial.pvc", sc, "fail", f"StorageClass {sc} does not exist")
            continue
        with run.guarded("trial.pvc", sc):
            t = trials.pvc_trial(c.kc, s, sc, namespace, run_id)
            done.append(t)
            b = t.bound
            if b is not None and not b.ok:
                pvc = c.kc.get("PersistentVolumeClaim", t.pvc, namespace)
                pods = c.kc.list_objects("Pod", namespace)
                status, why = storage.diagnose_pending(pvc, c.classes, pods, lab=c.lab,
                                                       scheduled=scheduled(c.kc, pvc, pods))
                run.check("trial.pvc.bound", sc, status if status != "info" else "fail", f"{b.detail}: {why}")
                continue
            run.check("trial.pvc.bound", sc, "pass", b.detail if b else "")
            ready = t.pod_ready
            run.check("trial.pvc.attach", sc, "pass" if ready and ready.ok else "fail", ready.detail if ready else "")
            run.check("trial.pvc.checksum", sc, "pass" if t.checksum else "fail",
                      f"sha256 {t.checksum or 'not read'} on {t.node or '?'} at {t.pv_path or '?'}")
            if s.trial_fio:
                fio_check(run, sc, t)
            host = c.hosts.get(t.node)
            if host and t.pv_path and t.checksum:
                on_node = trials.file_on_node(run.transport(host), t.pv_path)
                run.check("trial.pvc.on_node", host, "pass" if on_node == t.checksum else "fail",
                          f"{t.pv_path}/{trials.TRIAL_FILE} sha256 {on_node or 'absent'}")
    return done


def fio_check(run: Any, sc: str, t: trials.PvcTrial) -> None:
    """The in-pod fio result of one class's trial: a check and the class's figures."""
    if t.fio_error or not t.fio:
        run.check("trial.pvc.fio", sc, "fail", t.fio_error or "no fio result")
        return
    run.check("trial.pvc.fio", sc, "pass", f"{t.fio_version} in pod {t.pod} on its PVC: " + "; ".join(
        f"{j.job} {j.iops:.0f} IOPS p99 {j.sync_p99_ms or j.p99_ms} ms" for j in t.fio))
    run.figure("fio_classes", {**(run.figures.get("fio_classes") or {}),
                               sc: {"fio_version": t.fio_version, "jobs": fio.summary(t.fio)}})


def cleanup(run: Any, c: Cluster, done: list[trials.PvcTrial]) -> list[str]:
    """Delete this run's trial objects by run label (apply + confirm), then check the hostpath
    directories are gone on their nodes."""
    if c.kc is None or not run.params.confirmed:
        return []
    deleted: list[str] = []
    with run.guarded("trial.cleanup", CLUSTER):
        deleted = c.kc.delete_by_run_label(kube.run_id_of(run), kinds=["Pod", "PersistentVolumeClaim"])
        run.check("trial.cleanup", CLUSTER, "changed" if deleted else "pass",
                  f"deleted {len(deleted)}: {', '.join(deleted)}" if deleted else "nothing of this run left")
        for t in done:
            host = c.hosts.get(t.node)
            if host and t.pv_path:
                gone = trials.dir_gone(run.transport(host), t.pv_path)
                run.check("trial.cleanup.dir", host, "pass" if gone else "warn",
                          f"{t.pv_path} {'gone' if gone else 'still there (the helper pod removes it shortly)'}")
    return deleted
