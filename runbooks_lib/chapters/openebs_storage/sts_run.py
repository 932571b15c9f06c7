"""The StatefulSet trial against the cluster (apply + confirm): create the seed's Service +
StatefulSet through the objects layer, wait (by watch, bounded) ordinal by ordinal for the claim
Bound and the pod Ready, follow each volume's cStor chain, write a marker in pod 0's volume, delete
pod 0 and read the marker back from its successor; cleanup deletes the run's objects and its claims
(they outlive the StatefulSet) and waits for them to be gone. Checks are recorded by chapter.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...kube import KubeClient, KubeError, plan, verify
from ...kube.manifests import RUN_LABEL, run_id_label
from ...kube.objects import ObjectRef
from ...kube.podexec import ExecResult
from ...kube.status import CURRENT, IN_PROGRESS, Status
from . import cstor, sts
from .settings import Settings

Obj = dict[str, Any]
CSI_DRIVER = "cstor.csi.openebs.io"
KINDS = ["StatefulSet", "Service", "Pod", "PersistentVolumeClaim"]


def volume_chain(kc: KubeClient, pvc: Obj, namespace: str) -> list[tuple[str, bool, str]]:
    """PVC → CVC → CV → CVRs of one claim, read from ``namespace`` (where cStor keeps them)."""
    pv = (pvc.get("spec") or {}).get("volumeName") or ""
    cvc = kc.get_or_none("CStorVolumeConfig", pv, namespace, api_version=cstor.CSTOR_API) if pv else None
    cv = kc.get_or_none("CStorVolume", pv, namespace, api_version=cstor.CSTOR_API) if pv else None
    cvrs = kc.list_objects("CStorVolumeReplica", namespace, label_selector=f"cstorvolume.openebs.io/name={pv}",
                           api_version=cstor.CSTOR_API) if pv else []
    return cstor.health_chain(pvc, cvc, cv, cvrs)


def pools_online(kc: KubeClient) -> tuple[int, str]:
    """(ONLINE pool instances, what was seen): CSPIs of every namespace; a missing CRD says so."""
    try:
        cspis = kc.list_objects("CStorPoolInstance", None, api_version=cstor.CSTOR_API)
    except KubeError as exc:
        return 0, f"CStorPoolInstance not served ({exc})"
    seen = cstor.pool_instances(cspis)
    return sum(1 for _, ok, _ in seen if ok), ", ".join(f"{n} {p}" for n, _, p in seen) or "no CStorPoolInstance"


def csi_driver(kc: KubeClient) -> bool:
    """The cStor chart registers CSIDriver cstor.csi.openebs.io (cstor-operators templates/csi-driver.yaml)."""
    try:
        return kc.get_or_none("CSIDriver", CSI_DRIVER, None, api_version="storage.k8s.io/v1") is not None
    except KubeError:
        return False


def exists(kind: str, name: str, namespace: str) -> verify.Expectation:
    return verify.Expectation(ObjectRef("", kind, name, namespace), f"{kind} {namespace}/{name} created",
                              lambda o: Status(CURRENT if o else IN_PROGRESS, "present" if o else "absent"))


def gone(kind: str, namespace: str, selector: str) -> verify.Expectation:
    def judge(objs: list[Obj]) -> Status:
        names = ", ".join(sorted(o["metadata"]["name"] for o in objs))
        return Status(IN_PROGRESS if objs else CURRENT, f"left: {names}" if objs else "none left")
    return verify.Expectation(ObjectRef("", kind, selector, namespace), f"{kind}s {selector} gone", judge,
                              label_selector=selector)


def replaced(name: str, namespace: str, old_uid: str) -> verify.Expectation:
    def judge(o: Obj | None) -> Status:
        if o is None or o["metadata"].get("uid") == old_uid:
            return Status(IN_PROGRESS, "not re-created yet" if o is None else "still the deleted pod")
        return Status(CURRENT if sts.is_ready(o) else IN_PROGRESS, "re-created, " +
                      ("Ready" if sts.is_ready(o) else str((o.get("status") or {}).get("phase", "Pending"))))
    return verify.Expectation(ObjectRef("v1", "Pod", name, namespace), f"pod {namespace}/{name} back and Ready",
                              judge)


@dataclass
class Ordinal:
    index: int
    claim: str
    pod: str
    created: verify.VerifyResult | None = None
    bound: verify.VerifyResult | None = None
    bind_s: float | None = None
    problems: list[str] = field(default_factory=list)
    chain: list[tuple[str, bool, str]] = field(default_factory=list)
    ready: verify.VerifyResult | None = None
    ready_s: float | None = None


@dataclass
class Trial:
    names: sts.Names
    namespace: str
    replicas: int
    plan: plan.Plan | None = None
    unavailable: str = ""                       # the trial could not go on: why
    ordinals: list[Ordinal] = field(default_factory=list)
    snapshots: list[dict[int, bool]] = field(default_factory=list)
    marker: str = ""
    written: ExecResult | None = None
    read: ExecResult | None = None
    back: verify.VerifyResult | None = None
    back_s: float | None = None
    restart_problems: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def run_trial(kc: KubeClient, s: Settings, objs: list[Obj], t: Trial, *, wait_binding: bool,
              clock: Callable[[], float] = time.monotonic) -> Trial:
    """Apply ``objs`` and observe (see the module docstring); ``wait_binding`` False: report the
    first claim's state once it exists instead of waiting for a binding nothing will do."""
    t0 = clock()
    t.plan = plan.apply(kc, plan.plan(kc, objs), confirmed=True)
    if any(c.action in ("error", "conflict") for c in t.plan.changes):
        t.wall_s = round(clock() - t0, 2)
        return t  # the plan's checks say why; nothing to observe
    n, ns, timeout = t.names, t.namespace, s.pvc_timeout_s
    selector = f"{RUN_LABEL}={run_id_label(objs[0]['metadata']['labels'][RUN_LABEL])}"
    since = t0
    for i in range(t.replicas):
        o = Ordinal(i, n.claim(i), n.pod(i))
        t.ordinals.append(o)
        o.created = verify.wait(kc, exists("PersistentVolumeClaim", o.claim, ns), timeout)
        if not o.created.ok:
            break
        if not wait_binding:
            pvc = kc.get_or_none("PersistentVolumeClaim", o.claim, ns) or {}
            t.unavailable = f"PVC {ns}/{o.claim} {(pvc.get('status') or {}).get('phase') or 'without a phase'}"
            break
        o.bound = verify.wait(kc, verify.pvc_bound(o.claim, ns), timeout)
        bound_at = clock()
        if not o.bound.ok:
            break
        o.bind_s = round(bound_at - since, 3)
        pvc = kc.get("PersistentVolumeClaim", o.claim, ns)
        o.problems = sts.claim_problems(pvc, n, i)
        o.chain = volume_chain(kc, pvc, s.namespace)
        watch = sts.OrderWatch(n, i, clock)
        o.ready = verify.wait(kc, verify.Expectation(ObjectRef("v1", "Pod", selector, ns), f"pod {ns}/{o.pod} Ready",
                                                     watch, label_selector=selector), timeout)
        t.snapshots += watch.snapshots
        if not o.ready.ok:
            break
        since = watch.ready_at.get(i, clock())
        o.ready_s = round(since - bound_at, 3)
    if len(t.ordinals) == t.replicas and all(o.ready and o.ready.ok for o in t.ordinals):
        stable_storage(kc, t, timeout, clock)
    t.wall_s = round(clock() - t0, 2)
    return t


def stable_storage(kc: KubeClient, t: Trial, timeout: float, clock: Callable[[], float]) -> None:
    """Marker into pod 0's volume, pod 0 deleted, its successor (same name) must mount the same
    claim on the same volume and read the marker back."""
    ns, pod, claim = t.namespace, t.names.pod(0), t.names.claim(0)
    before, claim_before = kc.get("Pod", pod, ns), kc.get("PersistentVolumeClaim", claim, ns)
    t.marker = f"runbooks-{before['metadata']['uid']}"
    t.written = kc.exec(pod, ns, sts.marker_command(t.marker), timeout=30)
    kc.delete("Pod", pod, ns)
    t0 = clock()
    t.back = verify.wait(kc, replaced(pod, ns, before["metadata"]["uid"]), timeout)
    t.back_s = round(clock() - t0, 3) if t.back.ok else None
    after = kc.get_or_none("Pod", pod, ns)
    t.restart_problems = sts.restart_problems(before, after, claim_before,
                                              kc.get_or_none("PersistentVolumeClaim", claim, ns))
    if t.back.ok and t.written.ok:
        t.read = kc.exec(pod, ns, sts.read_command(), timeout=30)


def pv_gone(name: str) -> verify.Expectation:
    def judge(o: Obj | None) -> Status:
        policy = ((o or {}).get("spec") or {}).get("persistentVolumeReclaimPolicy", "?")
        return Status(IN_PROGRESS if o else CURRENT, f"still there (reclaimPolicy {policy})" if o else "deleted")
    return verify.Expectation(ObjectRef("v1", "PersistentVolume", name, None), f"PersistentVolume {name} reclaimed",
                              judge)


@dataclass
class Cleanup:
    deleted: list[str]
    left: list[str]
    volumes: dict[str, str]   # PV of each of the run's claims -> reclaimed | what is left


def cleanup(kc: KubeClient, namespace: str, run_id: str, timeout: float) -> Cleanup:
    """Delete the run's StatefulSet and Service, wait for its pods to go, delete its claims (a
    StatefulSet's claims outlive it), wait for them to go, then for their volumes to be reclaimed
    (a Delete reclaim policy removes the PV, and with it cStor's volume)."""
    selector = f"{RUN_LABEL}={run_id_label(run_id)}"
    pvs = [pv for c in kc.list_objects("PersistentVolumeClaim", namespace, label_selector=selector)
           if (pv := (c.get("spec") or {}).get("volumeName"))]
    deleted = kc.delete_by_run_label(run_id, kinds=["StatefulSet", "Service"], namespace=namespace)
    verify.wait(kc, gone("Pod", namespace, selector), timeout)
    deleted += kc.delete_by_run_label(run_id, kinds=["Pod", "PersistentVolumeClaim"], namespace=namespace)
    verify.wait(kc, gone("PersistentVolumeClaim", namespace, selector), timeout)
    left = [f"{k} {namespace}/{o['metadata']['name']}" for k in KINDS
            for o in kc.list_objects(k, namespace, label_selector=selector)]
    volumes = {}
    for pv in pvs:
        obj = kc.get_or_none("PersistentVolume", pv)
        if obj is not None and (obj.get("spec") or {}).get("persistentVolumeReclaimPolicy") == "Retain":
            volumes[pv] = "still there (reclaimPolicy Retain)"   # never reclaimed: no wait
            continue
        r = verify.wait(kc, pv_gone(pv), timeout)
        volumes[pv] = "reclaimed" if r.ok else r.last.removeprefix(f"{IN_PROGRESS}: ")
    return Cleanup(deleted, left, volumes)


def leftovers(kc: KubeClient, namespace: str, run_id: str) -> list[str]:
    """StatefulSet trial objects of other runs (labelled as the trial, another run id)."""
    mine = run_id_label(run_id)
    return [f"{k} {namespace}/{o['metadata']['name']} (run {(o['metadata'].get('labels') or {}).get(RUN_LABEL)})"
            for k in ("StatefulSet", "PersistentVolumeClaim")
            for o in kc.list_objects(k, namespace, label_selector=f"{sts.TRIAL_LABEL}={sts.TRIAL}")
            if (o["metadata"].get("labels") or {}).get(RUN_LABEL) != mine]
