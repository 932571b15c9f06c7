"""Cluster-wide controllers: namespace deletion, garbage collection, EndpointSlices, APIService
availability, CustomResourceDefinitions, PVCs (never bound: no provisioner).

- Namespace: a deleted namespace is Terminating until its objects are gone, then removed.
  https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/
- Garbage collection (background): an object whose owners (ownerReferences by uid) are all gone is
  deleted. https://kubernetes.io/docs/concepts/architecture/garbage-collection/
- EndpointSlices: one per Service with a selector, an endpoint per matching pod with an IP, ready as
  the pod is. https://kubernetes.io/docs/concepts/services-networking/endpoint-slices/
- APIService: Available only while its Service has a ready endpoint.
  https://kubernetes.io/docs/tasks/extend-kubernetes/configure-aggregation-layer/
- CRD: names accepted and Established; its storage version served with its schema and subresources.
  https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from runbooks_lib.kube.paths import BUILTIN, ResourceType

from .errors import Obj, now_rfc3339
from .selectors import labels_match
from .workloads import is_ready

SLICE_MANAGER = "endpointslice-controller.k8s.io"
MAX_EVENTS = 2000


def crd_type(crd: Obj) -> tuple[ResourceType, Obj, bool] | None:
    """(type, openAPIV3Schema, has status subresource) of a CRD's storage version."""
    spec = crd.get("spec") or {}
    versions = [v for v in spec.get("versions") or [] if v.get("served", True)]
    version = next((v for v in versions if v.get("storage")), versions[0] if versions else None)
    names = spec.get("names") or {}
    if version is None or not names.get("plural") or not names.get("kind"):
        return None
    rt = ResourceType(spec.get("group", ""), version["name"], names["plural"], names["kind"],
                      spec.get("scope", "Namespaced") == "Namespaced")
    schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or {"type": "object",
                                                                       "x-kubernetes-preserve-unknown-fields": True}
    return rt, schema, "status" in (version.get("subresources") or {})


class ClusterControllers:
    """Mixed into the server."""

    store: Any
    admission: Any
    _crd_types: dict[str, ResourceType]
    _unbound_seen: set[str]
    _put: Callable[..., Obj]
    event: Callable[..., None]

    def _namespaces(self) -> None:
        st = self.store
        for ns in st.list(BUILTIN["Namespace"], None):
            if not ns["metadata"].get("deletionTimestamp"):
                continue
            name = ns["metadata"]["name"]
            inside = [k for k in st.objects if k[2] == name and st.types.get(k[:2]) and st.types[k[:2]].namespaced]
            for key in inside:
                st.remove(key)
            if not inside:
                st.remove(("", "namespaces", "", name))

    def _garbage_collect(self) -> None:
        st = self.store
        events = sorted((o["metadata"]["resourceVersion"].zfill(12), k) for k, o in st.objects.items()
                        if k[:2] == ("", "events"))
        for _rv, key in events[:max(0, len(events) - MAX_EVENTS)]:  # as events' TTL would
            st.remove(key)
        uids = {o["metadata"].get("uid") for o in st.objects.values()}
        for key, obj in list(st.objects.items()):
            refs = obj["metadata"].get("ownerReferences") or []
            if refs and not any(r.get("uid") in uids for r in refs):
                st.remove(key)

    def _endpoint_slices(self, pods: list[Obj]) -> None:
        st = self.store
        es = BUILTIN["EndpointSlice"]
        for svc in st.list(BUILTIN["Service"], None):
            sel = (svc.get("spec") or {}).get("selector")
            if not sel:
                continue
            meta = svc["metadata"]
            reqs = [(k, "=", [v]) for k, v in sel.items()]
            mine = [p for p in pods if p["metadata"].get("namespace") == meta["namespace"]
                    and labels_match(p["metadata"].get("labels") or {}, reqs) and (p.get("status") or {}).get("podIP")
                    and not p["metadata"].get("deletionTimestamp")]
            endpoints = [{"addresses": [p["status"]["podIP"]],
                          "conditions": {"ready": is_ready(p), "serving": is_ready(p), "terminating": False},
                          "nodeName": p["spec"].get("nodeName"),
                          "targetRef": {"kind": "Pod", "name": p["metadata"]["name"],
                                        "namespace": meta["namespace"], "uid": p["metadata"]["uid"]}}
                         for p in sorted(mine, key=lambda p: p["metadata"]["name"])]
            ports = [{"name": p.get("name", ""), "port": p.get("targetPort", p.get("port")) if isinstance(
                p.get("targetPort", p.get("port")), int) else p.get("port"), "protocol": p.get("protocol", "TCP")}
                for p in (svc.get("spec") or {}).get("ports") or []]
            name = f"{meta['name']}-{hashlib.sha256(meta['uid'].encode()).hexdigest()[:5]}"
            old = st.find(es, meta["namespace"], name)
            if old is not None and old.get("endpoints", []) == endpoints and old.get("ports") == ports:
                continue
            self._put({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                       "metadata": {"name": name, "namespace": meta["namespace"], "generateName": f"{meta['name']}-",
                                    "labels": {"kubernetes.io/service-name": meta["name"],
                                               "endpointslice.kubernetes.io/managed-by": SLICE_MANAGER},
                                    "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": meta["name"],
                                                         "uid": meta["uid"], "controller": True,
                                                         "blockOwnerDeletion": True}]},
                       "endpoints": endpoints, "ports": ports}, "endpointslice-controller")

    def ready_endpoints(self, namespace: str, service: str) -> list[str]:
        """Addresses of the Service's ready endpoints (from its EndpointSlices)."""
        out: list[str] = []
        for sl in self.store.list(BUILTIN["EndpointSlice"], namespace, f"kubernetes.io/service-name={service}"):
            for ep in sl.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready"):
                    out += ep.get("addresses") or []
        return out

    def _apiservice(self, svc: Obj) -> None:
        ref = svc["spec"].get("service")
        if not ref:
            return
        ns, name = ref.get("namespace", ""), ref.get("name", "")
        if self.store.find(BUILTIN["Service"], ns, name) is None:
            cond = ("False", "ServiceNotFound", f'service/{name} in "{ns}" is not present')
        elif self.ready_endpoints(ns, name):
            cond = ("True", "Passed", "all checks passed")
        else:
            cond = ("False", "MissingEndpoints", f'endpoints for service/{name} in "{ns}" have no addresses '
                                                 'with port name "https"')
        old: Obj = next((c for c in (svc.get("status") or {}).get("conditions") or []
                         if c.get("type") == "Available"), {})
        if (old.get("status"), old.get("reason")) == cond[:2]:
            return
        self._put({**svc, "status": {"conditions": [
            {"type": "Available", "status": cond[0], "reason": cond[1], "message": cond[2],
             "lastTransitionTime": now_rfc3339()}]}}, "kube-apiserver")

    def _pvc(self, pvc: Obj) -> None:
        uid = pvc["metadata"]["uid"]
        if uid not in self._unbound_seen:
            self._unbound_seen.add(uid)
            self._put({**pvc, "status": {"phase": "Pending"}}, "persistentvolume-controller")
            self.event(pvc, "FailedBinding", "no persistent volumes available for this claim and no "
                                             "storage class is set", "Warning", "persistentvolume-controller")

    def _crds(self) -> None:
        st = self.store
        seen: set[str] = set()
        for crd in st.list(BUILTIN["CustomResourceDefinition"], None):
            name = crd["metadata"]["name"]
            found = crd_type(crd)
            if found is None:
                continue
            rt, schema, status = found
            seen.add(name)
            prior = self._crd_types.get(name)
            if prior is not None and prior != rt:
                st.remove_type(prior)
            st.add_type(rt, status)
            self._crd_types[name] = rt
            self.admission.crd_schemas[(rt.group, rt.version, rt.kind)] = schema
            conds = {c.get("type"): c.get("status") for c in (crd.get("status") or {}).get("conditions") or []}
            if conds.get("Established") != "True":
                ts = now_rfc3339()
                names = (crd.get("spec") or {}).get("names") or {}
                self._put({**crd, "status": {
                    "acceptedNames": {k: v for k, v in names.items()},
                    "storedVersions": [rt.version],
                    "conditions": [
                        {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                         "message": "no conflicts found", "lastTransitionTime": ts},
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                         "message": "the initial names have been accepted", "lastTransitionTime": ts}]}},
                    "apiextensions-apiserver")
        for name in set(self._crd_types) - seen:
            rt = self._crd_types.pop(name)
            self.admission.crd_schemas.pop((rt.group, rt.version, rt.kind), None)
            st.remove_type(rt)
