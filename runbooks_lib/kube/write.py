"""Write helpers: server-side apply (dry-run in plan mode), patches, deletes, run-label cleanup."""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import KubeConflict, KubeError, KubeNotFound
from .manifests import RUN_LABEL, Validation, ref, run_id_label, validate_manifests
from .read import ReadOps

Obj = dict[str, Any]
FIELD_MANAGER = "runbooks"
PATCH_TYPES = {"merge": "application/merge-patch+json", "strategic": "application/strategic-merge-patch+json",
               "json": "application/json-patch+json"}
#: what a trial may create; cleanup by run label looks at these kinds
TRIAL_KINDS = ["Pod", "Deployment", "DaemonSet", "Job", "Service", "ConfigMap", "PersistentVolumeClaim",
               "HorizontalPodAutoscaler"]


def _normalized(obj: Obj | None) -> Obj:
    out = copy.deepcopy(obj or {})
    meta = out.get("metadata") or {}
    for k in ("resourceVersion", "managedFields", "generation", "uid", "creationTimestamp"):
        meta.pop(k, None)
    out.pop("status", None)
    return out


def yaml_diff(before: Obj | None, after: Obj | None, name: str) -> str:
    """A unified diff of two objects as YAML (system metadata and status left out)."""
    a = yaml.safe_dump(_normalized(before), sort_keys=True).splitlines() if before else []
    b = yaml.safe_dump(_normalized(after), sort_keys=True).splitlines() if after else []
    return "\n".join(difflib.unified_diff(a, b, f"{name} (live)", f"{name} (applied)", lineterm=""))


def text_diff(before: str, after: str, name: str) -> str:
    return "\n".join(difflib.unified_diff(before.splitlines(), after.splitlines(), f"{name} (live)",
                                          f"{name} (new)", lineterm=""))


@dataclass
class ApplyResult:
    """One applied manifest: action is created, configured or unchanged; diff is live -> applied."""

    ref: str
    action: str
    dry_run: bool
    diff: str
    validation: str
    object: Obj = field(repr=False, default_factory=dict)


@dataclass
class ConfigMapChange:
    name: str
    namespace: str
    key: str
    before: str | None
    after: str
    changed: bool
    dry_run: bool
    diff: str


class WriteOps(ReadOps):
    """apply / patch / delete."""

    def apply(self, manifests: list[Obj], *, field_manager: str = FIELD_MANAGER, dry_run: bool = False,
              force: bool = False, kubernetes_version: str | None = None) -> list[ApplyResult]:
        """Server-side apply each manifest, after validating all of them offline (ManifestInvalid, and no
        request at all, if one is wrong). ``dry_run`` sends dryRun=All: the server validates and
        answers with the result, nothing is persisted. A field owned by another manager is a
        KubeConflict unless ``force``."""
        version = kubernetes_version or self._version_for_validation()
        checks: list[Validation] = validate_manifests(manifests, version)
        out = []
        for manifest, check in zip(manifests, checks, strict=True):
            if check.outcome == "skipped":
                self.recorder.note(f"{check.ref}: {check.detail}")
            meta = manifest.get("metadata") or {}
            rt = self.resource(manifest["kind"], manifest["apiVersion"])
            ns = (meta.get("namespace") or self.target.namespace) if rt.namespaced else None
            path = rt.path(meta["name"], ns)
            before = self.request("GET", path, ok=(404,))
            live = before.data if before.status == 200 else None
            try:
                resp = self.request("PATCH", path, body=manifest, content_type="application/apply-patch+yaml",
                                    query={"fieldManager": field_manager, "force": "true" if force else None,
                                           "dryRun": "All" if dry_run else None})
            except KubeConflict as exc:
                raise KubeConflict(f"apply {ref(manifest)} as field manager {field_manager!r}: {exc} "
                                   f"(another manager owns these fields; use force=True to take them)",
                                   code=exc.code, reason=exc.reason, verb="apply", resource=rt.plural,
                                   namespace=ns, name=meta["name"], status=exc.status) from exc
            after = resp.data
            if live is None:
                action = "created"
            elif _normalized(live) == _normalized(after):
                action = "unchanged"
            else:
                action = "configured"
            out.append(ApplyResult(ref(manifest), action, dry_run, yaml_diff(live, after, ref(manifest)),
                                   check.detail, after))
        return out

    def _version_for_validation(self) -> str:
        v = getattr(self, "version", None) or self.request("GET", "/version").data
        return f"{v.get('major', '1')}.{str(v.get('minor', '30')).rstrip('+')}"

    def patch(self, kind: str, name: str, namespace: str | None, patch: Any, *, patch_type: str = "merge",
              dry_run: bool = False, field_manager: str = FIELD_MANAGER, api_version: str | None = None) -> Obj:
        """Patch one object (merge, strategic or json); returns the server's result."""
        path = self.path_for(kind, name, namespace, api_version)
        return dict(self.request("PATCH", path, body=patch, content_type=PATCH_TYPES[patch_type],
                                 query={"fieldManager": field_manager, "dryRun": "All" if dry_run else None}).data)

    def patch_configmap_key(self, name: str, namespace: str, key: str, value: str, *, dry_run: bool = False,
                            field_manager: str = FIELD_MANAGER) -> ConfigMapChange:
        """Set one key of a ConfigMap; no request is made (and "no change" noted) when it already holds
        ``value``. Guarded by the resourceVersion read, so a concurrent edit is a KubeConflict."""
        cm = self.get("ConfigMap", name, namespace)
        before = (cm.get("data") or {}).get(key)
        diff = text_diff(before or "", value, f"configmap {namespace}/{name} [{key}]")
        if before == value:
            self.recorder.note(f"no change: configmap {namespace}/{name} key {key} already holds the value")
            return ConfigMapChange(name, namespace, key, before, value, False, dry_run, "")
        patch = {"metadata": {"resourceVersion": cm["metadata"]["resourceVersion"]}, "data": {key: value}}
        self.request("PATCH", self.path_for("ConfigMap", name, namespace), body=patch,
                     content_type=PATCH_TYPES["merge"],
                     query={"fieldManager": field_manager, "dryRun": "All" if dry_run else None})
        return ConfigMapChange(name, namespace, key, before, value, True, dry_run, diff)

    def create(self, manifest: Obj, *, dry_run: bool = False, field_manager: str = FIELD_MANAGER) -> Obj:
        rt = self.resource(manifest["kind"], manifest.get("apiVersion"))
        ns = (manifest.get("metadata") or {}).get("namespace") or self.target.namespace
        return dict(self.request("POST", rt.base(ns if rt.namespaced else None), body=manifest,
                                 query={"fieldManager": field_manager,
                                        "dryRun": "All" if dry_run else None}).data)

    def delete(self, kind: str, name: str, namespace: str | None = None, *, dry_run: bool = False,
               missing_ok: bool = True, api_version: str | None = None) -> bool:
        """Delete one object; False when it was already gone (and ``missing_ok``)."""
        try:
            self.request("DELETE", self.path_for(kind, name, namespace, api_version),
                         query={"dryRun": "All" if dry_run else None})
        except KubeNotFound:
            if not missing_ok:
                raise
            return False
        return True

    def delete_by_run_label(self, run_id: str, *, kinds: list[str] | None = None,
                            namespace: str | None = None) -> list[str]:
        """Delete what one run created: objects labelled runbooks.io/run=<run id>, nothing else.
        Each object's label is re-checked before its delete. Returns "Kind ns/name" of each deleted."""
        label = run_id_label(run_id)
        if not label:
            raise KubeError("refusing cleanup without a run id")
        deleted = []
        for kind in kinds or TRIAL_KINDS:
            for obj in self.list_objects(kind, namespace, label_selector=f"{RUN_LABEL}={label}"):
                meta = obj["metadata"]
                if (meta.get("labels") or {}).get(RUN_LABEL) != label:
                    raise KubeError(f"the server returned {kind} {meta.get('name')} without the run label: "
                                    "refusing to delete by selector")
                if self.delete(kind, meta["name"], meta.get("namespace")):
                    deleted.append(f"{kind} {meta.get('namespace', '') + '/' if meta.get('namespace') else ''}"
                                   f"{meta['name']}")
        self.recorder.note(f"cleanup of run {label}: deleted {len(deleted)} object(s)")
        return deleted
