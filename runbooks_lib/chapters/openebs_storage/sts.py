"""The seed's StatefulSet trial on cStor volumes (pure): the headless Service and StatefulSet it
applies (named and labelled for this run, so cleanup finds exactly its objects), and the judgement of
what was observed — claims from the template and Bound, pods Ready in ordinal order (OrderedReady),
pod 0 back with the same claim and volume after a delete, the marker read back.

Seed: Service ``example`` (clusterIP None) + StatefulSet ``example-statefulset`` (3 replicas, nginx,
volumeClaimTemplates ``data`` on ``cstor-csi-disk``, 1Gi, mounted at /var/lib/www/html).
https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...kube import patches, with_run_label
from ...kube.status import CURRENT, IN_PROGRESS, Status
from .cstor import CLASS_NAME
from .settings import Settings

Obj = dict[str, Any]
TRIAL_LABEL = "runbooks.io/trial"
TRIAL = "cstor-statefulset"
TEMPLATE = "data"
MOUNT = "/var/lib/www/html"           # the seed's mountPath
MARKER_FILE = "runbooks-marker"
POD_INDEX = "apps.kubernetes.io/pod-index"


@dataclass(frozen=True)
class Names:
    sts: str
    service: str
    app: str

    def pod(self, ordinal: int) -> str:
        return f"{self.sts}-{ordinal}"

    def claim(self, ordinal: int) -> str:
        """What the StatefulSet controller names the claim: <template>-<statefulset>-<ordinal>."""
        return f"{TEMPLATE}-{self.sts}-{ordinal}"


def names_for(run_id: str) -> Names:
    """``rb-sts-<8 hex of the run id>``: one name per run, a valid Service (RFC 1035) and pod prefix."""
    base = f"rb-sts-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"
    return Names(sts=base, service=base, app=base)


def replicas_for(requested: int | None, pools_online: int) -> int:
    """The operator's count, else the seed's 3 capped at the ONLINE pool instances (at least 1)."""
    return requested if requested is not None else max(1, min(3, pools_online))


def render(s: Settings, n: Names, namespace: str, replicas: int, run_id: str) -> list[Obj]:
    """Headless Service + StatefulSet as in the seed (OrderedReady, claim template ``data``), with
    the chapter's image (mirrored through ``image_registry`` when set) and a small claim size; every
    object, the pod template and the claim template carry the run and trial labels."""
    labels = {"app": n.app, TRIAL_LABEL: TRIAL}
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": n.service, "namespace": namespace, "labels": dict(labels)},
           "spec": {"clusterIP": "None", "selector": {"app": n.app},
                    "ports": [{"name": "web", "protocol": "TCP", "port": 80}]}}
    claim = with_run_label({"metadata": {"name": TEMPLATE, "labels": dict(labels)},
                            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": CLASS_NAME,
                                     "resources": {"requests": {"storage": s.sts_size}}}}, run_id)
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": n.sts, "namespace": namespace, "labels": dict(labels)},
           "spec": {"serviceName": n.service, "replicas": replicas, "podManagementPolicy": "OrderedReady",
                    "selector": {"matchLabels": {"app": n.app}},
                    "template": {"metadata": {"labels": dict(labels)},
                                 "spec": {"terminationGracePeriodSeconds": 5, "containers": [{
                                     "name": "web", "image": s.sts_image,
                                     "ports": [{"containerPort": 80, "name": "web"}],
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                                                   "limits": {"memory": "64Mi"}},
                                     "volumeMounts": [{"name": TEMPLATE, "mountPath": MOUNT}]}]}},
                    "volumeClaimTemplates": [claim]}}
    objs = [with_run_label(svc, run_id), with_run_label(sts, run_id)]
    if s.image_registry:
        objs = patches.mirror_images(objs, {"docker.io": s.image_registry})
    return objs


def ordinal(pod: Obj, n: Names) -> int | None:
    head, _, tail = pod["metadata"]["name"].rpartition("-")
    return int(tail) if head == n.sts and tail.isdigit() else None


def is_ready(pod: Obj | None) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in ((pod or {}).get("status") or {}).get("conditions") or [])


def claim_of(pod: Obj) -> str:
    """The claim mounted as the template's volume ("" when none)."""
    vols = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
    return str(((vols.get(TEMPLATE) or {}).get("persistentVolumeClaim") or {}).get("claimName") or "")


def claim_problems(pvc: Obj | None, n: Names, ordinal_: int) -> list[str]:
    """Why a claim is not the one the template should have produced (and bound): [] when it is."""
    name = n.claim(ordinal_)
    if pvc is None:
        return [f"{name} absent"]
    out = []
    spec, labels = pvc.get("spec") or {}, (pvc.get("metadata") or {}).get("labels") or {}
    if spec.get("storageClassName") != CLASS_NAME:
        out.append(f"{name}: storageClassName {spec.get('storageClassName')!r}, not {CLASS_NAME}")
    if labels.get(TRIAL_LABEL) != TRIAL:
        out.append(f"{name}: not labelled from the claim template ({TRIAL_LABEL} missing)")
    phase = (pvc.get("status") or {}).get("phase")
    if phase != "Bound":
        out.append(f"{name}: {phase or 'no phase'}")
    return out


@dataclass
class OrderWatch:
    """A pods judge (verify selector expectation) for "ordinal ``target`` Ready": at every event it
    keeps a snapshot {ordinal: ready} and the first time each ordinal was seen Ready (``clock``)."""

    n: Names
    target: int
    clock: Callable[[], float]
    snapshots: list[dict[int, bool]] = field(default_factory=list)
    ready_at: dict[int, float] = field(default_factory=dict)

    def __call__(self, pods: list[Obj]) -> Status:
        snap = {o: is_ready(p) for p in pods if (o := ordinal(p, self.n)) is not None}
        self.snapshots.append(snap)
        now = self.clock()
        for o, ready in snap.items():
            if ready:
                self.ready_at.setdefault(o, now)
        seen = ", ".join(f"{self.n.pod(o)} {'Ready' if r else 'not ready'}" for o, r in sorted(snap.items()))
        return Status(CURRENT if snap.get(self.target) else IN_PROGRESS, seen or "no pod yet")


def order_violations(snapshots: list[dict[int, bool]]) -> list[str]:
    """OrderedReady seen from outside: in no snapshot may a pod exist while a lower ordinal is
    missing or not Ready (race-free: it holds at every instant, whenever the snapshot is taken)."""
    out = []
    for snap in snapshots:
        for o in sorted(snap):
            early = [k for k in range(o) if not snap.get(k)]
            if early:
                out.append(f"ordinal {o} existed while {', '.join(map(str, early))} "
                           f"{'was' if len(early) == 1 else 'were'} not Ready")
    return sorted(set(out))


def restart_problems(before: Obj, after: Obj | None, claim_before: Obj, claim_after: Obj | None) -> list[str]:
    """Pod 0 re-created by the controller: same name, new uid, same claim (same uid) on the same volume."""
    if after is None:
        return ["pod 0 did not come back"]
    out = []
    if after["metadata"].get("uid") == before["metadata"].get("uid"):
        out.append("pod 0 was not replaced (same uid)")
    if claim_of(after) != claim_of(before):
        out.append(f"pod 0 mounts {claim_of(after) or 'no claim'}, not {claim_of(before)}")
    if claim_after is None or claim_after["metadata"].get("uid") != claim_before["metadata"].get("uid"):
        out.append(f"claim {claim_of(before)} is not the same object")
    elif (claim_after.get("spec") or {}).get("volumeName") != (claim_before.get("spec") or {}).get("volumeName"):
        out.append(f"claim {claim_of(before)} now names volume {(claim_after.get('spec') or {}).get('volumeName')}")
    return out


def marker_command(marker: str) -> list[str]:
    return ["sh", "-c", f"echo {marker} > {MOUNT}/{MARKER_FILE} && sync && cat {MOUNT}/{MARKER_FILE}"]


def read_command() -> list[str]:
    return ["cat", f"{MOUNT}/{MARKER_FILE}"]
