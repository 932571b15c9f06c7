"""The API double's object store: Kubernetes write semantics on plain dicts.

resourceVersion from one counter, uid/creationTimestamp/generation, 404/409/422 as Status
objects, label and field selectors, merge/strategic/JSON patches, and server-side apply with
field ownership per field manager (conflicts on fields another manager owns unless forced;
fields a manager stops applying are removed). Lists are atomic (a simplification of SSA's
associative lists). Not thread-safe by itself: the server holds ``lock`` around calls.
"""

from __future__ import annotations

import builtins
import copy
import datetime as dt
import re
import secrets
import threading
import uuid
from collections import deque
from typing import Any

from runbooks_lib.kube.paths import ResourceType

Obj = dict[str, Any]
FieldPath = tuple[str, ...]
#: field owners: (manager, operation) -> owned leaf paths
Owners = dict[tuple[str, str], set[FieldPath]]

#: kinds whose writers get metadata.generation bumped on spec changes
GENERATION_KINDS = {"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "APIService",
                    "CustomResourceDefinition", "PodDisruptionBudget", "HorizontalPodAutoscaler"}
#: kinds with a status subresource: writes to the main resource keep the stored status
STATUS_KINDS = {"Pod", "Node", "Namespace", "Service", "PersistentVolumeClaim", "PersistentVolume",
                "Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job", "APIService",
                "CustomResourceDefinition", "PodDisruptionBudget", "HorizontalPodAutoscaler"}
_SYSTEM_META = {"uid", "resourceVersion", "creationTimestamp", "generation", "managedFields",
                "deletionTimestamp", "selfLink"}


class ApiError(Exception):
    """A request the API refuses: rendered as a v1 Status with ``code``."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> Obj:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "details": self.details, "code": self.code}


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


# ----------------------------------------------------------------------------- selectors

_REQ = re.compile(r"^\s*(!?)\s*([A-Za-z0-9./_-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9._-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*$")


def _split_top(text: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return out


def parse_label_selector(text: str) -> list[tuple[str, str, list[str]]]:
    """Requirements (key, op, values) of a label selector; op in = != in notin exists !exists."""
    reqs = []
    for part in _split_top(text or ""):
        m = _REQ.match(part)
        if not m:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {part.strip()!r}")
        neg, key, eq, val, setop, setvals = m.groups()
        if eq:
            reqs.append((key, "!=" if eq == "!=" else "=", [val]))
        elif setop:
            reqs.append((key, setop, [v.strip() for v in setvals.split(",") if v.strip()]))
        else:
            reqs.append((key, "!exists" if neg else "exists", []))
    return reqs


def labels_match(labels: dict[str, str], reqs: list[tuple[str, str, list[str]]]) -> bool:
    for key, op, vals in reqs:
        have = labels.get(key)
        if op == "=" and have != vals[0]:
            return False
        if op == "!=" and have == vals[0]:
            return False
        if op == "in" and have not in vals:
            return False
        if op == "notin" and have in vals:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "!exists" and key in labels:
            return False
    return True


def dotted(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def fields_match(obj: Obj, text: str) -> bool:
    for part in _split_top(text or ""):
        m = re.match(r"^\s*([A-Za-z0-9.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise ApiError(400, "BadRequest", f"invalid field selector: {part.strip()!r}")
        key, op, val = m.groups()
        have = dotted(obj, key)
        have_s = "" if have is None else str(have)
        if (op == "!=") == (have_s == val):
            return False
    return True


# ----------------------------------------------------------------------------- patches

def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (strategic merge patches are applied the same way for maps)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, val in patch.items():
        if key.startswith("$"):  # strategic-merge directives ($patch, $retainKeys...) are not modelled
            continue
        if val is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), val)
    return out


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def json_patch(target: Obj, ops: list[Obj]) -> Obj:
    """RFC 6902 add/replace/remove/test on a copy."""
    doc = copy.deepcopy(target)
    for op in ops:
        parts = _pointer(op.get("path", ""))
        parent: Any = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.setdefault(p, {})
        last = parts[-1] if parts else ""
        kind = op.get("op")
        try:
            if kind in ("add", "replace"):
                if isinstance(parent, list):
                    idx = len(parent) if last == "-" else int(last)
                    if kind == "add":
                        parent.insert(idx, op["value"])
                    else:
                        parent[idx] = op["value"]
                else:
                    if kind == "replace" and last not in parent:
                        raise KeyError(last)
                    parent[last] = op["value"]
            elif kind == "remove":
                if isinstance(parent, list):
                    del parent[int(last)]
                else:
                    del parent[last]
            elif kind == "test":
                cur = parent[int(last)] if isinstance(parent, list) else parent[last]
                if cur != op.get("value"):
                    raise ApiError(422, "Invalid", f"test operation failed at {op.get('path')}")
            else:
                raise ApiError(400, "BadRequest", f"unsupported JSON patch op {kind!r}")
        except (KeyError, IndexError, ValueError) as exc:
            raise ApiError(422, "Invalid", f"JSON patch {kind} at {op.get('path')}: no such path") from exc
    return doc


# ----------------------------------------------------------------------------- field ownership

def leaf_paths(obj: Any, prefix: FieldPath = ()) -> dict[FieldPath, Any]:
    """Leaf field paths of a manifest (lists atomic), without system metadata and status."""
    out: dict[FieldPath, Any] = {}
    if isinstance(obj, dict) and obj:
        for key, val in obj.items():
            if not prefix and key in ("apiVersion", "kind", "status"):
                continue
            if prefix == ("metadata",) and key in _SYSTEM_META | {"name", "namespace"}:
                continue
            out.update(leaf_paths(val, prefix + (key,)))
    elif prefix:
        out[prefix] = obj
    return out


def get_at(obj: Any, path: FieldPath) -> Any:
    for p in path:
        if not isinstance(obj, dict) or p not in obj:
            return _MISSING
        obj = obj[p]
    return obj


def remove_at(obj: Obj, path: FieldPath) -> None:
    chain: list[tuple[Obj, str]] = []
    node: Any = obj
    for p in path:
        if not isinstance(node, dict) or p not in node:
            return
        chain.append((node, p))
        node = node[p]
    parent, key = chain[-1]
    del parent[key]
    for parent, key in reversed(chain[:-1]):  # drop maps left empty
        if parent[key] == {}:
            del parent[key]


class _Missing:
    pass


_MISSING = _Missing()


def fields_v1(paths: set[FieldPath]) -> Obj:
    tree: Obj = {}
    for path in sorted(paths):
        node = tree
        for p in path:
            node = node.setdefault(f"f:{p}", {})
    return tree


def spath(path: FieldPath) -> str:
    return "." + ".".join(path)


# ----------------------------------------------------------------------------- the store

class Store:
    """Objects by (group, plural, namespace, name); the current resourceVersion; ownership."""

    def __init__(self, types: list[ResourceType]) -> None:
        self.lock = threading.RLock()
        self.types = {(t.group, t.plural): t for t in types}
        self.by_kind = {(t.group, t.kind): t for t in types}
        self.objects: dict[tuple[str, str, str, str], Obj] = {}
        self.owners: dict[tuple[str, str, str, str], Owners] = {}
        self.rv = 1000
        #: watch log: (resourceVersion, event type, key, object); ``changed`` is notified on each write
        self.log: deque[tuple[int, str, tuple[str, str, str, str], Obj]] = deque(maxlen=20000)
        self.changed = threading.Condition(self.lock)

    def _record(self, event: str, key: tuple[str, str, str, str], obj: Obj) -> None:
        self.log.append((int(obj["metadata"]["resourceVersion"]), event, key, copy.deepcopy(obj)))
        self.changed.notify_all()

    def oldest_rv(self) -> int:
        """The oldest resourceVersion a watch can start from (older: 410 Gone)."""
        if self.log and len(self.log) == self.log.maxlen:
            return self.log[0][0] - 1
        return 0

    def type_for(self, group: str, plural: str) -> ResourceType:
        rt = self.types.get((group, plural))
        if rt is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return rt

    def _key(self, rt: ResourceType, namespace: str | None, name: str) -> tuple[str, str, str, str]:
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
            if rt.kind != "Namespace" and ("", "namespaces", "", namespace) not in self.objects:
                raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found',
                               {"name": namespace, "kind": "namespaces"})
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

    def _render_managed(self, key: tuple[str, str, str, str], obj: Obj, rt: ResourceType,
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
        self._stamp(rt, body, None, dry_run)
        owners = {(manager, "Update"): set(leaf_paths(body))}
        self._render_managed(key, body, rt, owners)
        if not dry_run:
            self.objects[key] = body
            self.owners[key] = owners
            self._record("ADDED", key, body)
        return copy.deepcopy(body)

    def _write(self, rt: ResourceType, key: tuple[str, str, str, str], old: Obj, new: Obj,
               owners: Owners, dry_run: bool, status_only: bool = False) -> Obj:
        if rt.kind in STATUS_KINDS:
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
        self._stamp(rt, new, old, dry_run)
        self._render_managed(key, new, rt, owners)
        if not dry_run:
            self.objects[key] = new
            self.owners[key] = owners
            if new["metadata"]["resourceVersion"] != old["metadata"]["resourceVersion"]:
                self._record("MODIFIED", key, new)
        return copy.deepcopy(new)

    def _take_changed(self, key: tuple[str, str, str, str], old: Obj, new: Obj, manager: str) -> Owners:
        """Ownership after a non-apply write: changed fields move to (manager, Update)."""
        owners = copy.deepcopy(self.owners.get(key, {}))
        old_leaves, new_leaves = leaf_paths(old), leaf_paths(new)
        changed = {p for p, v in new_leaves.items() if old_leaves.get(p, _MISSING) != v}
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
            new = merge_patch(old, patch)
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
            self._stamp(rt, body, None, dry_run)
            owners = {(manager, "Apply"): set(applied)}
            self._render_managed(key, body, rt, owners)
            if not dry_run:
                self.objects[key] = body
                self.owners[key] = owners
                self._record("ADDED", key, body)
            return copy.deepcopy(body), True
        owners = copy.deepcopy(self.owners.get(key, {}))
        current = leaf_paths(old)
        conflicts: list[tuple[FieldPath, str]] = []
        for path, val in applied.items():
            if current.get(path, _MISSING) == val:
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
        for path in previously - set(applied):
            if not any(path in p for o, p in owners.items() if o != (manager, "Apply")):
                remove_at(new, path)
        new = merge_patch(new, _without_nulls(body))
        owners[(manager, "Apply")] = set(applied)
        return self._write(rt, key, old, new, owners, dry_run), False

    def delete(self, rt: ResourceType, namespace: str | None, name: str, dry_run: bool) -> Obj:
        old = self.get(rt, namespace, name)
        out = copy.deepcopy(old)
        out["metadata"]["deletionTimestamp"] = now_rfc3339()
        if not dry_run:
            key = self._key(rt, namespace, name)
            del self.objects[key]
            self.owners.pop(key, None)
            out["metadata"]["resourceVersion"] = self._next_rv()
            self._record("DELETED", key, out)
        return out

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


def _without_nulls(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _without_nulls(v) for k, v in obj.items() if v is not None}
    return obj
