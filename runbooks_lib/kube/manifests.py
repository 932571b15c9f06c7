"""Manifests: rendered as dicts, labelled per run, validated offline before anything is sent.

Validation uses kubernetes-validate's bundled OpenAPI-derived JSON schemas in strict mode (an
unknown field is an error) for the target Kubernetes version. Kinds without a bundled schema
(custom resources of CRDs) are skipped with a note, not failed.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from .errors import ManifestInvalid

Obj = dict[str, Any]
RUN_LABEL = "runbooks.io/run"


@dataclass
class Validation:
    """The outcome for one manifest: "valid", "skipped" (no schema) or "invalid"."""

    ref: str
    outcome: str
    detail: str
    schema_version: str = ""


def ref(manifest: Obj) -> str:
    meta = manifest.get("metadata") or {}
    ns = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{manifest.get('kind', '?')} {ns}{meta.get('name', '?')}"


def run_id_label(value: str) -> str:
    """A run id as a label value (<= 63 chars of [A-Za-z0-9._-], alphanumeric at both ends)."""
    clean = re.sub(r"[^A-Za-z0-9._-]", "-", value)[-63:].strip("-._")
    if not clean:
        raise ValueError(f"run id {value!r} has no usable characters for a label")
    return clean


def run_id_of(run: Any) -> str:
    """The run id of a Run: its run directory's name, as a label value."""
    return run_id_label(run.run_dir.name)


def with_run_label(manifest: Obj, run_id: str) -> Obj:
    """A copy of ``manifest`` labelled ``runbooks.io/run=<run id>`` (pod templates too)."""
    out = copy.deepcopy(manifest)
    out.setdefault("metadata", {}).setdefault("labels", {})[RUN_LABEL] = run_id_label(run_id)
    template = (out.get("spec") or {}).get("template")
    if isinstance(template, dict):
        template.setdefault("metadata", {}).setdefault("labels", {})[RUN_LABEL] = run_id_label(run_id)
    return out


def validate_manifest(manifest: Obj, kubernetes_version: str) -> Validation:
    import kubernetes_validate as kv
    from kubernetes_validate.utils import (
        SchemaNotFoundError,
        ValidationError,
        VersionNotSupportedError,
        latest_version,
    )

    version = kubernetes_version.lstrip("v")
    name = ref(manifest)
    if not manifest.get("apiVersion") or not manifest.get("kind"):
        return Validation(name, "invalid", "apiVersion and kind are required")
    try:
        used = kv.validate(manifest, version, strict=True)
    except VersionNotSupportedError:
        used = latest_version()
        return validate_manifest(manifest, used) if used != version else \
            Validation(name, "invalid", f"no schema for Kubernetes {version}")
    except SchemaNotFoundError:
        return Validation(name, "skipped", f"no schema for {manifest['apiVersion']}/{manifest['kind']} "
                                           f"(a custom resource): not validated offline")
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.path) or "(top level)"
        return Validation(name, "invalid", f"{where}: {exc.message}", exc.version)
    return Validation(name, "valid", f"valid against Kubernetes {used}", used)


def validate_manifests(manifests: list[Obj], kubernetes_version: str) -> list[Validation]:
    """Validate all; raise ManifestInvalid listing every invalid one (so nothing is sent)."""
    results = [validate_manifest(m, kubernetes_version) for m in manifests]
    bad = [f"{r.ref}: {r.detail}" for r in results if r.outcome == "invalid"]
    if bad:
        raise ManifestInvalid(bad)
    return results


def probe_pod(name: str, namespace: str, node: str, run_id: str, image: str = "busybox:1.36",
              command: list[str] | None = None) -> Obj:
    """A small pod pinned to ``node`` (tolerating every taint) to run probes from, labelled for the run."""
    return with_run_label({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/name": "runbooks-probe"}},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "probe", "image": image, "command": command or ["sleep", "3600"],
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                                          "limits": {"memory": "32Mi"}},
                            "securityContext": {"allowPrivilegeEscalation": False,
                                                "capabilities": {"drop": ["ALL"]}}}],
        },
    }, run_id)


# -- custom resources, against their CRD's openAPIV3Schema

def crd_key(crd: Obj) -> tuple[str, str]:
    """(group, kind) a CRD defines."""
    spec = crd.get("spec") or {}
    return str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", ""))


def _strict(schema: Any) -> Any:
    """An OpenAPI v3 structural schema as strict JSON Schema: unknown fields are errors (as
    fieldValidation=Strict), nullable and int-or-string as the API server reads them."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes-") and k != "nullable"}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields") \
            and "additionalProperties" not in schema:
        out["additionalProperties"] = False
    return out


def validate_custom(manifest: Obj, crd: Obj) -> Validation:
    """A custom resource against the openAPIV3Schema of the CRD version its apiVersion names."""
    from jsonschema import Draft7Validator

    name = ref(manifest)
    version = str(manifest.get("apiVersion", "")).rpartition("/")[2]
    crd_name = (crd.get("metadata") or {}).get("name", "?")
    served = {v.get("name"): v for v in (crd.get("spec") or {}).get("versions") or []}
    entry = served.get(version)
    if entry is None or not entry.get("served", True):
        return Validation(name, "invalid", f"CRD {crd_name} does not serve version {version} "
                                           f"(served: {', '.join(sorted(map(str, served)))})")
    schema = ((entry.get("schema") or {}).get("openAPIV3Schema")) or {"type": "object",
                                                                      "x-kubernetes-preserve-unknown-fields": True}
    strict = _strict(schema)
    strict.setdefault("properties", {}).update({"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                                "metadata": {"type": "object"}})
    errors = sorted(Draft7Validator(strict).iter_errors(manifest), key=lambda e: list(e.absolute_path))
    if errors:
        detail = "; ".join(f"{'.'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}"
                           for e in errors[:5])
        return Validation(name, "invalid", detail, f"CRD {crd_name}")
    return Validation(name, "valid", f"valid against CRD {crd_name} {version} schema", f"CRD {crd_name}")


def validate_set(manifests: list[Obj], kubernetes_version: str, crds: dict[tuple[str, str], Obj]) -> list[Validation]:
    """Validate every object offline: built-in kinds with kubernetes-validate, custom resources whose
    CRD is in ``crds`` against its schema (others "skipped"). ManifestInvalid lists every invalid one."""
    results = []
    for m in manifests:
        group = str(m.get("apiVersion", "")).rpartition("/")[0]
        crd = crds.get((group, str(m.get("kind", ""))))
        results.append(validate_custom(m, crd) if crd is not None else validate_manifest(m, kubernetes_version))
    bad = [f"{r.ref}: {r.detail}" for r in results if r.outcome == "invalid"]
    if bad:
        raise ManifestInvalid(bad)
    return results
