"""The lab API server's object store: Kubernetes write semantics on plain dicts.

resourceVersion from one counter, uid/creationTimestamp/generation, 404/409/422 as Status objects,
merge/strategic/JSON patches, server-side apply with field ownership per field manager (conflicts
name the other manager unless forced; fields a manager stops applying are removed; associative
lists merged by key, see ``fieldpaths``), a watch log, status kept apart from spec for types with a
status subresource, and an ``admit`` hook (validation, defaults, allocation) on every client write.
Namespaces are deleted in two steps: Terminating here, removed by the namespace controller.
Not thread-safe by itself: callers hold ``lock``.
"""

from __future__ import annotations

import builtins
import copy
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from runbooks_lib.kube.paths import ResourceType

from .errors import ApiError, Obj, now_rfc3339
from .fieldpaths import MISSING, SYSTEM_META, FieldPath, fields_v1, leaf_paths, merge, remove_at, spath
from .patches import json_patch, merge_patch
from .selectors import fields_match, labels_match, parse_label_selector

__all__ = ["ApiError", "Obj", "Store", "fields_match", "labels_match", "now_rfc3339", "parse_label_selector"]

Key = tuple[str, str, str, str]
#: field owners: (manager, operation) -> owned leaf paths
Owners = dict[tuple[str, str], set[FieldPath]]
#: (type, stored object or None, new object, dry run): may change the new object or raise ApiError
Admit = Callable[[ResourceType, "Obj | None", Obj, bool], None]

#: kinds whose writers get metadata.generation bumped on spec changes
GENERATION_KINDS = {"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "APIService",
                    "CustomResourceDefinition", "PodDisruptionBudget", "HorizontalPodAutoscaler",
                "CertificateSigningRequest"}
#: built-in kinds with a status subresource: writes to the main resource keep the stored status
STATUS_KINDS = {"Pod", "Node", "Namespace", "Service", "PersistentVolumeClaim", "PersistentVolume",
                "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "APIService",
                "CustomResourceDefinition", "PodDisruptionBudget", "HorizontalPodAutoscaler",
                "CertificateSigningRequest"}
_SYSTEM_META = SYSTEM_META


def _gr(rt: ResourceType) -> str:
    return f"{rt.plural}.{rt.group}" if rt.group else rt.plural


def _check_resource_version(rt: ResourceType, name: str, old: Obj, incoming: Obj) -> None:
    """409 Conflict when the request names a resourceVersion that is no longer current (optimistic lock)."""
    want_rv = (incoming.get("metadata") or {}).get("resourceVersion")
    if want_rv and want_rv != old["metadata"]["resourceVersion"]:
        raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {_gr(rt)} "{name}": the object '
                                        "has been modified; please apply your changes to the latest "
                                        "version and try again",
                       {"name": name, "group": rt.group, "kind": rt.plural})


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{_gr(rt)} "{name}" not found',
                    {"name": name, "group": rt.group, "kind": rt.plural})


# ----------------------------------------------------------------------------- the store

class Store:
    """Objects by (group, plural, namespace, name); the current resourceVersion; ownership."""

    def __init__(self, types: list[ResourceType]) -> None:
        self.lock = threading.RLock()
        self.types = {(t.group, t.plural): t for t in types}
        self.by_kind = {(t.group, t.kind): t for t in types}
        self.objects: dict[Key, Obj] = {}
        self.owners: dict[Key, Owners] = {}
        self.rv = 1000
        #: (group, kind) of the types with a status subresource (CRDs add theirs)
        self.status_types = {(t.group, t.kind) for t in types if t.kind in STATUS_KINDS}
        self.admit: Admit | None = None
        #: watch log: (resourceVersion, event type, key, object); ``changed`` is notified on each write
        self.log: deque[tuple[int, str, Key, Obj]] = deque(maxlen=20000)
        self.changed = threading.Condition(self.lock)

    def _record(self, event: str, key: Key, obj: Obj) -> None:
        self.log.append((int(obj["metadata"]["resourceVersion"]), event, key, copy.deepcopy(obj)))
        self.changed.notify_all()

    def oldest_rv(self) -> int:
        """The oldest resourceVersion a watch can start from (older: 410 Gone)."""
        if self.log and len(self.log) == self.log.maxlen:
            return self.log[0][0] - 1
        return 0

    def add_type(self, rt: ResourceType, status: bool) -> None:
        self.types[(rt.group, rt.plural)] = rt
        self.by_kind[(rt.group, rt.kind)] = rt
        (self.status_types.add if status else self.status_types.discard)((rt.group, rt.kind))

    def remove_type(self, rt: ResourceType) -> None:
        self.types.pop((rt.group, rt.plural), None)
        self.by_kind.pop((rt.group, rt.kind), None)
        for key in [k for k in self.objects if k[:2] == (rt.group, rt.plural)]:
            self.remove(key)

    def has_status(self, rt: ResourceType) -> bool:
        return (rt.group, rt.kind) in self.status_types

    def type_for(self, group: str, plural: str) -> ResourceType:
        rt = self.types.get((group, plural))
        if rt is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return rt

    def _key(self, rt: ResourceType, namespace: str | None, name: str) -> Key:
        return (rt.group, rt.plural, (namespace or "") if rt.namespaced else "", name)

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    # -- reads
    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self.objects.get(self._key(rt, namespace, name))
        if obj is None:
            raise not_found(rt, name)
        return obj

    def find(self, rt: ResourceType, namespace: str | None, name: str) -> Obj | None:
        return self.objects.get(self._key(rt, namespace, name))

    def list(self, rt: ResourceType, namespace: str | None, label_selector: str = "",
             field_selector: str = "") -> list[Obj]:
        reqs = parse_label_selector(label_selector)
        out = []
        for (g, p, ns, _name), obj in sorted(self.objects.items()):
            if (g, p) != (rt.group, rt.plural) or (namespace and rt.namespaced and ns != namespace):
                continue
            if labels_match(obj.get("metadata", {}).get("labels") or {}, reqs) and fields_match(obj, field_selector):
                out.append(obj)
        return out

    def list_doc(self, rt: ResourceType, items: builtins.list[Obj]) -> Obj:
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self.rv)}, "items": copy.deepcopy(items)}

    # -- writes
    def _check_namespace(self, rt: ResourceType, namespace: str | None, body: Obj) -> None:
        meta = body.setdefault("metadata", {})
        if rt.namespaced:
            if not namespace:
                raise ApiError(400, "BadRequest", "the namespace of the object must be set")
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match "
                                                  "the namespace sent on the request")
            meta["namespace"] = namespace
            ns_obj = self.objects.get(("", "namespaces", "", namespace))
            if rt.kind != "Namespace" and ns_obj is None:
                raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found',
                               {"name": namespace, "kind": "namespaces"})
            if ns_obj is not None and ns_obj["metadata"].get("deletionTimestamp"):
                raise ApiError(403, "Forbidden", f'{_gr(rt)} "{meta.get("name") or ""}" is forbidden: unable to '
                                                 f"create new content in namespace {namespace} because it is "
                                                 "being terminated",
                               {"name": meta.get("name") or "", "group": rt.group, "kind": rt.plural,
                                "causes": [{"reason": "NamespaceTerminating", "field": "metadata.namespace"}]})
        else:
            meta.pop("namespace", None)

    def _check_kind(self, rt: ResourceType, body: Obj) -> None:
        if body.get("kind", rt.kind) != rt.kind or body.get("apiVersion", rt.api_version) != rt.api_version:
            raise ApiError(400, "BadRequest", f"the API version/kind {body.get('apiVersion')}/{body.get('kind')} "
                                              f"does not match the expected {rt.api_version}/{rt.kind}")
        body["kind"], body["apiVersion"] = rt.kind, rt.api_version

    def _stamp(self, rt: ResourceType, obj: Obj, old: Obj | None, dry_run: bool) -> None:
        meta = obj["metadata"]
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            if rt.kind in GENERATION_KINDS:
                meta["generation"] = 1
        else:
            for k in ("uid", "creationTimestamp", "generation", "deletionTimestamp"):
                if k in old["metadata"]:
                    meta[k] = old["metadata"][k]
                else:
                    meta.pop(k, None)
            if rt.kind in GENERATION_KINDS and obj.get("spec") != old.get("spec"):
                meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if old is not None and not dry_run and self._strip(obj) == self._strip(old):
            meta["resourceVersion"] = old["metadata"]["resourceVersion"]  # a no-op write keeps the version
        elif dry_run:
            meta["resourceVersion"] = old["metadata"]["resourceVersion"] if old else ""
            if not old:
                meta.pop("resourceVersion")
        else:
            meta["resourceVersion"] = self._next_rv()

    @staticmethod
    def _strip(obj: Obj) -> Obj:
        out = copy.deepcopy(obj)
        for k in ("resourceVersion", "managedFields"):
            out.get("metadata", {}).pop(k, None)
        return out

    def _render_managed(self, key: Key, obj: Obj, rt: ResourceType,
                        owners: Owners) -> None:
        obj["metadata"]["managedFields"] = [
            {"manager": mgr, "operation": op, "apiVersion": rt.api_version, "time": now_rfc3339(),
             "fieldsType": "FieldsV1", "fieldsV1": fields_v1(paths)}
            for (mgr, op), paths in sorted(owners.items()) if paths
        ]

    def create(self, rt: ResourceType, namespace: str | None, body: Obj, manager: str, dry_run: bool) -> Obj:
        body = copy.deepcopy(body)
        self._check_kind(rt, body)
        self._check_namespace(rt, namespace, body)
        meta = body["metadata"]
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
            else:
                raise ApiError(422, "Invalid", f"{rt.kind} is invalid: metadata.name: Required value: "
                                               "name or generateName is required",
                               {"kind": rt.kind, "causes": [{"reason": "FieldValueRequired",
                                                             "field": "metadata.name"}]})
        key = self._key(rt, namespace, meta["name"])
        if key in self.objects:
            raise ApiError(409, "AlreadyExists", f'{_gr(rt)} "{meta["name"]}" already exists',
                           {"name": meta["name"], "group": rt.group, "kind": rt.plural})
        for k in _SYSTEM_META:
            meta.pop(k, None)
        if self.has_status(rt):
            body.pop("status", None)  # status is ignored on create where the type has a status subresource
        if self.admit is not None:
            self.admit(rt, None, body, dry_run)
        self._stamp(rt, body, None, dry_run)
        owners = {(manager, "Update"): set(leaf_paths(body))}
        self._render_managed(key, body, rt, owners)
        if not dry_run:
            self.objects[key] = body
            self.owners[key] = owners
            self._record("ADDED", key, body)
        return copy.deepcopy(body)

    def _write(self, rt: ResourceType, key: Key, old: Obj, new: Obj,
               owners: Owners, dry_run: bool, status_only: bool = False) -> Obj:
        if self.has_status(rt):
            if status_only:
                status = new.get("status")
                new = copy.deepcopy(old)
                if status is not None:
                    new["status"] = status
            elif "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        new.setdefault("metadata", {})
        new["metadata"]["name"] = old["metadata"]["name"]
        if rt.namespaced:
            new["metadata"]["namespace"] = old["metadata"]["namespace"]
        if self.admit is not None and not status_only:
            self.admit(rt, old, new, dry_run)
        self._stamp(rt, new, old, dry_run)
        self._render_managed(key, new, rt, owners)
        if not dry_run:
            self.objects[key] = new
            self.owners[key] = owners
            if new["metadata"]["resourceVersion"] != old["metadata"]["resourceVersion"]:
                self._record("MODIFIED", key, new)
        return copy.deepcopy(new)

    def _take_changed(self, key: Key, old: Obj, new: Obj, manager: str) -> Owners:
        """Ownership after a non-apply write: changed fields move to (manager, Update)."""
        owners = copy.deepcopy(self.owners.get(key, {}))
        old_leaves, new_leaves = leaf_paths(old), leaf_paths(new)
        changed = {p for p, v in new_leaves.items() if old_leaves.get(p, MISSING) != v}
        gone = set(old_leaves) - set(new_leaves)
        for owner, paths in list(owners.items()):
            owners[owner] = paths - changed - gone
        owners[(manager, "Update")] = owners.get((manager, "Update"), set()) | changed
        return owners

    def update(self, rt: ResourceType, namespace: str | None, name: str, body: Obj, manager: str,
               dry_run: bool, status_only: bool = False) -> Obj:
        old = self.get(rt, namespace, name)
        body = copy.deepcopy(body)
        self._check_kind(rt, body)
        _check_resource_version(rt, name, old, body)
        key = self._key(rt, namespace, name)
        owners = self._take_changed(key, old, body, manager)
        return self._write(rt, key, old, body, owners, dry_run, status_only)

    def patch(self, rt: ResourceType, namespace: str | None, name: str, patch: Any, content_type: str,
              manager: str, dry_run: bool, status_only: bool = False) -> Obj:
        old = self.get(rt, namespace, name)
        if "json-patch" in content_type:
            if not isinstance(patch, list):
                raise ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
            new = json_patch(old, patch)
        else:
            if not isinstance(patch, dict):
                raise ApiError(400, "BadRequest", "a merge patch must be an object")
            _check_resource_version(rt, name, old, patch)
            new = merge(old, patch, nulls_delete=True) if "strategic" in content_type else merge_patch(old, patch)
        key = self._key(rt, namespace, name)
        owners = self._take_changed(key, old, new, manager)
        return self._write(rt, key, old, new, owners, dry_run, status_only)

    def apply(self, rt: ResourceType, namespace: str | None, name: str, body: Obj, manager: str,
              force: bool, dry_run: bool) -> tuple[Obj, bool]:
        """Server-side apply; returns (object, created)."""
        if not manager:
            raise ApiError(400, "BadRequest", "PATCH is not supported for apply without a fieldManager")
        body = copy.deepcopy(body)
        self._check_kind(rt, body)
        meta = body.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        meta["name"] = name
        key = self._key(rt, namespace, name)
        applied = leaf_paths(body)
        old = self.objects.get(key)
        if old is None:
            self._check_namespace(rt, namespace, body)
            for k in _SYSTEM_META:
                meta.pop(k, None)
            if self.has_status(rt):
                body.pop("status", None)
            if self.admit is not None:
                self.admit(rt, None, body, dry_run)
            self._stamp(rt, body, None, dry_run)
            owners = {(manager, "Apply"): set(applied)}
            self._render_managed(key, body, rt, owners)
            if not dry_run:
                self.objects[key] = body
                self.owners[key] = owners
                self._record("ADDED", key, body)
            return copy.deepcopy(body), True
        _check_resource_version(rt, name, old, body)
        owners = copy.deepcopy(self.owners.get(key, {}))
        current = leaf_paths(old)
        conflicts: list[tuple[FieldPath, str]] = []
        for path, val in applied.items():
            if current.get(path, MISSING) == val:
                continue
            for (mgr, op), paths in owners.items():
                if (mgr, op) != (manager, "Apply") and path in paths:
                    conflicts.append((path, mgr))
        if conflicts and not force:
            causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{mgr}"',
                       "field": spath(path)} for path, mgr in conflicts]
            lines = "\n".join(f'- conflict with "{mgr}": {spath(path)}' for path, mgr in conflicts)
            raise ApiError(409, "Conflict", f"Apply failed with {len(conflicts)} conflict"
                                            f"{'s' if len(conflicts) > 1 else ''}: {lines}",
                           {"name": name, "group": rt.group, "kind": rt.plural, "causes": causes})
        taken = {path for path, _mgr in conflicts}
        for owner in owners:
            if owner != (manager, "Apply"):
                owners[owner] = owners[owner] - taken
        previously = owners.get((manager, "Apply"), set())
        new = copy.deepcopy(old)
        others = set().union(*(p for o, p in owners.items() if o != (manager, "Apply")))
        for path in sorted(previously - set(applied), key=len, reverse=True):
            if path[-1] == "." and any(o[:len(path) - 1] == path[:-1] for o in others):
                continue  # the item stays while another manager owns a field in it
            if path not in others:
                remove_at(new, path)
        new = merge(new, body)
        owners[(manager, "Apply")] = set(applied)
        return self._write(rt, key, old, new, owners, dry_run), False

    def delete(self, rt: ResourceType, namespace: str | None, name: str, dry_run: bool) -> Obj:
        """Delete; a Namespace only goes Terminating (the namespace controller empties and removes it)."""
        old = self.get(rt, namespace, name)
        out = copy.deepcopy(old)
        key = self._key(rt, namespace, name)
        if rt.kind == "Namespace" and rt.group == "":
            if not out["metadata"].get("deletionTimestamp"):
                out["metadata"]["deletionTimestamp"] = now_rfc3339()
                out["status"] = {"phase": "Terminating"}
                if not dry_run:
                    out["metadata"]["resourceVersion"] = self._next_rv()
                    self.objects[key] = out
                    self._record("MODIFIED", key, out)
            return copy.deepcopy(out)
        out["metadata"]["deletionTimestamp"] = now_rfc3339()
        if not dry_run:
            self.remove(key)
        return out

    def remove(self, key: Key) -> None:
        """Remove an object for good (controllers; ``delete`` for requests)."""
        obj = self.objects.pop(key, None)
        self.owners.pop(key, None)
        if obj is not None:
            obj["metadata"]["resourceVersion"] = self._next_rv()
            self._record("DELETED", key, obj)

    def put_raw(self, rt: ResourceType, obj: Obj, manager: str = "kube-controller-manager") -> Obj:
        """Store an object as the control plane itself would (seed, simulated controllers)."""
        obj = copy.deepcopy(obj)
        self._check_kind(rt, obj)
        meta = obj["metadata"]
        key = self._key(rt, meta.get("namespace"), meta["name"])
        old = self.objects.get(key)
        if old is None:
            for k in ("uid", "creationTimestamp"):
                meta.pop(k, None)
            self._stamp(rt, obj, None, False)
            owners: Owners = {(manager, "Update"): set(leaf_paths(obj))}
        else:
            owners = self._take_changed(key, old, obj, manager)
            self._stamp(rt, obj, old, False)
        self._render_managed(key, obj, rt, owners)
        self.objects[key] = obj
        self.owners[key] = owners
        if old is None or obj["metadata"]["resourceVersion"] != old["metadata"]["resourceVersion"]:
            self._record("ADDED" if old is None else "MODIFIED", key, obj)
        return obj
