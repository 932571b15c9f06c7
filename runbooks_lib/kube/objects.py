"""Kubernetes objects as desired state: references, field-level diffs, one ObjectChange per object,
and the order a real cluster needs them in.

Ordering follows Helm's InstallOrder (pkg/releaseutil/kind_sorter.go) grouped in phases (research
A6): Namespaces, CRDs and *Class kinds; RBAC and config; Services and workloads; APIServices and
webhooks; then every kind not listed (custom resources), each CR after the CRD that defines it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

#: Helm 3's InstallOrder (kinds not listed go last, alphabetically)
INSTALL_ORDER = [
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
    "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
    "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList",
    "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList",
    "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
    "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
]
_PHASES: dict[str, int] = {
    **dict.fromkeys(["Namespace", "CustomResourceDefinition", "PriorityClass", "StorageClass", "IngressClass",
                     "RuntimeClass"], 0),
    **dict.fromkeys(["ResourceQuota", "LimitRange", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
                     "RoleBinding", "NetworkPolicy", "Secret", "ConfigMap", "PersistentVolume",
                     "PersistentVolumeClaim", "PodDisruptionBudget"], 1),
    **dict.fromkeys(["Service", "DaemonSet", "Deployment", "StatefulSet", "ReplicaSet", "Pod", "Job", "CronJob",
                     "HorizontalPodAutoscaler", "Ingress", "ReplicationController"], 2),
    **dict.fromkeys(["APIService", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"], 3),
}
PHASE_NAMES = ["namespaces, CRDs, classes", "RBAC and config", "services and workloads",
               "aggregation and admission", "custom resources"]
#: metadata the server owns: never part of a diff
SERVER_METADATA = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink",
                   "deletionTimestamp", "deletionGracePeriodSeconds")


@dataclass(frozen=True)
class ObjectRef:
    """apiVersion, kind, namespace (None for cluster-scoped) and name of one object."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


def ref_of(obj: Obj) -> ObjectRef:
    meta = obj.get("metadata") or {}
    return ObjectRef(str(obj.get("apiVersion", "")), str(obj.get("kind", "")), str(meta.get("name", "")),
                     meta.get("namespace") or None)


@dataclass(frozen=True)
class FieldChange:
    """One leaf that differs: ``before`` None means added, ``after`` None means removed."""

    path: str
    before: Any
    after: Any

    def __str__(self) -> str:
        if self.before is None:
            return f"+ {self.path}: {_short(self.after)}"
        if self.after is None:
            return f"- {self.path}: {_short(self.before)}"
        return f"~ {self.path}: {_short(self.before)} -> {_short(self.after)}"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 120 else text[:117] + "..."


@dataclass
class ObjectChange:
    """What plan (or apply) found for one object.

    action: "create", "update", "unchanged", "prune" (a labelled object no longer desired),
    "conflict" (another field manager owns fields this set changes) or "error".
    """

    ref: ObjectRef
    action: str
    fields: list[FieldChange] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    note: str = ""
    object: Obj = field(default_factory=dict, repr=False)
    applied: bool = False
    desired: Obj = field(default_factory=dict, repr=False)

    @property
    def changed(self) -> bool:
        return self.action in ("create", "update", "prune")

    def describe(self) -> str:
        """One line: action, ref, the changed fields (first few) and any note."""
        head = f"{self.action} {self.ref}"
        if self.action == "create":
            head += f" ({len(self.fields)} fields)" if self.fields else ""
        elif self.fields:
            shown = "; ".join(str(f) for f in self.fields[:6])
            more = f" (+{len(self.fields) - 6} more)" if len(self.fields) > 6 else ""
            head += f": {shown}{more}"
        return head + (f" — {self.note}" if self.note else "")


def normalized(obj: Obj | None) -> Obj:
    """``obj`` without status and server-owned metadata (the part a diff looks at)."""
    out = copy.deepcopy(obj or {})
    out.pop("status", None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for key in SERVER_METADATA:
            meta.pop(key, None)
        if not meta.get("annotations"):
            meta.pop("annotations", None)
        if not meta.get("labels"):
            meta.pop("labels", None)
    return out


def _leaves(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key in sorted(value):
            _leaves(value[key], f"{prefix}.{key}", out)
    elif isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
        for item in value:  # list-maps keyed by name (containers, env, ports, volumes...) as structured-merge-diff prints them
            _leaves({k: v for k, v in item.items() if k != "name"} or {}, f'{prefix}[name="{item["name"]}"]', out)
    elif isinstance(value, list) and value:
        for i, item in enumerate(value):
            _leaves(item, f"{prefix}[{i}]", out)
    else:
        out[prefix] = value


def field_diff(live: Obj | None, desired: Obj | None) -> list[FieldChange]:
    """Leaf-level differences between two objects, ignoring status and server-owned metadata.
    Secret values are never shown (only that they changed)."""
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    if live:
        _leaves(normalized(live), "", a)
    if desired:
        _leaves(normalized(desired), "", b)
    secret = (desired or live or {}).get("kind") == "Secret"
    out = []
    for path in sorted(set(a) | set(b)):
        before, after = a.get(path), b.get(path)
        if before == after:
            continue
        if secret and path.startswith((".data.", ".stringData.")):
            before, after = ("(hidden)" if before is not None else None), ("(hidden)" if after is not None else None)
        out.append(FieldChange(path, before, after))
    return out


def crd_kinds(objs: list[Obj]) -> dict[tuple[str, str], Obj]:
    """(group, kind) -> CRD, for the CRDs in a set."""
    out = {}
    for o in objs:
        if o.get("kind") == "CustomResourceDefinition":
            spec = o.get("spec") or {}
            out[(str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", "")))] = o
    return out


def phase_of(kind: str) -> int:
    return _PHASES.get(kind, 4)


def order(objs: list[Obj]) -> list[Obj]:
    """Objects in apply order: phase, then Helm's InstallOrder, then unlisted kinds alphabetically,
    then input order (stable). Custom resources always follow their CRD (both are in phase 0 / 4)."""
    index = {k: i for i, k in enumerate(INSTALL_ORDER)}

    def key(pair: tuple[int, Obj]) -> tuple[int, int, str, int]:
        pos, obj = pair
        kind = str(obj.get("kind", ""))
        listed = index.get(kind)
        return phase_of(kind), listed if listed is not None else len(index), "" if listed is not None else kind, pos

    return [o for _, o in sorted(enumerate(objs), key=key)]


def prune_order(objs: list[Obj]) -> list[Obj]:
    """Deletion order: webhooks first (so they cannot block removal), then the reverse of apply order."""
    hooks = {"ValidatingWebhookConfiguration": 0, "MutatingWebhookConfiguration": 1}
    rest = list(reversed(order([o for o in objs if o.get("kind") not in hooks])))
    return sorted([o for o in objs if o.get("kind") in hooks], key=lambda o: hooks[o["kind"]]) + rest
