"""What kube-apiserver checks and fills in on every client write, before anything is stored.

- field validation (``fieldValidation`` Strict/Warn/Ignore; Warn is the default): unknown fields
  dropped, with a ``Warning`` each or a 400 (Strict); wrong types 400; missing required fields 422.
  https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation
- object names: RFC 1123 subdomain, RFC 1123 label (Namespace), RFC 1035 label (Service), path
  segment (RBAC). https://kubernetes.io/docs/concepts/overview/working-with-objects/names/
- immutable fields: Service clusterIP, Deployment selector, PVC spec, Job template, ConfigMap/Secret
  with ``immutable: true``.
- Service ClusterIP allocation from the service CIDR (unique; a requested IP honoured or 422).
  https://kubernetes.io/docs/concepts/services-networking/cluster-ip-allocation/
- ``dryRun`` values (only ``All``). https://kubernetes.io/docs/reference/using-api/api-concepts/#dry-run
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any

from runbooks_lib.kube.paths import BUILTIN, ResourceType

from . import schemas
from .errors import ApiError, Obj

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_PATH_SEGMENT_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
MODES = ("Strict", "Warn", "Ignore")


def invalid(kind: str, name: str, causes: list[tuple[str, str, str]], group: str = "") -> ApiError:
    """422 Invalid with (reason, field, message) causes, worded as kube-apiserver does."""
    text = "; ".join(f"{f}: {m}" for _r, f, m in causes)
    msg = f'{kind} "{name}" is invalid: {text}' if len(causes) == 1 else f'{kind} "{name}" is invalid: [{text}]'
    return ApiError(422, "Invalid", msg, {"name": name, "group": group, "kind": kind,
                                          "causes": [{"reason": r, "message": m, "field": f} for r, f, m in causes]})


def check_dry_run(values: list[str], options_kind: str) -> bool:
    """True for ``dryRun=All``; 422 for anything else but no value."""
    bad = [v for v in values if v != "All"]
    if bad:
        raise ApiError(422, "Invalid", f'{options_kind}.meta.k8s.io "" is invalid: dryRun: Unsupported value: '
                                       f'{json.dumps(bad)}: supported values: "All"',
                       {"kind": options_kind, "group": "meta.k8s.io",
                        "causes": [{"reason": "FieldValueNotSupported", "field": "dryRun"}]})
    return bool(values)


def check_field_validation(value: str) -> str:
    if value in ("", *MODES):
        return value or "Warn"
    raise ApiError(400, "BadRequest", f"fieldValidation must be one of Strict, Warn, Ignore, or empty; "
                                      f"got {value!r}")


def name_error(rt: ResourceType, name: str) -> str | None:
    """Why ``name`` is not a valid name for this kind, else None."""
    if rt.kind in _PATH_SEGMENT_KINDS and rt.group == "rbac.authorization.k8s.io":
        if name in (".", "..") or "/" in name or "%" in name:
            return f'Invalid value: "{name}": may not contain \'/\' or \'%\', or be \'.\' or \'..\''
        return None
    if rt.kind == "Namespace" and rt.group == "":
        if len(name) > 63 or not _LABEL.match(name):
            return (f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower case alphanumeric '
                    "characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  "
                    "or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
        return None
    if rt.kind == "Service" and rt.group == "":
        if len(name) > 63 or not _LABEL_1035.match(name):
            return (f'Invalid value: "{name}": a DNS-1035 label must consist of lower case alphanumeric characters '
                    "or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. "
                    "'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
        return None
    if len(name) > 253 or not _SUBDOMAIN.match(name):
        return (f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric '
                "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
                "'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
    return None


def qos_class(pod: Obj) -> str:
    """Guaranteed, Burstable or BestEffort from the containers' requests and limits.
    https://kubernetes.io/docs/concepts/workloads/pods/pod-qos/"""
    res = [c.get("resources") or {} for c in _spec(pod).get("containers") or []]
    if not any(r.get("requests") or r.get("limits") for r in res):
        return "BestEffort"
    if all({"cpu", "memory"} <= set(r.get("limits") or {}) and
           all((r.get("requests") or {}).get(k, r["limits"][k]) == r["limits"][k] for k in ("cpu", "memory"))
           for r in res):
        return "Guaranteed"
    return "Burstable"


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def immutable_errors(rt: ResourceType, old: Obj, new: Obj) -> list[tuple[str, str, str]]:
    """(reason, field, message) for each immutable field the update changes."""
    out: list[tuple[str, str, str]] = []
    kind = rt.kind if rt.group in ("", "apps", "batch") else ""

    def same(path: str) -> bool:
        a: Any = old
        b: Any = new
        for p in path.split("."):
            a = a.get(p) if isinstance(a, dict) else None
            b = b.get(p) if isinstance(b, dict) else None
        return bool(a == b)

    if kind == "Service" and _spec(old).get("clusterIP") and not same("spec.clusterIP"):
        out.append(("FieldValueInvalid", "spec.clusterIP",
                    f'Invalid value: "{_spec(new).get("clusterIP", "")}": field is immutable'))
    if kind == "Deployment" and not same("spec.selector"):
        out.append(("FieldValueInvalid", "spec.selector",
                    f"Invalid value: {json.dumps(_spec(new).get('selector'))}: field is immutable"))
    if kind == "Job" and not same("spec.template"):
        out.append(("FieldValueInvalid", "spec.template", "Invalid value: ...: field is immutable"))
    if kind == "PersistentVolumeClaim":
        a, b = json.loads(json.dumps(_spec(old))), json.loads(json.dumps(_spec(new)))
        if not a.get("volumeName") and b.get("volumeName"):  # binding sets volumeName once
            a["volumeName"] = b["volumeName"]
        if (old.get("status") or {}).get("phase") == "Bound":
            for s in (a, b):
                s.get("resources", {}).pop("requests", None)
        if a != b:
            out.append(("FieldValueForbidden", "spec", "Forbidden: spec is immutable after creation except "
                                                       "resources.requests and volumeAttributesClassName for bound claims"))
    if kind in ("ConfigMap", "Secret") and old.get("immutable"):
        for f in ("data", "binaryData") + (("stringData",) if kind == "Secret" else ()):
            if old.get(f) != new.get(f):
                out.append(("FieldValueForbidden", f, "Forbidden: field is immutable when `immutable` is set"))
        if not new.get("immutable"):
            out.append(("FieldValueForbidden", "immutable", "Forbidden: field is immutable when `immutable` is set"))
    return out


@dataclass
class Admission:
    """The store's ``admit`` hook. ``begin`` sets the current request's field validation mode;
    ``warnings`` collects its Warning headers. Custom resources are checked against ``crd_schemas``."""

    store: Any
    version: str
    mode: str = "Warn"
    warnings: list[str] = field(default_factory=list)
    #: (group, version, kind) -> openAPIV3Schema of a served custom resource version
    crd_schemas: dict[tuple[str, str, str], Obj] = field(default_factory=dict)

    def begin(self, mode: str) -> None:
        self.mode, self.warnings = mode, []

    def __call__(self, rt: ResourceType, old: Obj | None, new: Obj, dry_run: bool) -> None:
        name = new["metadata"].get("name", "")
        custom = (rt.group, rt.version, rt.kind) in self.crd_schemas
        self._fields(rt, name, new, custom)
        if old is None:
            why = name_error(rt, name)
            if why:
                raise invalid(rt.kind, name, [("FieldValueInvalid", "metadata.name", why)], rt.group)
            if rt.kind == "Namespace" and rt.group == "":
                new["status"] = {"phase": "Active"}
            if rt.kind == "PersistentVolumeClaim" and rt.group == "":
                new["status"] = {"phase": "Pending"}  # the default a stored claim is read back with
            if rt.kind == "Pod" and rt.group == "":
                new["status"] = {"phase": "Pending", "qosClass": qos_class(new)}
            if rt.kind == "CustomResourceDefinition":
                spec = _spec(new)
                want = f"{(spec.get('names') or {}).get('plural', '')}.{spec.get('group', '')}"
                if name != want:
                    raise invalid(rt.kind, name, [("FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": '
                                                   'must be spec.names.plural+"."+spec.group')], rt.group)
        else:
            if rt.kind == "Service" and rt.group == "" and not _spec(new).get("clusterIP") and _spec(old).get("clusterIP"):
                new.setdefault("spec", {})["clusterIP"] = old["spec"]["clusterIP"]  # left out: carried over
                new["spec"]["clusterIPs"] = old["spec"].get("clusterIPs", [old["spec"]["clusterIP"]])
            errs = immutable_errors(rt, old, new)
            if errs:
                raise invalid(rt.kind, name, errs, rt.group)
        if rt.kind == "Service" and rt.group == "" and old is None:
            self._allocate_cluster_ip(name, new)

    def _fields(self, rt: ResourceType, name: str, obj: Obj, custom: bool) -> None:
        if custom:
            schema: Obj | None = self.crd_schemas[(rt.group, rt.version, rt.kind)]
            defs: dict[str, Obj] = {}
        else:
            found_schema = schemas.schema_for(self.version, rt.group, rt.version, rt.kind)
            schema, defs = found_schema if found_schema else (None, {})
        if schema is None:
            return
        found = schemas.walk(obj, schema, defs)
        if found.unknown:
            if self.mode == "Strict":
                raise ApiError(400, "BadRequest", "strict decoding error: "
                               + ", ".join(f'unknown field "{u}"' for u in found.unknown))
            if self.mode == "Warn":
                self.warnings += [f'unknown field "{u}"' for u in found.unknown]
        if found.wrong_type:
            if custom:
                raise invalid(rt.kind, name, [("FieldValueTypeInvalid", w.split(":")[0], "Invalid value: "
                                               + w.split(": ", 1)[1]) for w in found.wrong_type], rt.group)
            raise ApiError(400, "BadRequest", f"{rt.kind} in version \"{rt.version}\" cannot be handled as a "
                                              f"{rt.kind}: " + "; ".join(found.wrong_type))
        if found.required:
            raise invalid(rt.kind, name, [("FieldValueRequired", r, "Required value") for r in found.required],
                          rt.group)

    def _allocate_cluster_ip(self, name: str, svc: Obj) -> None:
        spec = svc.setdefault("spec", {})
        if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
            return
        used = {s["spec"].get("clusterIP") for s in self.store.list(BUILTIN["Service"], None)}
        want = spec.get("clusterIP")
        if want:
            try:
                ip = ipaddress.ip_address(want)
            except ValueError:
                ip = None
            if ip is None or ip not in SERVICE_CIDR:
                raise invalid("Service", name, [("FieldValueInvalid", "spec.clusterIPs",
                                                 f'Invalid value: ["{want}"]: failed to allocate IP {want}: the '
                                                 f"provided IP ({want}) is not in the valid range. The range of "
                                                 f"valid IPs is {SERVICE_CIDR}")])
            if want in used:
                raise invalid("Service", name, [("FieldValueInvalid", "spec.clusterIPs",
                                                 f'Invalid value: ["{want}"]: failed to allocate IP {want}: '
                                                 "provided IP is already allocated")])
        else:
            size = SERVICE_CIDR.num_addresses
            start = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % (size - 2) + 1
            for n in range(size - 2):
                cand = str(SERVICE_CIDR[(start + n) % (size - 2) + 1])
                if cand not in used:
                    want = cand
                    break
        spec["clusterIP"], spec["clusterIPs"] = want, [want]
