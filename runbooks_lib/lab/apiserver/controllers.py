"""Simulated control plane: the controller loop (every 50 ms, under the store lock) and the DaemonSet
controller (a pod per node; an updated template rolled one node at a time, maxUnavailable 1).
The other controllers: ``workloads`` (Deployments, ReplicaSets), ``statefulsets``, ``kubelet`` (scheduler, kubelet),
``cluster`` (namespaces, garbage collection, EndpointSlices, APIServices, CRDs, PVCs)."""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass

from runbooks_lib.kube.paths import BUILTIN

from .cluster import ClusterControllers
from .kubelet import Kubelet
from .statefulsets import StatefulSets
from .store import Obj, Store, now_rfc3339
from .workloads import Workloads, is_ready


@dataclass
class _Rollout:
    started: float
    last_step: float = 0.0
    steps: int = 0


class Controllers(Workloads, StatefulSets, Kubelet, ClusterControllers):
    """Mixed into the server: the simulated controllers and their helpers."""

    store: Store
    errors: list[str]
    rollout_step_s: float
    pod_ready_s: float
    _stop: threading.Event
    _born: dict[str, float]
    _rollouts: dict[tuple[str, str, str], _Rollout]
    _ip_next: int

    def _put(self, obj: Obj, manager: str = "kube-controller-manager") -> Obj:
        rt = self.store.by_kind[(obj["apiVersion"].rpartition("/")[0], obj["kind"])]
        return self.store.put_raw(rt, obj, manager)

    def event(self, obj: Obj, reason: str, message: str, type_: str = "Normal", component: str = "") -> None:
        meta = obj["metadata"]
        ts = now_rfc3339()
        self._put({"apiVersion": "v1", "kind": "Event",
                   "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}",
                                "namespace": meta.get("namespace") or "default"},
                   "involvedObject": {"kind": obj["kind"], "name": meta["name"], "namespace": meta.get("namespace"),
                                      "apiVersion": obj["apiVersion"], "uid": meta.get("uid")},
                   "reason": reason, "message": message, "type": type_, "count": 1,
                   "source": {"component": component}, "reportingComponent": component,
                   "firstTimestamp": ts, "lastTimestamp": ts}, manager=component or "double")


    def _node_obj(self, node_name: str) -> Obj | None:
        return self.store.find(BUILTIN["Node"], None, node_name)

    def node_ip(self, node_name: str) -> str:
        """The node's InternalIP as its Node object says (192.0.2.99 for an unknown node)."""
        n = self._node_obj(node_name) or {}
        return next((a["address"] for a in (n.get("status") or {}).get("addresses") or []
                     if a.get("type") == "InternalIP"), "192.0.2.99")

    def next_pod_ip(self, node_name: str) -> str:
        cidr = ((self._node_obj(node_name) or {}).get("spec") or {}).get("podCIDR") or "10.244.99.0/24"
        self._ip_next += 1
        return cidr.rsplit(".", 1)[0] + f".{self._ip_next}"


    def _controllers(self) -> None:
        while not self._stop.wait(0.05):
            try:
                with self.store.lock:
                    self._tick(time.monotonic())
            except Exception as exc:  # noqa: BLE001 - a controller bug must not kill the server thread
                self.errors.append(f"controller: {exc!r}")

    def _tick(self, now: float) -> None:
        st = self.store
        self._crds()
        self._namespaces()
        self._garbage_collect()
        nodes = st.list(BUILTIN["Node"], None)
        node_names = [n["metadata"]["name"] for n in nodes]
        pods = st.list(BUILTIN["Pod"], None)
        for ds in st.list(BUILTIN["DaemonSet"], None):
            self._daemonset(ds, node_names, pods, now)
        for dep in st.list(BUILTIN["Deployment"], None):
            self._deployment(dep)
        pods = st.list(BUILTIN["Pod"], None)
        for rs in st.list(BUILTIN["ReplicaSet"], None):
            self._replicaset(rs, pods)
        pods = st.list(BUILTIN["Pod"], None)
        for sts in st.list(BUILTIN["StatefulSet"], None):
            self._statefulset(sts, pods)
        for pod in st.list(BUILTIN["Pod"], None):
            self._kubelet(pod, nodes, now)
        self._endpoint_slices(st.list(BUILTIN["Pod"], None))
        for pvc in st.list(BUILTIN["PersistentVolumeClaim"], None):
            self._pvc(pvc)
        for svc in st.list(BUILTIN["APIService"], None):
            self._apiservice(svc)

    @staticmethod
    def _owned_by(pod: Obj, kind: str, name: str) -> bool:
        return any(o.get("kind") == kind and o.get("name") == name
                   for o in pod["metadata"].get("ownerReferences") or [])

    def _daemonset(self, ds: Obj, nodes: list[str], pods: list[Obj], now: float) -> None:
        meta, ns, name = ds["metadata"], ds["metadata"]["namespace"], ds["metadata"]["name"]
        gen = int(meta.get("generation", 1))
        mine = [p for p in pods if p["metadata"].get("namespace") == ns and self._owned_by(p, "DaemonSet", name)]
        by_node: dict[str, Obj] = {}
        for p in mine:
            by_node.setdefault(p["spec"].get("nodeName", ""), p)
        template = ds["spec"]["template"]
        for node_name in nodes:
            if node_name in by_node:
                continue
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": f"{name}-{secrets.token_hex(3)[:5]}", "namespace": ns,
                                "labels": {**(template["metadata"].get("labels") or {}),
                                           "pod-template-generation": str(gen),
                                           "controller-revision-hash": hashlib.sha1(
                                               json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]},
                                "annotations": dict(template["metadata"].get("annotations") or {}),
                                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": name,
                                                     "uid": meta["uid"], "controller": True,
                                                     "blockOwnerDeletion": True}]},
                   "spec": {**copy.deepcopy(template["spec"]), "nodeName": node_name},
                   "status": {"phase": "Pending", "conditions": [
                       {"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()}]}}
            stored = self._put(pod, "kube-controller-manager")
            self._born[stored["metadata"]["uid"]] = now
            by_node[node_name] = stored
            self.event(ds, "SuccessfulCreate", f"Created pod: {stored['metadata']['name']}",
                       component="daemonset-controller")
        current = list(by_node.values())
        updated = [p for p in current if p["metadata"]["labels"].get("pod-template-generation") == str(gen)]
        ready = [p for p in current if is_ready(p)]
        status = dict(ds.get("status") or {})
        key = ("DaemonSet", ns, name)
        if int(status.get("observedGeneration", 0)) < gen:
            self._rollouts[key] = _Rollout(started=now)
        roll = self._rollouts.get(key)
        if roll and len(ready) == len(current) and now - roll.last_step >= self.rollout_step_s:
            old = [p for p in current if p not in updated]
            if old:  # maxUnavailable 1: replace one old pod once all pods are ready
                victim = sorted(old, key=lambda p: p["spec"].get("nodeName", ""))[0]
                self.store.delete(BUILTIN["Pod"], ns, victim["metadata"]["name"], False)
                self.event(ds, "SuccessfulDelete", f"Deleted pod: {victim['metadata']['name']}",
                           component="daemonset-controller")
                roll.last_step = now
            else:
                self._rollouts.pop(key, None)
        new_status = {"currentNumberScheduled": len(current), "desiredNumberScheduled": len(nodes),
                      "numberAvailable": len(ready), "numberMisscheduled": 0, "numberReady": len(ready),
                      "observedGeneration": gen, "updatedNumberScheduled": len(updated)}
        if len(ready) < len(nodes):
            new_status["numberUnavailable"] = len(nodes) - len(ready)
        if new_status != status:
            self._put({**ds, "status": new_status}, "kube-controller-manager")
