"""Is an object where it should be? kstatus's rules (kubernetes-sigs/cli-utils pkg/kstatus), plus
Argo CD's where kstatus is silent (APIService Available, paused Deployments, pods in back-off, lost
PVCs, Jobs complete).

``compute(obj)`` returns a :class:`Status`: ``current``, ``in_progress``, ``failed``, ``terminating``
or ``not_found``, with a message. Rules in order: deletionTimestamp → terminating; observedGeneration
behind generation → in_progress; Reconciling/Stalled conditions; the per-kind rule; a Ready
condition; otherwise current.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
CURRENT, IN_PROGRESS, FAILED, TERMINATING, NOT_FOUND = "current", "in_progress", "failed", "terminating", "not_found"


@dataclass(frozen=True)
class Status:
    status: str
    message: str

    @property
    def done(self) -> bool:
        return self.status == CURRENT


def cond(obj: Obj, ctype: str) -> Obj | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return dict(c)
    return None


def _is(obj: Obj, ctype: str, value: str = "True") -> bool:
    c = cond(obj, ctype)
    return c is not None and c.get("status") == value


def _int(d: Obj, key: str, default: int = 0) -> int:
    v = d.get(key)
    return int(v) if isinstance(v, int | str) and str(v).lstrip("-").isdigit() else default


def _deployment(obj: Obj) -> Status:
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    if spec.get("paused"):
        return Status(CURRENT, "paused (suspended)")
    want = _int(spec, "replicas", 1)
    progressing = cond(obj, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Status(FAILED, f"progress deadline exceeded: {progressing.get('message', '')}")
    have, updated, ready, avail = (_int(st, k) for k in ("replicas", "updatedReplicas", "readyReplicas",
                                                         "availableReplicas"))
    if want > updated:
        return Status(IN_PROGRESS, f"{updated} of {want} replicas updated")
    if have > updated:
        return Status(IN_PROGRESS, f"{have - updated} old replicas pending termination")
    if want > ready or updated > avail:
        return Status(IN_PROGRESS, f"{avail} of {want} updated replicas available")
    if not _is(obj, "Available") and cond(obj, "Available") is not None:
        return Status(IN_PROGRESS, "Available condition is not True")
    return Status(CURRENT, f"rolled out: {avail} of {want} available")


def _daemonset(obj: Obj) -> Status:
    st = obj.get("status") or {}
    if "desiredNumberScheduled" not in st:
        return Status(IN_PROGRESS, "desiredNumberScheduled not set yet")
    want = _int(st, "desiredNumberScheduled")
    for key, label in (("currentNumberScheduled", "scheduled"), ("updatedNumberScheduled", "updated"),
                       ("numberAvailable", "available"), ("numberReady", "ready")):
        if want > _int(st, key):
            return Status(IN_PROGRESS, f"{_int(st, key)} of {want} pods {label}")
    return Status(CURRENT, f"rolled out: {want} pods available")


def _statefulset(obj: Obj) -> Status:
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    if (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
        return Status(CURRENT, "OnDelete update strategy")
    want = _int(spec, "replicas", 1)
    for key in ("replicas", "readyReplicas", "currentReplicas"):
        if want > _int(st, key):
            return Status(IN_PROGRESS, f"{_int(st, key)} of {want} {key}")
    if st.get("updateRevision") and st.get("currentRevision") != st.get("updateRevision"):
        return Status(IN_PROGRESS, "update revision not yet current")
    return Status(CURRENT, f"{want} replicas ready")


def _pod(obj: Obj) -> Status:
    st = obj.get("status") or {}
    for cs in (st.get("containerStatuses") or []) + (st.get("initContainerStatuses") or []):
        reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason", "")
        if reason == "CrashLoopBackOff" or reason.startswith("Err") or reason.endswith(("Error", "BackOff")):
            return Status(FAILED, f"container {cs.get('name')}: {reason}")
    phase = st.get("phase")
    if phase in ("Succeeded", "Failed"):
        return Status(CURRENT if phase == "Succeeded" else FAILED, f"phase {phase}")
    if phase == "Running" and _is(obj, "Ready"):
        return Status(CURRENT, "running and ready")
    return Status(IN_PROGRESS, f"phase {phase or 'unset'}" + (", not ready" if phase == "Running" else ""))


def _pvc(obj: Obj) -> Status:
    phase = (obj.get("status") or {}).get("phase")
    if phase == "Lost":
        return Status(FAILED, "phase Lost")
    return Status(CURRENT if phase == "Bound" else IN_PROGRESS, f"phase {phase or 'unset'}")


def _job(obj: Obj) -> Status:
    if _is(obj, "Failed"):
        return Status(FAILED, f"failed: {(cond(obj, 'Failed') or {}).get('message', '')}")
    if _is(obj, "Complete"):
        return Status(CURRENT, "complete")
    return Status(IN_PROGRESS, "running" if (obj.get("status") or {}).get("startTime") else "not started")


def _crd(obj: Obj) -> Status:
    if _is(obj, "NamesAccepted", "False"):
        return Status(FAILED, f"names not accepted: {(cond(obj, 'NamesAccepted') or {}).get('message', '')}")
    est = cond(obj, "Established")
    if est and est.get("status") == "True":
        return Status(CURRENT, "established")
    if est and est.get("status") == "False" and est.get("reason") != "Installing":
        return Status(FAILED, f"not established: {est.get('message', '')}")
    return Status(IN_PROGRESS, "not established yet")


def _apiservice(obj: Obj) -> Status:
    c = cond(obj, "Available")
    if c is None:
        return Status(IN_PROGRESS, "no Available condition yet")
    ok = c.get("status") == "True"
    return Status(CURRENT if ok else IN_PROGRESS, f"Available={c.get('status')} ({c.get('reason', '')}: "
                                                  f"{c.get('message', '')})" if not ok else "available")


def _service(obj: Obj) -> Status:
    spec = obj.get("spec") or {}
    if spec.get("type") == "LoadBalancer" and not ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
        return Status(IN_PROGRESS, "load balancer has no ingress yet")
    if spec.get("type") != "ExternalName" and not spec.get("clusterIP"):
        return Status(IN_PROGRESS, "no clusterIP allocated yet")
    return Status(CURRENT, f"clusterIP {spec.get('clusterIP', '-')}")


def _always(obj: Obj) -> Status:
    return Status(CURRENT, "exists")


RULES: dict[str, Callable[[Obj], Status]] = {
    "Deployment": _deployment, "DaemonSet": _daemonset, "StatefulSet": _statefulset, "Pod": _pod,
    "PersistentVolumeClaim": _pvc, "Job": _job, "CustomResourceDefinition": _crd, "APIService": _apiservice,
    "Service": _service, "ConfigMap": _always, "Secret": _always, "CronJob": _always,
    "PodDisruptionBudget": _always,
}


def compute(obj: Obj | None, min_generation: int = 0) -> Status:
    """kstatus's Compute. ``min_generation`` (the generation an apply returned) makes an object
    observed before that apply in_progress, never current (cli-utils' "cache too old" rule)."""
    if obj is None:
        return Status(NOT_FOUND, "not found")
    meta, st = obj.get("metadata") or {}, obj.get("status") or {}
    if meta.get("deletionTimestamp"):
        return Status(TERMINATING, "being deleted")
    generation = _int(meta, "generation")
    if min_generation and generation < min_generation:
        return Status(IN_PROGRESS, f"generation {generation} is older than the applied {min_generation}")
    if "observedGeneration" in st and _int(st, "observedGeneration") != generation:
        return Status(IN_PROGRESS, f"generation {generation} not yet observed "
                                   f"(observedGeneration {_int(st, 'observedGeneration')})")
    if obj.get("kind") == "DaemonSet" and ("observedGeneration" not in st or not generation):
        return Status(IN_PROGRESS, "generation not yet observed by the controller")
    if _is(obj, "Reconciling"):
        return Status(IN_PROGRESS, f"reconciling: {(cond(obj, 'Reconciling') or {}).get('message', '')}")
    if _is(obj, "Stalled"):
        return Status(FAILED, f"stalled: {(cond(obj, 'Stalled') or {}).get('message', '')}")
    rule = RULES.get(str(obj.get("kind", "")))
    if rule is not None:
        return rule(obj)
    ready = cond(obj, "Ready")
    if ready is not None:
        return Status(CURRENT if ready.get("status") == "True" else IN_PROGRESS,
                      f"Ready={ready.get('status')}" + (f" ({ready.get('message')})" if ready.get("message") else ""))
    return Status(CURRENT, "exists (no status rule for this kind)")
