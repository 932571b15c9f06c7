"""OpenAPI schemas of the served version (the JSON schemas shipped by ``kubernetes-validate``) and a
walk that drops unknown fields and checks types and required fields, as kube-apiserver's decoder and
validation do. Used for built-in kinds and, with a CRD's ``openAPIV3Schema``, for custom resources.

https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

Obj = dict[str, Any]
_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}


@dataclass
class Findings:
    """What a walk found: unknown fields (dropped), type errors, missing required fields."""

    unknown: list[str] = field(default_factory=list)
    wrong_type: list[str] = field(default_factory=list)
    required: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=4)
def definitions(version: str) -> tuple[dict[str, Obj], dict[tuple[str, str, str], Obj]]:
    """($defs, {(group, version, kind): schema}) for Kubernetes ``version`` (major.minor; the newest
    bundled minor when that one is not shipped)."""
    root = resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")
    minor = ".".join(version.lstrip("v").split(".")[:2])
    names = sorted((p.name for p in root.iterdir() if p.name.endswith("-local")),
                   key=lambda n: tuple(int(x) for x in n[1:].split("-")[0].split(".")))
    pick = next((n for n in names if n.startswith(f"v{minor}.")), names[-1])
    doc = json.loads(root.joinpath(pick, "_definitions.json").read_text(encoding="utf-8"))
    defs: dict[str, Obj] = doc["$defs"]
    by_gvk: dict[tuple[str, str, str], Obj] = {}
    for schema in defs.values():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            by_gvk[(gvk.get("group", ""), gvk["version"], gvk["kind"])] = schema
    return defs, by_gvk


def schema_for(version: str, group: str, api_version: str, kind: str) -> tuple[Obj, dict[str, Obj]] | None:
    defs, by_gvk = definitions(version)
    schema = by_gvk.get((group, api_version, kind))
    return (schema, defs) if schema is not None else None


def _resolve(schema: Obj, defs: dict[str, Obj]) -> Obj:
    for _ in range(20):
        if "$ref" in schema:
            schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
        elif "allOf" in schema and len(schema["allOf"]) == 1:
            schema = schema["allOf"][0]
        else:
            return schema
    return schema


def _types(schema: Obj) -> list[str]:
    t = schema.get("type")
    return [t] if isinstance(t, str) else list(t or [])


def _json_type(value: Any) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), "unknown")


def walk(value: Any, schema: Obj, defs: dict[str, Obj], path: str = "", found: Findings | None = None,
         top: bool = True) -> Findings:
    """Drop unknown fields from ``value`` in place; record them, type errors and missing required fields."""
    found = found if found is not None else Findings()
    schema = _resolve(schema, defs)
    if schema.get("x-kubernetes-preserve-unknown-fields") or schema.get("x-kubernetes-int-or-string"):
        return found
    types = _types(schema)
    have = _json_type(value)
    if types and have not in types and not (have == "integer" and "number" in types) and value is not None:
        found.wrong_type.append(f"{path or '(root)'}: {have} where {'/'.join(t for t in types if t != 'null')} "
                                "is expected")
        return found
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for req in schema.get("required") or []:
            if value.get(req) is None and not (top and req in ("apiVersion", "kind")):
                found.required.append(f"{path + '.' if path else ''}{req}")
        for key in list(value):
            sub = f"{path}.{key}" if path else key
            if props is not None and key in props:
                walk(value[key], props[key], defs, sub, found, False)
            elif isinstance(extra, dict):
                walk(value[key], extra, defs, sub, found, False)
            elif props is not None and not (top and key in ("apiVersion", "kind", "metadata")):
                found.unknown.append(sub)
                del value[key]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for n, item in enumerate(value):
            walk(item, schema["items"], defs, f"{path}[{n}]", found, False)
    return found
