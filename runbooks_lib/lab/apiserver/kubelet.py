"""A scheduler and a kubelet for the lab's Node objects.

Scheduler: a pod without ``nodeName`` goes to the least loaded Node that matches its
``nodeSelector``, is not cordoned, and whose NoSchedule/NoExecute taints it tolerates, once each of its
PersistentVolumeClaims exists and is Bound; else it stays Pending with ``PodScheduled=False``
(Unschedulable) and a FailedScheduling event.
https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodeselector
https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/

Kubelet: a scheduled pod runs (Running, Ready, a pod IP from its node's podCIDR) after
``pod_ready_s`` when every image is in the lab's catalogue; otherwise its containers wait with
ErrImagePull, then ImagePullBackOff. https://kubernetes.io/docs/concepts/containers/images/#imagepullbackoff
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from runbooks_lib.kube.paths import BUILTIN

from . import catalogue
from .errors import Obj, now_rfc3339


def tolerates(pod: Obj, taint: Obj) -> bool:
    for t in pod["spec"].get("tolerations") or []:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("operator") == "Exists" and (not t.get("key") or t.get("key") == taint.get("key")):
            return True
        if t.get("key") == taint.get("key") and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def unschedulable_reason(pod: Obj, node: Obj) -> str | None:
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (pod["spec"].get("nodeSelector") or {}).items()):
        return "didn't match Pod's node affinity/selector"
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(pod, taint):
            value = f"{taint.get('key')}: {taint.get('value', '')}"
            return "had untolerated taint {" + value + "}"
    if (node.get("spec") or {}).get("unschedulable"):
        return "were unschedulable"
    return None


class Kubelet:
    """Mixed into the server: scheduler and kubelet."""

    store: Any
    pod_ready_s: float
    _born: dict[str, float]
    _put: Callable[..., Obj]
    event: Callable[..., None]
    node_ip: Callable[[str], str]
    next_pod_ip: Callable[[str], str]

    def _unbound_claim(self, pod: Obj) -> str | None:
        """Why the scheduler's VolumeBinding plugin holds the pod back: a claim missing or not Bound
        (no provisioner binds claims in the lab)."""
        ns = pod["metadata"].get("namespace")
        for v in pod["spec"].get("volumes") or []:
            claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim:
                continue
            pvc = self.store.find(BUILTIN["PersistentVolumeClaim"], ns, claim)
            if pvc is None:
                return f'persistentvolumeclaim "{claim}" not found'
            if (pvc.get("status") or {}).get("phase") != "Bound":
                return "pod has unbound immediate PersistentVolumeClaims"
        return None

    def _schedule(self, pod: Obj, nodes: list[Obj], now: float) -> None:
        reasons: dict[str, int] = {}
        fit = []
        for node in nodes:
            why = unschedulable_reason(pod, node)
            if why is None:
                fit.append(node["metadata"]["name"])
            else:
                reasons[why] = reasons.get(why, 0) + 1
        claim = self._unbound_claim(pod)
        if claim or not fit:
            message = f"0/{len(nodes)} nodes are available: " + (claim or ", ".join(
                f"{n} node(s) {why}" for why, n in sorted(reasons.items()))) + "."
            conds = (pod.get("status") or {}).get("conditions") or []
            if not any(c.get("type") == "PodScheduled" and c.get("message") == message for c in conds):
                self._put({**pod, "status": {"phase": "Pending", "conditions": [
                    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
                     "lastTransitionTime": now_rfc3339()}]}}, "kube-scheduler")
                self.event(pod, "FailedScheduling", message, "Warning", "default-scheduler")
            return
        load = dict.fromkeys(fit, 0)
        for p in self.store.list(BUILTIN["Pod"], None):
            if p["spec"].get("nodeName") in load:
                load[p["spec"]["nodeName"]] += 1
        node_name = min(fit, key=lambda n: (load[n], n))
        self._born[pod["metadata"]["uid"]] = now
        self._put({**pod, "spec": {**pod["spec"], "nodeName": node_name},
                   "status": {"phase": "Pending", "conditions": [
                       {"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()}]}},
                  "kube-scheduler")
        self.event(pod, "Scheduled", f"Successfully assigned {pod['metadata']['namespace']}/"
                                     f"{pod['metadata']['name']} to {node_name}", component="default-scheduler")

    def _kubelet(self, pod: Obj, nodes: list[Obj], now: float) -> None:
        status = pod.get("status") or {}
        if status.get("phase") not in (None, "Pending") or pod["metadata"].get("deletionTimestamp"):
            return
        node_name = pod["spec"].get("nodeName")
        if not node_name:
            self._schedule(pod, nodes, now)
            return
        uid = pod["metadata"]["uid"]
        born = self._born.setdefault(uid, now)
        if node_name not in {n["metadata"]["name"] for n in nodes} or now - born < self.pod_ready_s:
            return
        host_ip = self.node_ip(node_name)
        ts = now_rfc3339()
        containers = pod["spec"].get("containers") or []
        known = catalogue.images(self.store.find(BUILTIN["ConfigMap"], catalogue.NAMESPACE, catalogue.NAME))
        missing = [c for c in containers if catalogue.normalize(str(c.get("image", ""))) not in known]
        if missing:
            self._image_pull_failed(pod, missing, host_ip, now - born >= 3 * self.pod_ready_s)
            return
        ip = host_ip if pod["spec"].get("hostNetwork") else self.next_pod_ip(node_name)
        self._put({**pod, "status": {
            "phase": "Running", "hostIP": host_ip, "podIP": ip, "podIPs": [{"ip": ip}], "startTime": ts,
            "qosClass": status.get("qosClass", "BestEffort"),
            "conditions": [{"type": t, "status": "True", "lastTransitionTime": ts}
                           for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                                     "PodScheduled")],
            "containerStatuses": [{"name": c.get("name"), "image": c.get("image"), "ready": True, "started": True,
                                   "imageID": str(c.get("image", "")).split(":")[0] + "@sha256:"
                                   + hashlib.sha256(str(c.get("image")).encode()).hexdigest(),
                                   "containerID": "containerd://" + hashlib.sha256(uid.encode()).hexdigest(),
                                   "restartCount": 0, "state": {"running": {"startedAt": ts}}}
                                  for c in containers]}}, "kubelet")
        for c in containers:
            self.event(pod, "Started", f"Started container {c.get('name')}", component="kubelet")

    def _image_pull_failed(self, pod: Obj, missing: list[Obj], host_ip: str, backoff: bool) -> None:
        reason = "ImagePullBackOff" if backoff else "ErrImagePull"
        old = (pod.get("status") or {}).get("containerStatuses") or []
        if old and all((s.get("state") or {}).get("waiting", {}).get("reason") in (reason, None) for s in old) \
                and any((s.get("state") or {}).get("waiting", {}).get("reason") == reason for s in old):
            return
        bad = {str(c.get("name")) for c in missing}
        ts = now_rfc3339()

        def waiting(c: Obj) -> Obj:
            image = c.get("image")
            if c.get("name") not in bad:
                return {"waiting": {"reason": "PodInitializing"}}
            msg = (f'Back-off pulling image "{image}"' if backoff else
                   f'failed to pull and unpack image "{image}": not in the lab\'s image catalogue '
                   f"({catalogue.NAMESPACE}/{catalogue.NAME})")
            return {"waiting": {"reason": reason, "message": msg}}
        self._put({**pod, "status": {
            "phase": "Pending", "hostIP": host_ip, "startTime": ts,
            "qosClass": (pod.get("status") or {}).get("qosClass", "BestEffort"),
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": ts},
                           {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                            "message": f"containers with unready status: {sorted(bad)}", "lastTransitionTime": ts}],
            "containerStatuses": [{"name": c.get("name"), "image": c.get("image"), "ready": False, "started": False,
                                   "restartCount": 0, "imageID": "", "state": waiting(c)} for c in containers(pod)]}},
                  "kubelet")
        for c in missing:
            self.event(pod, "Failed" if not backoff else "BackOff",
                       f'Failed to pull image "{c.get("image")}": not in the lab\'s image catalogue'
                       if not backoff else f'Back-off pulling image "{c.get("image")}"', "Warning", "kubelet")


def containers(pod: Obj) -> list[Obj]:
    return list(pod["spec"].get("containers") or [])
