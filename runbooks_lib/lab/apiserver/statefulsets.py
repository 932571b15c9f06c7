"""StatefulSets -> Pods and PersistentVolumeClaims, as kube-controller-manager's statefulset
controller does (https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/):

- Pod ``<name>-<ordinal>`` for ordinals 0..replicas-1, labelled ``statefulset.kubernetes.io/pod-name``,
  ``apps.kubernetes.io/pod-index`` and ``controller-revision-hash``, ``hostname``/``subdomain`` set
  (the headless Service), owned (controller ownerReference) by the StatefulSet.
- Each ``volumeClaimTemplates`` entry gives the pod a claim ``<template>-<name>-<ordinal>``, created
  before the pod (labels: the template's and the selector's matchLabels) and kept when the pod or the
  StatefulSet is deleted (``persistentVolumeClaimRetentionPolicy`` Retain, the default); ``whenDeleted:
  Delete`` makes the StatefulSet own the claims (garbage collected with it), ``whenScaled: Delete``
  deletes a condemned ordinal's claims with its pod.
- ``podManagementPolicy: OrderedReady`` (default): pod i+1 is created only when pods 0..i are Running
  and Ready; scale-down removes the highest ordinal first, one at a time, only while the others are
  Ready. ``Parallel``: all created / removed at once.
- A deleted pod is re-created with the same name and the same claim.
- Status: replicas, readyReplicas, currentReplicas, updatedReplicas, availableReplicas,
  currentRevision/updateRevision, observedGeneration.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from runbooks_lib.kube.paths import BUILTIN

from .errors import Obj
from .workloads import controlled_by, is_ready, owner_ref, template_hash

POD_NAME = "statefulset.kubernetes.io/pod-name"
POD_INDEX = "apps.kubernetes.io/pod-index"
REVISION_HASH = "controller-revision-hash"


def claim_name(template: Obj, sts_name: str, ordinal: int) -> str:
    return f"{template['metadata']['name']}-{sts_name}-{ordinal}"


def ordinal_of(pod: Obj, sts_name: str) -> int | None:
    """The ordinal of ``<sts>-<n>``; None for any other name."""
    head, _, tail = pod["metadata"]["name"].rpartition("-")
    return int(tail) if head == sts_name and tail.isdigit() else None


def revision(sts: Obj) -> str:
    return f"{sts['metadata']['name']}-{template_hash(sts['spec'].get('template') or {})}"


def claim_for(sts: Obj, template: Obj, ordinal: int) -> Obj:
    """The PVC the controller creates from a volumeClaimTemplate for one ordinal."""
    meta, spec = sts["metadata"], sts["spec"]
    labels = {**((template.get("metadata") or {}).get("labels") or {}),
              **((spec.get("selector") or {}).get("matchLabels") or {})}
    claim: Obj = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                  "metadata": {"name": claim_name(template, meta["name"], ordinal), "namespace": meta["namespace"],
                               "labels": labels},
                  "spec": copy.deepcopy(template.get("spec") or {})}
    annotations = (template.get("metadata") or {}).get("annotations")
    if annotations:
        claim["metadata"]["annotations"] = dict(annotations)
    policy = spec.get("persistentVolumeClaimRetentionPolicy") or {}
    if policy.get("whenDeleted") == "Delete":
        claim["metadata"]["ownerReferences"] = [owner_ref(sts)]
    return claim


def pod_for(sts: Obj, ordinal: int) -> Obj:
    """Pod ``<name>-<ordinal>`` from the template, with its claims mounted as the template's volumes."""
    meta, spec = sts["metadata"], sts["spec"]
    template = spec.get("template") or {}
    name = f"{meta['name']}-{ordinal}"
    pod_spec = copy.deepcopy(template.get("spec") or {})
    claims = {t["metadata"]["name"]: claim_name(t, meta["name"], ordinal) for t in spec.get("volumeClaimTemplates") or []}
    volumes = [v for v in pod_spec.get("volumes") or [] if v.get("name") not in claims]
    volumes += [{"name": v, "persistentVolumeClaim": {"claimName": c}} for v, c in claims.items()]
    if volumes:
        pod_spec["volumes"] = volumes
    pod_spec["hostname"] = name
    if spec.get("serviceName"):
        pod_spec["subdomain"] = spec["serviceName"]
    labels = {**((template.get("metadata") or {}).get("labels") or {}),
              POD_NAME: name, POD_INDEX: str(ordinal), REVISION_HASH: revision(sts)}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": meta["namespace"], "labels": labels,
                         "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                         "ownerReferences": [owner_ref(sts)]},
            "spec": pod_spec}


class StatefulSets:
    """Mixed into the server: the statefulset controller."""

    store: Any
    _put: Callable[..., Obj]
    event: Callable[..., None]

    def _statefulset(self, sts: Obj, pods: list[Obj]) -> None:
        meta, spec = sts["metadata"], sts["spec"]
        ns, name = meta["namespace"], meta["name"]
        want = int(spec.get("replicas", 1))
        ordered = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        mine = {o: p for p in pods if p["metadata"].get("namespace") == ns and controlled_by(p, sts)
                and (o := ordinal_of(p, name)) is not None}
        for ordinal in range(want):
            if ordinal in mine:
                if ordered and not is_ready(mine[ordinal]):
                    break  # OrderedReady: successors wait for this pod to be Running and Ready
                continue
            self._claims(sts, ordinal)
            mine[ordinal] = self._put(pod_for(sts, ordinal))
            self.event(sts, "SuccessfulCreate", f"create Pod {name}-{ordinal} in StatefulSet {name} successful",
                       component="statefulset-controller")
            if ordered:
                break
        condemned = sorted((o for o in mine if o >= want), reverse=True)
        if ordered:  # highest ordinal first, one at a time, only while every other pod is Ready
            others_ready = all(is_ready(p) for o, p in mine.items() if o not in condemned[:1])
            condemned = condemned[:1] if others_ready else []
        for ordinal in condemned:
            self.store.remove(self.store._key(BUILTIN["Pod"], ns, f"{name}-{ordinal}"))
            mine.pop(ordinal)
            self.event(sts, "SuccessfulDelete", f"delete Pod {name}-{ordinal} in StatefulSet {name} successful",
                       component="statefulset-controller")
            if (spec.get("persistentVolumeClaimRetentionPolicy") or {}).get("whenScaled") == "Delete":
                for t in spec.get("volumeClaimTemplates") or []:
                    self.store.remove(self.store._key(BUILTIN["PersistentVolumeClaim"], ns,
                                                      claim_name(t, name, ordinal)))
        self._statefulset_status(sts, list(mine.values()))

    def _claims(self, sts: Obj, ordinal: int) -> None:
        """Create the ordinal's missing claims (an existing claim, e.g. retained, is reused)."""
        ns, name = sts["metadata"]["namespace"], sts["metadata"]["name"]
        for t in sts["spec"].get("volumeClaimTemplates") or []:
            claim = claim_for(sts, t, ordinal)
            if self.store.find(BUILTIN["PersistentVolumeClaim"], ns, claim["metadata"]["name"]) is None:
                self._put(claim)
                self.event(sts, "SuccessfulCreate", f"create Claim {claim['metadata']['name']} Pod "
                                                    f"{name}-{ordinal} in StatefulSet {name} success",
                           component="statefulset-controller")

    def _statefulset_status(self, sts: Obj, pods: list[Obj]) -> None:
        rev = revision(sts)
        ready = sum(1 for p in pods if is_ready(p))
        current = sum(1 for p in pods if (p["metadata"].get("labels") or {}).get(REVISION_HASH) == rev)
        status: Obj = {"observedGeneration": int(sts["metadata"].get("generation", 1)), "replicas": len(pods),
                       "readyReplicas": ready, "currentReplicas": current, "updatedReplicas": current,
                       "availableReplicas": ready, "currentRevision": rev, "updateRevision": rev,
                       "collisionCount": 0}
        status = {k: v for k, v in status.items() if v != 0 or k in ("replicas", "observedGeneration", "availableReplicas",
                                                                 "collisionCount")}
        if status != (sts.get("status") or {}):
            self._put({**sts, "status": status})
