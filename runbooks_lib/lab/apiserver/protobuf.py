"""Request bodies in ``application/vnd.kubernetes.protobuf``: kubectl's typed clients (``create namespace``,
``create configmap|secret|deployment|service``, ``auth can-i``, ``certificate approve``) send them, and kube-apiserver
decodes them for every built-in type. The envelope is ``k8s\\x00`` + a ``runtime.Unknown`` whose ``raw``
holds the object; the field numbers below are those of the types' ``generated.proto``. A kind not in
the table is refused with 415, as kube-apiserver refuses protobuf for a type it cannot decode (CRDs).

https://kubernetes.io/docs/reference/using-api/api-concepts/#protobuf-encoding
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from .errors import Obj
from .store import ApiError

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
Schema = dict[int, tuple[str, Any]]

_TIME: Schema = {1: ("seconds", "int"), 2: ("nanos", "int")}
_OWNER: Schema = {1: ("kind", "str"), 3: ("name", "str"), 4: ("uid", "str"), 5: ("apiVersion", "str"),
                  6: ("controller", "bool"), 7: ("blockOwnerDeletion", "bool")}
META: Schema = {1: ("name", "str"), 2: ("generateName", "str"), 3: ("namespace", "str"), 5: ("uid", "str"),
                6: ("resourceVersion", "str"), 7: ("generation", "int"), 8: ("creationTimestamp", "time"),
                11: ("labels", ("map", "str")), 12: ("annotations", ("map", "str")),
                13: ("ownerReferences", ("list", _OWNER)), 14: ("finalizers", ("list", "str"))}
_RESOURCE_ATTRS: Schema = {1: ("namespace", "str"), 2: ("verb", "str"), 3: ("group", "str"), 4: ("version", "str"),
                           5: ("resource", "str"), 6: ("subresource", "str"), 7: ("name", "str")}
_CSR_CONDITION: Schema = {1: ("type", "str"), 2: ("reason", "str"), 3: ("message", "str"),
                          4: ("lastUpdateTime", "time"), 5: ("lastTransitionTime", "time"), 6: ("status", "str")}
_SELECTOR: Schema = {1: ("matchLabels", ("map", "str"))}
_CONTAINER: Schema = {1: ("name", "str"), 2: ("image", "str"), 3: ("command", ("list", "str")),
                      4: ("args", ("list", "str")), 5: ("workingDir", "str"),
                      6: ("ports", ("list", {1: ("name", "str"), 3: ("containerPort", "int"), 4: ("protocol", "str")})),
                      7: ("env", ("list", {1: ("name", "str"), 2: ("value", "str")})), 8: ("resources", {}),
                      14: ("imagePullPolicy", "str")}
_POD_SPEC: Schema = {2: ("containers", ("list", _CONTAINER)), 3: ("restartPolicy", "str"),
                     7: ("nodeSelector", ("map", "str")), 8: ("serviceAccountName", "str")}
_TEMPLATE: Schema = {1: ("metadata", META), 2: ("spec", _POD_SPEC)}
_INT_OR_STRING: Schema = {1: ("type", "int"), 2: ("intVal", "int"), 3: ("strVal", "str")}
KINDS: dict[tuple[str, str], Schema] = {
    ("policy/v1", "Eviction"): {1: ("metadata", META)},
    ("apps/v1", "Deployment"): {1: ("metadata", META),
                                2: ("spec", {1: ("replicas", "int!"), 2: ("selector", _SELECTOR), 3: ("template", _TEMPLATE),
                                             4: ("strategy", {1: ("type", "str")})})},
    ("v1", "Service"): {1: ("metadata", META),
                        2: ("spec", {1: ("ports", ("list", {1: ("name", "str"), 2: ("protocol", "str"), 3: ("port", "int"),
                                                            4: ("targetPort", _INT_OR_STRING), 5: ("nodePort", "int")})),
                                     2: ("selector", ("map", "str")), 3: ("clusterIP", "str"), 4: ("type", "str")})},
    ("v1", "Namespace"): {1: ("metadata", META), 2: ("spec", {1: ("finalizers", ("list", "str"))})},
    ("v1", "ConfigMap"): {1: ("metadata", META), 2: ("data", ("map", "str")), 3: ("binaryData", ("map", "bytes")),
                          4: ("immutable", "bool")},
    ("v1", "Secret"): {1: ("metadata", META), 2: ("data", ("map", "bytes")), 3: ("type", "str"),
                       4: ("stringData", ("map", "str")), 5: ("immutable", "bool")},
    ("v1", "ServiceAccount"): {1: ("metadata", META), 4: ("automountServiceAccountToken", "bool")},
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): {
        1: ("metadata", META),
        2: ("spec", {1: ("resourceAttributes", _RESOURCE_ATTRS),
                     2: ("nonResourceAttributes", {1: ("path", "str"), 2: ("verb", "str")})})},
    ("certificates.k8s.io/v1", "CertificateSigningRequest"): {
        1: ("metadata", META),
        2: ("spec", {1: ("request", "bytes"), 2: ("username", "str"), 3: ("uid", "str"),
                     4: ("groups", ("list", "str")), 5: ("usages", ("list", "str")), 7: ("signerName", "str"),
                     8: ("expirationSeconds", "int")}),
        3: ("status", {1: ("conditions", ("list", _CSR_CONDITION)), 2: ("certificate", "bytes")})},
}
_UNKNOWN: Schema = {1: ("typeMeta", {1: ("apiVersion", "str"), 2: ("kind", "str")}), 2: ("raw", "bytes"),
                    3: ("contentEncoding", "str"), 4: ("contentType", "str")}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) in order: varints as int, length-delimited as bytes; fixed widths as bytes."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated field")
            out.append((number, data[pos:pos + size]))
            pos += size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            out.append((number, data[pos:pos + width]))
            pos += width
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def _scalar(kind: Any, value: int | bytes) -> Any:
    if isinstance(kind, dict):
        return decode(bytes(value) if isinstance(value, bytes) else b"", kind)
    if kind in ("int", "int!", "bool"):
        return (bool if kind == "bool" else int)(value) if isinstance(value, int) else 0
    raw = value if isinstance(value, bytes) else b""
    if kind == "bytes":
        return base64.b64encode(raw).decode()
    if kind == "time":
        secs = decode(raw, _TIME).get("seconds", 0)
        if not secs:  # Go's zero time (JSON null)
            return ""
        return dt.datetime.fromtimestamp(secs, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return raw.decode("utf-8")


def decode(data: bytes, schema: Schema) -> Obj:
    """A message as the JSON object it stands for (fields not in ``schema`` are dropped)."""
    out: Obj = {}
    for number, value in _fields(data):
        if number not in schema:
            continue
        name, kind = schema[number]
        if isinstance(kind, tuple) and kind[0] == "list":
            out.setdefault(name, []).append(_scalar(kind[1], value))
        elif isinstance(kind, tuple) and kind[0] == "map":
            entry = decode(value if isinstance(value, bytes) else b"", {1: ("k", "str"), 2: ("v", kind[1])})
            out.setdefault(name, {})[entry.get("k", "")] = entry.get("v", "" if kind[1] == "str" else "")
        else:
            value = _scalar(kind, value)
            if kind is _INT_OR_STRING:
                value = value.get("strVal", "") if value.get("type") == 1 else value.get("intVal", 0)
                if value not in ("", 0):  # unset (the server's defaulting would make it the port)
                    out[name] = value
            elif value not in ("", 0, False) or kind == "int!":  # int!: a pointer, 0 is a value
                out[name] = value  # Go's JSON omits empty fields (omitempty); protobuf writes them
    return out


def decode_body(raw: bytes) -> Obj:
    """The object of a protobuf request body; 415 for a kind this server has no field table for."""
    if not raw.startswith(MAGIC):
        raise ApiError(400, "BadRequest", "the body of the request was in an unknown format: missing the k8s "
                                          "protobuf prefix")
    try:
        unknown = decode(raw[len(MAGIC):], _UNKNOWN)
        meta = unknown.get("typeMeta") or {}
        key = (meta.get("apiVersion", ""), meta.get("kind", ""))
        if key not in KINDS:
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted media types include: "
                           f"application/json, application/yaml ({MEDIA_TYPE} for {key[1] or 'this type'} "
                           "is not decoded by the lab)")
        obj = decode(base64.b64decode(unknown.get("raw", "")), KINDS[key])
    except ValueError as exc:
        raise ApiError(400, "BadRequest", f"the body of the request was in an unknown format: {exc}") from exc
    return {"apiVersion": key[0], "kind": key[1], **obj}
