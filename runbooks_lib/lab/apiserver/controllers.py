"""Simulated control plane: the DaemonSet and Deployment controllers, a scheduler and a kubelet,
PVCs that never bind, APIServices that follow their service's pods. Runs in the server's controller
thread under the store lock."""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass

from runbooks_lib.kube.paths import BUILTIN

from .store import Obj, Store, labels_match, now_rfc3339


@dataclass
class _Rollout:
    started: float
    last_step: float = 0.0
    steps: int = 0


class Controllers:
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
        nodes = [n["metadata"]["name"] for n in st.list(BUILTIN["Node"], None)]
        pods = st.list(BUILTIN["Pod"], None)
        for ds in st.list(BUILTIN["DaemonSet"], None):
            self._daemonset(ds, nodes, pods, now)
        for dep in st.list(BUILTIN["Deployment"], None):
            self._deployment(dep, now)
        for pod in st.list(BUILTIN["Pod"], None):
            self._kubelet(pod, nodes, now)
        for pvc in st.list(BUILTIN["PersistentVolumeClaim"], None):
            if (pvc.get("status") or {}).get("phase") is None:
                self._put({**pvc, "status": {"phase": "Pending"}}, "persistentvolume-controller")
                self.event(pvc, "FailedBinding", "no persistent volumes available for this claim and no "
                                                 "storage class is set", "Warning", "persistentvolume-controller")
        for svc in st.list(BUILTIN["APIService"], None):
            self._apiservice(svc)

    @staticmethod
    def _owned_by(pod: Obj, kind: str, name: str) -> bool:
        return any(o.get("kind") == kind and o.get("name") == name
                   for o in pod["metadata"].get("ownerReferences") or [])

    @staticmethod
    def _ready(pod: Obj) -> bool:
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in (pod.get("status") or {}).get("conditions") or [])

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
        ready = [p for p in current if self._ready(p)]
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

    def _deployment(self, dep: Obj, now: float) -> None:
        meta = dep["metadata"]
        gen = int(meta.get("generation", 1))
        status = dict(dep.get("status") or {})
        replicas = int(dep["spec"].get("replicas", 1))
        key = ("Deployment", meta["namespace"], meta["name"])
        if int(status.get("observedGeneration", 0)) < gen:
            self._rollouts[key] = _Rollout(started=now, last_step=now)
            rev = int((meta.get("annotations") or {}).get("deployment.kubernetes.io/revision", "0")) + 1
            dep = {**dep, "metadata": {**meta, "annotations": {**(meta.get("annotations") or {}),
                                                                "deployment.kubernetes.io/revision": str(rev)}}}
            status.update(observedGeneration=gen, updatedReplicas=0, replicas=replicas + 1,
                          availableReplicas=max(replicas - 1, 0), readyReplicas=max(replicas - 1, 0),
                          unavailableReplicas=1)
            self._put({**dep, "status": status}, "kube-controller-manager")
            return
        roll = self._rollouts.get(key)
        if roll is None or now - roll.last_step < self.rollout_step_s:
            return
        roll.last_step = now
        updated = min(int(status.get("updatedReplicas", 0)) + 1, replicas)
        if updated >= replicas:
            status = {"availableReplicas": replicas, "observedGeneration": gen, "readyReplicas": replicas,
                      "replicas": replicas, "updatedReplicas": replicas,
                      "conditions": (dep.get("status") or {}).get("conditions", [])}
            self._rollouts.pop(key, None)
        else:
            status.update(updatedReplicas=updated, replicas=replicas + 1)
        self._put({**dep, "status": status}, "kube-controller-manager")

    def _kubelet(self, pod: Obj, nodes: list[str], now: float) -> None:
        status = pod.get("status") or {}
        uid = pod["metadata"]["uid"]
        if status.get("phase") not in (None, "Pending"):
            return
        node_name = pod["spec"].get("nodeName")
        if not node_name:  # the scheduler: the worker with the fewest pods
            cps = {n["metadata"]["name"] for n in self.store.list(BUILTIN["Node"], None)
                   if "node-role.kubernetes.io/control-plane" in (n["metadata"].get("labels") or {})}
            workers = [n for n in nodes if n not in cps] or nodes
            if not workers:
                return
            load = {n: 0 for n in workers}
            for p in self.store.list(BUILTIN["Pod"], None):
                if p["spec"].get("nodeName") in load:
                    load[p["spec"]["nodeName"]] += 1
            node_name = min(workers, key=lambda n: (load[n], n))
            pod = {**pod, "spec": {**pod["spec"], "nodeName": node_name}}
            self._born.setdefault(uid, now)
            self._put(pod, "kube-scheduler")
            self.event(pod, "Scheduled", f"Successfully assigned {pod['metadata']['namespace']}/"
                                         f"{pod['metadata']['name']} to {node_name}", component="default-scheduler")
            return
        born = self._born.setdefault(uid, now)
        if node_name not in nodes or now - born < self.pod_ready_s:
            return
        host_ip = self.node_ip(node_name)
        ip = host_ip if pod["spec"].get("hostNetwork") else self.next_pod_ip(node_name)
        ts = now_rfc3339()
        containers = pod["spec"].get("containers") or []
        self._put({**pod, "status": {
            "phase": "Running", "hostIP": host_ip, "podIP": ip, "podIPs": [{"ip": ip}], "startTime": ts,
            "qosClass": "BestEffort",
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

    def _apiservice(self, svc: Obj) -> None:
        ref = svc["spec"].get("service")
        if not ref:
            return
        target = self.store.find(BUILTIN["Service"], ref.get("namespace"), ref.get("name", ""))
        if target is None:
            cond = ("False", "ServiceNotFound", f'service/{ref.get("name")} in "{ref.get("namespace")}" is not present')
        else:
            sel = target["spec"].get("selector") or {}
            pods = [p for p in self.store.list(BUILTIN["Pod"], ref.get("namespace"))
                    if labels_match(p["metadata"].get("labels") or {}, [(k, "=", [v]) for k, v in sel.items()])]
            if any(self._ready(p) for p in pods):
                cond = ("True", "Passed", "all checks passed")
            else:
                cond = ("False", "MissingEndpoints", f'endpoints for service/{ref.get("name")} in '
                                                     f'"{ref.get("namespace")}" have no addresses with port name "https"')
        old: Obj = next((c for c in (svc.get("status") or {}).get("conditions") or [] if c.get("type") == "Available"), {})
        if (old.get("status"), old.get("reason")) == cond[:2]:
            return
        self._put({**svc, "status": {"conditions": [
            {"type": "Available", "status": cond[0], "reason": cond[1], "message": cond[2],
             "lastTransitionTime": now_rfc3339()}]}}, "kube-apiserver")
