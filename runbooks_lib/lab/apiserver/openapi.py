"""``/openapi/v2`` and ``/openapi/v3`` from the schemas used for validation (kubernetes-validate's JSON
schemas of the served version, turned back into OpenAPI: ``$ref`` to ``#/definitions/`` or
``#/components/schemas/``, nullable type lists to one type, int-or-string as kube-openapi writes it).
``kubectl explain`` and client-side ``apply`` (strategic merge keys) read them.

https://kubernetes.io/docs/concepts/overview/kubernetes-api/#openapi-interface-definition
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from typing import Any

from runbooks_lib.kube.paths import ResourceType

from .errors import Obj
from .schemas import definitions

V3_MEDIA = "application/json"


def _convert(node: Any, prefix: str) -> Any:
    if isinstance(node, list):
        return [_convert(n, prefix) for n in node]
    if not isinstance(node, dict):
        return node
    one_of = node.get("oneOf")
    if isinstance(one_of, list) and {t for o in one_of for t in (o.get("type") or []) if t != "null"} == {"string", "integer"}:
        return {k: v for k, v in node.items() if k != "oneOf"} | {"type": "string", "format": "int-or-string",
                                                                   "x-kubernetes-int-or-string": True}
    out: Obj = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            out[key] = prefix + value.rsplit("/", 1)[-1]
        elif key == "type" and isinstance(value, list):
            kinds = [t for t in value if t != "null"]
            if kinds:
                out[key] = kinds[0]
        else:
            out[key] = value if key in ("enum", "example", "default") else _convert(value, prefix)
    return out


@functools.lru_cache(maxsize=4)
def _schemas(version: str, prefix: str) -> dict[str, Obj]:
    defs, _ = definitions(version)
    return {name: _convert(schema, prefix) for name, schema in defs.items()}


@functools.lru_cache(maxsize=4)
def v2(version: str) -> bytes:
    doc = {"swagger": "2.0", "info": {"title": "Kubernetes", "version": version}, "paths": {},
           "definitions": _schemas(version, "#/definitions/")}
    return json.dumps(doc).encode()


def _gv_path(group: str, api_version: str) -> str:
    return f"api/{api_version}" if not group else f"apis/{group}/{api_version}"


#: the query parameters of writes (kubectl checks ``fieldValidation`` is among them before relying on it)
_WRITE_PARAMS = [{"name": n, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
                 for n in ("dryRun", "fieldManager", "fieldValidation")]
Resources = tuple[tuple[str, str, bool], ...]  # (plural, kind, namespaced)


def _paths(version: str, group: str, api_version: str, resources: Resources, prefix: str) -> Obj:
    """GET operations per resource, as kube-apiserver publishes them (``kubectl explain`` finds a GVR's
    kind through them)."""
    by_gvk = _definition_names(version)
    paths: Obj = {}
    base = f"/{_gv_path(group, api_version)}"
    for plural, kind, namespaced in resources:
        gvk = {"group": group, "version": api_version, "kind": kind}
        name = by_gvk.get((group, api_version, kind))
        if name is None:
            continue
        scope = f"{base}/namespaces/{{namespace}}" if namespaced else base
        for path, action, ref in ((f"{scope}/{plural}/{{name}}", "get", name), (f"{scope}/{plural}", "list", f"{name}List")):
            schema = {"$ref": prefix + ref}
            response = {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}}
            write = "patch" if action == "get" else "post"
            paths[path] = {
                "get": {"operationId": f"{action}{kind}", "responses": response, "x-kubernetes-action": action,
                        "x-kubernetes-group-version-kind": gvk},
                write: {"operationId": f"{write}{kind}", "responses": response, "x-kubernetes-action": write,
                        "x-kubernetes-group-version-kind": gvk, "parameters": _WRITE_PARAMS}}
    return paths


@functools.lru_cache(maxsize=4)
def _definition_names(version: str) -> dict[tuple[str, str, str], str]:
    """{(group, version, kind): definition name} from the schemas' GVK annotations."""
    defs, _ = definitions(version)
    out: dict[tuple[str, str, str], str] = {}
    for name, schema in defs.items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            out.setdefault((gvk.get("group", ""), gvk["version"], gvk["kind"]), name)
    return out


@functools.lru_cache(maxsize=64)
def v3_doc(version: str, group: str, api_version: str, resources: Resources) -> tuple[bytes, str]:
    """(document, hash) of one group-version."""
    prefix = "#/components/schemas/"
    doc = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": version},
           "paths": _paths(version, group, api_version, resources, prefix),
           "components": {"schemas": _schemas(version, prefix)}}
    body = json.dumps(doc).encode()
    return body, hashlib.sha512(body).hexdigest()[:64].upper()


def resources_of(types: list[ResourceType], group: str, api_version: str) -> Resources:
    return tuple(sorted((t.plural, t.kind, t.namespaced) for t in types
                        if (t.group, t.version) == (group, api_version)))


def crd_doc(version: str, group: str, api_version: str, crds: list[Obj]) -> tuple[bytes, str]:
    """(document, hash) of a custom resources' group-version, from their CRDs' ``openAPIV3Schema``."""
    prefix = "#/components/schemas/"
    schemas, paths = dict(_schemas(version, prefix)), {}
    base = f"/apis/{group}/{api_version}"
    for crd in crds:
        spec = crd.get("spec") or {}
        kind, plural = spec["names"]["kind"], spec["names"]["plural"]
        served: Obj = next((v for v in spec.get("versions") or [] if v.get("name") == api_version), {})
        name = ".".join(reversed(group.split("."))) + f".{api_version}.{kind}"
        gvk = {"group": group, "version": api_version, "kind": kind}
        schema = copy.deepcopy((served.get("schema") or {}).get("openAPIV3Schema") or {"type": "object"})
        props = schema.setdefault("properties", {})
        props.update({"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                      "metadata": {"$ref": prefix + "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}})
        schemas[name] = {**schema, "x-kubernetes-group-version-kind": [gvk]}
        scope = f"{base}/namespaces/{{namespace}}" if spec.get("scope") == "Namespaced" else base
        response = {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": prefix + name}}}}}
        paths[f"{scope}/{plural}/{{name}}"] = {
            "get": {"responses": response, "x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk},
            "patch": {"responses": response, "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk,
                      "parameters": _WRITE_PARAMS}}
        paths[f"{scope}/{plural}"] = {
            "post": {"responses": response, "x-kubernetes-action": "post", "x-kubernetes-group-version-kind": gvk,
                     "parameters": _WRITE_PARAMS}}
    doc = {"openapi": "3.0.0", "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"}, "paths": paths,
           "components": {"schemas": schemas}}
    body = json.dumps(doc).encode()
    return body, hashlib.sha512(body).hexdigest()[:64].upper()


def v3_index(docs: dict[tuple[str, str], str]) -> Obj:
    """The index: each (group, version) with the hash of its document."""
    return {"paths": {_gv_path(g, v): {"serverRelativeURL": f"/openapi/v3/{_gv_path(g, v)}?hash={h}"}
                      for (g, v), h in sorted(docs.items())}}


def v3_path(path: str) -> tuple[str, str] | None:
    """(group, version) of ``/openapi/v3/api/v1`` or ``/openapi/v3/apis/apps/v1``; None otherwise."""
    parts = path.removeprefix("/openapi/v3/").split("/")
    if parts[0] == "api" and len(parts) == 2:
        return "", parts[1]
    if parts[0] == "apis" and len(parts) == 3:
        return parts[1], parts[2]
    return None
