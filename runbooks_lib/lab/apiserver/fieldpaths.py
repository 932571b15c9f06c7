"""Field paths for server-side apply and strategic merge: associative lists merged by their keys.

A path is a tuple of elements: a map field name, or ``k:{...}`` for the list item with those key
values (containers by name, container ports by containerPort/protocol, Service ports by
port/protocol, env by name, volumes by name, volumeMounts by mountPath), then ``.`` for the item
itself. Other lists are atomic. https://kubernetes.io/docs/reference/using-api/server-side-apply/#merge-strategy
"""

from __future__ import annotations

import copy
import json
from typing import Any

Obj = dict[str, Any]
FieldPath = tuple[str, ...]

#: list field name -> the item keys it merges by (``ports`` depends on the item, see ``_keys``)
MERGE_KEYS = {"containers": ("name",), "initContainers": ("name",), "ephemeralContainers": ("name",),
              "env": ("name",), "volumes": ("name",), "volumeMounts": ("mountPath",),
              "imagePullSecrets": ("name",), "hostAliases": ("ip",)}
SYSTEM_META = {"uid", "resourceVersion", "creationTimestamp", "generation", "managedFields",
               "deletionTimestamp", "selfLink"}


class _Missing:
    pass


MISSING = _Missing()


def _keys(field: str, item: Any) -> tuple[str, ...] | None:
    if not isinstance(item, dict):
        return None
    if field == "ports":
        return ("containerPort", "protocol") if "containerPort" in item else ("port", "protocol")
    return MERGE_KEYS.get(field)


def item_key(field: str, item: Any) -> str | None:
    """``k:{...}`` for an item of an associative list (protocol defaults to TCP), else None."""
    names = _keys(field, item)
    if names is None or not all(n in item or n == "protocol" for n in names):
        return None
    values = {n: item.get(n, "TCP") if n == "protocol" else item[n] for n in names}
    return "k:" + json.dumps(values, sort_keys=True, separators=(",", ":"))


def is_keyed(field: str, value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(item_key(field, i) is not None for i in value)


def leaf_paths(obj: Any, prefix: FieldPath = ()) -> dict[FieldPath, Any]:
    """Owned field paths of a manifest, without apiVersion/kind/status and system metadata."""
    out: dict[FieldPath, Any] = {}
    if isinstance(obj, dict) and obj:
        for key, val in obj.items():
            if not prefix and key in ("apiVersion", "kind", "status"):
                continue
            if prefix == ("metadata",) and key in SYSTEM_META | {"name", "namespace"}:
                continue
            out.update(leaf_paths(val, prefix + (key,)))
    elif prefix and is_keyed(prefix[-1], obj):
        for item in obj:
            k = item_key(prefix[-1], item)
            assert k is not None
            out[prefix + (k, ".")] = k
            out.update(leaf_paths(item, prefix + (k,)))
    elif prefix:
        out[prefix] = obj
    return out


def _child(node: Any, parent_field: str, elem: str) -> Any:
    if elem.startswith("k:"):
        if not isinstance(node, list):
            return MISSING
        return next((i for i in node if item_key(parent_field, i) == elem), MISSING)
    if not isinstance(node, dict) or elem not in node:
        return MISSING
    return node[elem]


def get_at(obj: Any, path: FieldPath) -> Any:
    node, parent = obj, ""
    for elem in path:
        if elem == ".":
            return item_key(parent, node) if node is not MISSING else MISSING
        node = _child(node, parent, elem)
        if node is MISSING:
            return MISSING
        parent = elem
    return node


def remove_at(obj: Obj, path: FieldPath) -> None:
    """Remove the field (or, for a path ending in ``.``, the list item); maps left empty go too."""
    chain: list[tuple[Any, str, str]] = []  # (container, element, field name of the container)
    node: Any = obj
    parent = ""
    for elem in path[:-1] if path[-1] == "." else path:
        nxt = _child(node, parent, elem)
        if nxt is MISSING:
            return
        chain.append((node, elem, parent))
        node, parent = nxt, elem
    container, elem, _field = chain[-1]
    if isinstance(container, list):
        container.remove(node)
    else:
        del container[elem]
    for container, elem, _field in reversed(chain[:-1]):
        if isinstance(container, dict) and container.get(elem) == {}:
            del container[elem]


def merge(live: Any, patch: Any, field: str = "", nulls_delete: bool = False) -> Any:
    """Merge ``patch`` into ``live``: maps recursively, associative lists by key, other values replaced.
    Nulls in the patch are dropped (apply) or delete the field (strategic merge)."""
    if isinstance(patch, dict):
        out = copy.deepcopy(live) if isinstance(live, dict) else {}
        for key, val in patch.items():
            if key.startswith("$"):  # strategic-merge directives are not modelled
                continue
            if val is None:
                if nulls_delete:
                    out.pop(key, None)
                continue
            out[key] = merge(out.get(key), val, key, nulls_delete)
        return out
    if is_keyed(field, patch) and (is_keyed(field, live) or live == []):
        items = copy.deepcopy(live)
        index = {item_key(field, i): n for n, i in enumerate(items)}
        for item in patch:
            k = item_key(field, item)
            if k in index:
                items[index[k]] = merge(items[index[k]], item, "", nulls_delete)
            else:
                items.append(copy.deepcopy(item))
        return items
    return copy.deepcopy(patch)


def fields_v1(paths: set[FieldPath]) -> Obj:
    tree: Obj = {}
    for path in sorted(paths):
        node = tree
        for p in path:
            node = node.setdefault(p if p == "." or p.startswith("k:") else f"f:{p}", {})
    return tree


def spath(path: FieldPath) -> str:
    """As kube-apiserver prints a conflicting field: ``.spec.containers[name="a"].image``."""
    out = ""
    for p in path:
        if p == ".":
            continue
        if p.startswith("k:"):
            keys = json.loads(p[2:])
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items()) + "]"
        else:
            out += "." + p
    return out
