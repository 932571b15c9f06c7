"""Patches applied offline to named objects of a manifest set (registry mirrors, args, CIDRs).

    Patch(kind="DaemonSet", name="calico-node", namespace="kube-system", type="strategic",
          patch={"spec": {"template": {"spec": {"containers": [{"name": "calico-node", "env": [
              {"name": "CALICO_IPV4POOL_CIDR", "value": "10.244.0.0/16"}]}]}}}})
    Patch(kind="ConfigMap", name="kube-proxy", namespace="kube-system", type="json",
          patch=[{"op": "replace", "path": "/data/mode", "value": "ipvs"}])

Strategic merge follows the Kubernetes rules with the merge keys and strategies of the target
version's OpenAPI schemas (kubernetes-validate ships them): lists with ``x-kubernetes-patch-strategy:
merge`` merge by ``x-kubernetes-patch-merge-key``, other lists are replaced, ``null`` deletes a key,
``$patch: delete`` removes a list item, ``$patch: replace`` replaces a map. Custom resources take
merge or JSON patches only (as a real API server, which refuses strategic merge for them).
JSON patches follow RFC 6902 (add, remove, replace, move, copy, test).
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonpointer

from .errors import KubeError
from .objects import ref_of

Obj = dict[str, Any]


class PatchError(KubeError):
    """A patch cannot be applied: its target is missing, its type unknown, or an operation fails."""


@dataclass(frozen=True)
class Patch:
    """A patch for the object kind/name (namespace when namespaced): type strategic, merge or json."""

    kind: str
    name: str
    patch: Any
    type: str = "strategic"
    namespace: str | None = None

    def matches(self, obj: Obj) -> bool:
        r = ref_of(obj)
        return r.kind == self.kind and r.name == self.name and (self.namespace is None or r.namespace == self.namespace)

    def __str__(self) -> str:
        return f"{self.type} patch for {self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"


def apply_patches(objs: list[Obj], patches: list[Patch], kubernetes_version: str) -> list[Obj]:
    """A new list with every patch applied to its target; each patch must match exactly one object."""
    out = [copy.deepcopy(o) for o in objs]
    for p in patches:
        hits = [i for i, o in enumerate(out) if p.matches(o)]
        if len(hits) != 1:
            raise PatchError(f"{p}: matches {len(hits)} objects of the set (needs exactly one)")
        i = hits[0]
        if p.type == "json":
            out[i] = json_patch(out[i], p.patch, str(p))
        elif p.type == "merge":
            out[i] = merge_patch(out[i], p.patch)
        elif p.type == "strategic":
            schema = _kind_schema(out[i], kubernetes_version)
            if schema is None:
                raise PatchError(f"{p}: {out[i].get('apiVersion')}/{p.kind} has no built-in schema (a custom "
                                 "resource?): strategic merge is not supported for it; use a merge or json patch")
            out[i] = strategic_merge(out[i], p.patch, schema)
        else:
            raise PatchError(f"{p}: unknown patch type (strategic, merge or json)")
        if ref_of(out[i]) != ref_of(objs[i]):
            raise PatchError(f"{p}: a patch must not change apiVersion, kind, name or namespace")
    return out


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def json_patch(doc: Obj, ops: list[Obj], what: str = "json patch") -> Obj:
    """RFC 6902 JSON patch (jsonpointer resolves paths)."""
    if not isinstance(ops, list):
        raise PatchError(f"{what}: a JSON patch is a list of operations")
    out = copy.deepcopy(doc)
    for n, op in enumerate(ops, 1):
        try:
            out = _json_op(out, op)
        except (jsonpointer.JsonPointerException, KeyError, IndexError, TypeError, ValueError) as exc:
            raise PatchError(f"{what}: operation {n} {json.dumps(op)[:200]} failed: {exc}") from exc
    return out


def _json_op(doc: Any, op: Obj) -> Any:
    kind, path = op["op"], op["path"]
    if kind == "test":
        if jsonpointer.resolve_pointer(doc, path) != op["value"]:
            raise ValueError(f"value at {path} is not {op['value']!r}")
        return doc
    if kind in ("move", "copy"):
        value = copy.deepcopy(jsonpointer.resolve_pointer(doc, op["from"]))
        if kind == "move":
            doc = _json_op(doc, {"op": "remove", "path": op["from"]})
        return _json_op(doc, {"op": "add", "path": path, "value": value})
    if path == "":
        if kind == "remove":
            raise ValueError("cannot remove the whole document")
        return copy.deepcopy(op["value"])
    pointer = jsonpointer.JsonPointer(path)
    parent, last_part = pointer.to_last(doc)
    last = str(last_part)
    if kind == "add":
        if isinstance(parent, list):
            parent.insert(len(parent) if last == "-" else int(last), copy.deepcopy(op["value"]))
        else:
            parent[last] = copy.deepcopy(op["value"])
    elif kind == "remove":
        del parent[int(last) if isinstance(parent, list) else last]
    elif kind == "replace":
        key = int(last) if isinstance(parent, list) else last
        if isinstance(parent, dict) and key not in parent:
            raise KeyError(f"{path} does not exist")
        parent[key] = copy.deepcopy(op["value"])
    else:
        raise ValueError(f"unknown op {kind!r}")
    return doc


# -- strategic merge, driven by the version's schemas

@functools.cache
def _definitions(kubernetes_version: str) -> dict[str, Any]:
    import kubernetes_validate

    minor = ".".join(kubernetes_version.lstrip("v").split(".")[:2])
    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    path = root / f"v{minor}.0-local" / "_definitions.json"
    if not path.is_file():
        available = sorted(p.name for p in root.glob("v*-local"))
        path = root / available[-1] / "_definitions.json"
    return dict(json.loads(path.read_text(encoding="utf-8"))["$defs"])


def _kind_schema(obj: Obj, kubernetes_version: str) -> tuple[dict[str, Any], Obj] | None:
    defs = _definitions(kubernetes_version)
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    for schema in defs.values():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            if (gvk.get("group"), gvk.get("version"), gvk.get("kind")) == (group, version, obj.get("kind")):
                return defs, schema
    return None


def _resolve(defs: dict[str, Any], schema: Obj | None) -> Obj:
    while schema and "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema or {}


def strategic_merge(target: Obj, patch: Obj, schema: tuple[dict[str, Any], Obj]) -> Obj:
    defs, root = schema
    return dict(_sm_map(target, patch, defs, root))


def _sm_map(target: Any, patch: Obj, defs: dict[str, Any], schema: Obj) -> Any:
    schema = _resolve(defs, schema)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    for key, value in patch.items():
        if key == "$patch":
            continue
        if value is None:
            out.pop(key, None)
            continue
        sub = _resolve(defs, props.get(key) or (extra if isinstance(extra, dict) else {}))
        if isinstance(value, dict):
            out[key] = _sm_map(out.get(key), value, defs, sub)
        elif isinstance(value, list):
            out[key] = _sm_list(out.get(key), value, defs, sub)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _sm_list(target: Any, patch: list[Any], defs: dict[str, Any], schema: Obj) -> list[Any]:
    strategy = str(schema.get("x-kubernetes-patch-strategy", ""))
    key = schema.get("x-kubernetes-patch-merge-key")
    current = copy.deepcopy(target) if isinstance(target, list) else []
    if "merge" not in strategy.split(","):
        return [v for v in copy.deepcopy(patch) if not (isinstance(v, dict) and v.get("$patch"))]
    if not key:  # a set of primitives: union, in order
        return current + [v for v in patch if v not in current]
    items = _resolve(defs, schema.get("items"))
    for entry in patch:
        if not isinstance(entry, dict) or key not in entry:
            raise PatchError(f"strategic merge: list item {json.dumps(entry)[:120]} lacks its merge key {key!r}")
        hit = next((i for i, cur in enumerate(current) if isinstance(cur, dict) and cur.get(key) == entry[key]), None)
        if entry.get("$patch") == "delete":
            if hit is not None:
                del current[hit]
            continue
        if hit is None:
            current.append(_sm_map({}, entry, defs, items))
        else:
            current[hit] = _sm_map(current[hit], entry, defs, items)
    return current


# -- registry mirrors

def _pod_specs(obj: Obj) -> list[Obj]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Pod":
        return [spec]
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = (spec.get("template") or {}).get("spec")
    return [template] if isinstance(template, dict) else []


def mirror_images(objs: list[Obj], mirrors: dict[str, str]) -> list[Obj]:
    """A copy of ``objs`` whose container images from a mirrored registry point at the mirror
    (``{"registry.k8s.io": "mirror.example:5000/k8s"}``; ``docker.io`` also matches images without a
    registry, as containerd resolves them). Pods, pod templates and CronJob templates are covered."""
    out = copy.deepcopy(objs)
    for obj in out:
        for spec in _pod_specs(obj):
            for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                c["image"] = _mirrored(str(c.get("image", "")), mirrors)
    return out


def _mirrored(image: str, mirrors: dict[str, str]) -> str:
    first, _, rest = image.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        first, rest = "docker.io", image if "/" in image else f"library/{image}"
    target = mirrors.get(first)
    return f"{target.rstrip('/')}/{rest}" if target else image
