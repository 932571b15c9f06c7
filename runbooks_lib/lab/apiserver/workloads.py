"""Deployments -> ReplicaSets -> Pods, as kube-controller-manager's deployment and replicaset
controllers do: one ReplicaSet per pod template (``pod-template-hash``), the new one scaled up and
the old ones down as new pods become ready; pods owned (ownerReferences, controller) by their
ReplicaSet, which is owned by its Deployment. Status counts the pods.

https://kubernetes.io/docs/concepts/workloads/controllers/deployment/
https://kubernetes.io/docs/concepts/workloads/controllers/replicaset/
"""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
from collections.abc import Callable
from typing import Any

from runbooks_lib.kube.paths import BUILTIN

from .errors import Obj, now_rfc3339

_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
REVISION = "deployment.kubernetes.io/revision"


def is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def template_hash(template: Obj) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:10])


def _bare_template(template: Obj) -> Obj:
    out = copy.deepcopy(template)
    (out.get("metadata") or {}).get("labels", {}).pop("pod-template-hash", None)
    return out


def owner_ref(owner: Obj) -> Obj:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"].get("uid", ""), "controller": True, "blockOwnerDeletion": True}


def controlled_by(obj: Obj, owner: Obj) -> bool:
    return any(r.get("uid") == owner["metadata"]["uid"] and r.get("controller")
               for r in obj["metadata"].get("ownerReferences") or [])


def replicaset_for(dep: Obj, h: str, revision: int, replicas: int) -> Obj:
    meta, spec = dep["metadata"], dep["spec"]
    template = copy.deepcopy(spec["template"])
    template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = h
    selector = copy.deepcopy(spec.get("selector") or {})
    selector.setdefault("matchLabels", {})["pod-template-hash"] = h
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{meta['name']}-{h}", "namespace": meta["namespace"],
                         "labels": dict(template["metadata"]["labels"]),
                         "annotations": {REVISION: str(revision)}, "ownerReferences": [owner_ref(dep)]},
            "spec": {"replicas": replicas, "selector": selector, "template": template}}


def seed_replicasets(objs: list[Obj]) -> list[Obj]:
    """The ReplicaSets the seeded Deployments' pods name as owners (their hash as seeded)."""
    deps = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objs if o["kind"] == "Deployment"}
    out: dict[str, Obj] = {}
    for pod in (o for o in objs if o["kind"] == "Pod"):
        for ref in pod["metadata"].get("ownerReferences") or []:
            dep_name, _, h = ref["name"].rpartition("-")
            dep = deps.get((pod["metadata"]["namespace"], dep_name))
            if ref["kind"] == "ReplicaSet" and dep is not None and ref["name"] not in out:
                rs = replicaset_for(dep, h, 1, int(dep["spec"].get("replicas", 1)))
                rs["metadata"]["ownerReferences"][0]["uid"] = ""
                out[ref["name"]] = rs
    return list(out.values())


class Workloads:
    """Mixed into the server: the deployment and replicaset controllers."""

    store: Any
    _put: Callable[..., Obj]
    event: Callable[..., None]

    def _deployment(self, dep: Obj) -> None:
        st, meta, spec = self.store, dep["metadata"], dep["spec"]
        replicas = int(spec.get("replicas", 1))
        owned = [rs for rs in st.list(BUILTIN["ReplicaSet"], meta["namespace"]) if controlled_by(rs, dep)]
        want = _bare_template(spec["template"])
        new = next((rs for rs in owned if _bare_template(rs["spec"]["template"]) == want), None)
        revisions = [int((rs["metadata"].get("annotations") or {}).get(REVISION, "0")) for rs in owned]
        if new is None:
            revision = max(revisions, default=0) + 1
            new = self._put(replicaset_for(dep, template_hash(want), revision, replicas))
            self.event(dep, "ScalingReplicaSet", f"Scaled up replica set {new['metadata']['name']} to {replicas}",
                       component="deployment-controller")
        revision = int((new["metadata"].get("annotations") or {}).get(REVISION, "1"))
        if (meta.get("annotations") or {}).get(REVISION) != str(revision):
            dep = self._put({**dep, "metadata": {**meta, "annotations": {**(meta.get("annotations") or {}),
                                                                          REVISION: str(revision)}}})
            meta = dep["metadata"]
        if new["spec"].get("replicas") != replicas:
            new = self._put({**new, "spec": {**new["spec"], "replicas": replicas}})
        left = max(0, replicas - int((new.get("status") or {}).get("readyReplicas", 0)))
        olds = [rs for rs in owned if rs["metadata"]["uid"] != new["metadata"]["uid"]]
        for rs in olds:
            keep = min(int(rs["spec"].get("replicas", 0)), left)
            left -= keep
            if rs["spec"].get("replicas") != keep:
                self._put({**rs, "spec": {**rs["spec"], "replicas": keep}})
        self._deployment_status(dep, new, olds, replicas)

    def _deployment_status(self, dep: Obj, new: Obj, olds: list[Obj], replicas: int) -> None:
        def count(rs: Obj, key: str) -> int:
            return int((rs.get("status") or {}).get(key, 0))
        everyone = [new, *olds]
        total = sum(count(rs, "replicas") for rs in everyone)
        ready = sum(count(rs, "readyReplicas") for rs in everyone)
        updated = count(new, "replicas")
        done = updated == replicas and total == replicas and ready >= replicas
        old_status = dep.get("status") or {}
        conds = {c["type"]: c for c in old_status.get("conditions") or []}

        def cond(type_: str, status: str, reason: str, message: str) -> Obj:
            was = conds.get(type_) or {}
            ts = was.get("lastTransitionTime") if was.get("status") == status else now_rfc3339()
            return {"type": type_, "status": status, "reason": reason, "message": message,
                    "lastTransitionTime": ts, "lastUpdateTime": was.get("lastUpdateTime", ts)
                    if was.get("reason") == reason else now_rfc3339()}
        rs_name = new["metadata"]["name"]
        status: Obj = {"observedGeneration": int(dep["metadata"].get("generation", 1)), "replicas": total,
                       "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": ready,
                       "conditions": [
                           cond("Available", "True" if ready >= replicas else "False",
                                "MinimumReplicasAvailable" if ready >= replicas else "MinimumReplicasUnavailable",
                                "Deployment has minimum availability." if ready >= replicas
                                else "Deployment does not have minimum availability."),
                           cond("Progressing", "True", "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
                                f'ReplicaSet "{rs_name}" has successfully progressed.' if done
                                else f'ReplicaSet "{rs_name}" is progressing.')]}
        if replicas - ready > 0:
            status["unavailableReplicas"] = replicas - ready
        status = {k: v for k, v in status.items() if v != 0 or k == "observedGeneration"}
        if status != old_status:
            self._put({**dep, "status": status})

    def _replicaset(self, rs: Obj, pods: list[Obj]) -> None:
        meta, spec = rs["metadata"], rs["spec"]
        want = int(spec.get("replicas", 1))
        mine = [p for p in pods if p["metadata"].get("namespace") == meta["namespace"] and controlled_by(p, rs)]
        template = spec["template"]
        while len(mine) < want:
            pod: Obj = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": f"{meta['name']}-{''.join(secrets.choice(_ALPHABET) for _ in range(5))}",
                                "namespace": meta["namespace"],
                                "labels": dict((template.get("metadata") or {}).get("labels") or {}),
                                "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                                "ownerReferences": [owner_ref(rs)]},
                   "spec": copy.deepcopy(template.get("spec") or {})}
            mine.append(self._put(pod))
            self.event(rs, "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                       component="replicaset-controller")
        if len(mine) > want:
            victims = sorted(mine, key=lambda p: (is_ready(p), p["metadata"]["creationTimestamp"]))[:len(mine) - want]
            for p in victims:
                self.store.remove(self.store._key(BUILTIN["Pod"], meta["namespace"], p["metadata"]["name"]))
                self.event(rs, "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}",
                           component="replicaset-controller")
            mine = [p for p in mine if p not in victims]
        ready = sum(1 for p in mine if is_ready(p))
        status = {"replicas": len(mine), "fullyLabeledReplicas": len(mine), "readyReplicas": ready,
                  "availableReplicas": ready, "observedGeneration": int(meta.get("generation", 1))}
        status = {k: v for k, v in status.items() if v != 0 or k in ("replicas", "observedGeneration")}
        if status != (rs.get("status") or {}):
            self._put({**rs, "status": status})
