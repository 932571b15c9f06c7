"""Plan and apply a set of desired objects, the way changes/ does hosts.

    p = plan.plan(kc, objs, prune_selector="app.kubernetes.io/part-of=metrics")  # validates offline first
    p.record(run)                       # one check per object: pass (no change), drift, fail; warn per Warning
    if run.params.mode == "apply":
        p = plan.apply(kc, p, confirmed=run.params.confirmed, prune=True)

Plan: every object is validated offline before any request (built-in kinds with kubernetes-validate
for the server's version, custom resources against their CRD's openAPIV3Schema from the set or the
cluster); then, in dependency order, each is server-side applied with ``dryRun=All`` and the
result diffed against the live object: one :class:`ObjectChange` each (create / update with the
changed fields / unchanged / conflict naming the other field manager and its fields, with the diff
a forced apply would make, from a second dry run with ``force=true``). Objects in a Namespace, or
of a CRD, that the set itself creates are planned "create" without a dry run. Live objects matching
the prune selector that the set no longer holds are "prune" candidates.

Force: ``plan(..., force=True)`` marks conflicts as a decision to take those fields over (a drift
check naming the manager, not a failure); :func:`apply` sends ``force=true`` only for such a plan AND a
confirmed run, records each forced apply as a note, and keeps "forced: ..." in the change's note.
Without confirm the conflict stays, withheld.

Apply: server-side apply with one field manager ("runbooks") of what changed, in order; after a CRD, wait (watch) for Established and re-read discovery. Unchanged objects get no
request, so a second apply reports no changes. Prune deletes only with ``prune=True`` and a
confirmed run, in reverse order. The server's ``Warning`` headers are kept on each change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import KubeConflict, KubeError, KubeInvalid, KubeNotFound, ManifestInvalid
from .manifests import Validation, crd_key, validate_custom, validate_set
from .objects import ObjectChange, crd_kinds, field_diff, order, prune_order, ref_of
from .paths import BUILTIN, ResourceType
from .verify import established, wait
from .write import FIELD_MANAGER, WriteOps

Obj = dict[str, Any]
APPLY = "application/apply-patch+yaml"
# a warn-text ends at a quote followed by the next warning or the end (lenient to unescaped inner quotes)
_WARNING = re.compile(r'(\d{3}) +\S+ +"(.*?)"(?=\s*(?:,\s*\d{3} |$))')


def parse_warnings(header: str | None) -> list[str]:
    """Messages of an HTTP ``Warning`` header (RFC 7234: ``299 - "text"``, comma-separated)."""
    if not header:
        return []
    return [m.group(2).replace('\\"', '"').replace("\\\\", "\\") for m in _WARNING.finditer(header)]


def conflict_detail(exc: KubeConflict) -> str:
    """Which manager owns which fields, from the 409's details.causes."""
    causes = (exc.status.get("details") or {}).get("causes") or []
    by_manager: dict[str, list[str]] = {}
    for c in causes:
        by_manager.setdefault(str(c.get("message", "conflict")), []).append(str(c.get("field", "?")))
    if not by_manager:
        return str(exc)
    return "; ".join(f"{who}: {', '.join(fields)}" for who, fields in by_manager.items())


@dataclass
class Plan:
    """One change per desired object (in apply order), plus prune candidates."""

    changes: list[ObjectChange]
    validations: list[Validation] = field(default_factory=list)
    kubernetes_version: str = ""
    prune_selector: str | None = None
    force: bool = False  # conflicts are to be taken over (by apply, only when confirmed)

    @property
    def pending(self) -> list[ObjectChange]:
        return [c for c in self.changes if (c.changed or (self.force and c.action == "conflict")) and not c.applied]

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for c in self.changes:
            counts[c.action] = counts.get(c.action, 0) + 1
        return ", ".join(f"{n} {a}" for a, n in sorted(counts.items())) or "no objects"

    def checks(self) -> list[tuple[str, str, str, str]]:
        """(check, host, status, detail) per object, and a warn check per server Warning."""
        out = []
        for c in self.changes:
            if c.action == "error" or (c.action == "conflict" and not self.force):
                status = "fail"
            elif c.applied or c.action == "unchanged":
                status = "changed" if c.applied else "pass"
            else:
                status = "drift"
            detail = c.describe() if c.action != "unchanged" else "no change"
            out.append((f"object {c.ref}", c.ref.namespace or "cluster", status, detail))
            out += [(f"server warning for {c.ref}", c.ref.namespace or "cluster", "warn", w) for w in c.warnings]
        return out

    def record(self, run: Any) -> None:
        for check in self.checks():
            run.check(*check)


def _resource(kc: WriteOps, obj: Obj, set_crds: dict[tuple[str, str], Obj]) -> ResourceType:
    kind, api_version = str(obj["kind"]), str(obj["apiVersion"])
    rt = BUILTIN.get(kind)
    if rt is not None and rt.api_version == api_version:
        return rt
    group, _, version = api_version.rpartition("/")
    crd = set_crds.get((group, kind))
    if crd is not None:
        spec = crd["spec"]
        return ResourceType(group, version, spec["names"]["plural"], kind, spec.get("scope") == "Namespaced")
    return kc.resource(kind, api_version)


def _path(kc: WriteOps, obj: Obj, rt: ResourceType) -> str:
    meta = obj.get("metadata") or {}
    ns = (meta.get("namespace") or kc.target.namespace) if rt.namespaced else None
    return rt.path(meta["name"], ns)


def validate(kc: WriteOps, desired: list[Obj]) -> list[Validation]:
    """Offline validation of the whole set (no request); then custom resources whose CRD is not in the
    set are validated against the cluster's CRD (one list request). ManifestInvalid before anything else."""
    version = kc._version_for_validation()
    set_crds = crd_kinds(desired)
    results = validate_set(desired, version, set_crds)
    skipped = [i for i, r in enumerate(results) if r.outcome == "skipped"]
    if skipped:
        live_crds = {crd_key(c): c for c in kc.list_objects("CustomResourceDefinition")}
        bad = []
        for i in skipped:
            obj = desired[i]
            crd = live_crds.get((str(obj["apiVersion"]).rpartition("/")[0], str(obj["kind"])))
            if crd is None:
                bad.append(f"{results[i].ref}: no CRD for {obj['apiVersion']}/{obj['kind']} in the set or the cluster")
                continue
            results[i] = validate_custom(obj, crd)
            if results[i].outcome == "invalid":
                bad.append(f"{results[i].ref}: {results[i].detail}")
        if bad:
            raise ManifestInvalid(bad)
    return results


def plan(kc: WriteOps, desired: list[Obj], *, prune_selector: str | None = None,
         prune_kinds: list[str] | None = None, field_validation: str = "Strict", force: bool = False) -> Plan:
    """Validate, then dry-run server-side apply and diff each object (see the module docstring).
    ``prune_kinds`` adds built-in kinds to look for prune candidates in (the set's own kinds always);
    ``force`` plans conflicts as fields to take over (see Force above)."""
    validations = validate(kc, desired)
    set_crds = crd_kinds(desired)
    ordered = order(desired)
    pending_ns: set[str] = set()
    pending_crds: set[tuple[str, str]] = set()
    changes = []
    for obj in ordered:
        ref = ref_of(obj)
        rt = _resource_or_none(kc, obj, set_crds)
        group = ref.group
        if obj["kind"] == "CustomResourceDefinition" and not _is_established(kc.get_or_none(
                "CustomResourceDefinition", ref.name)):
            pending_crds.add(crd_key(obj))
        if (group, ref.kind) in pending_crds:
            changes.append(ObjectChange(ref, "create", note="its CRD is created by this plan: no dry run",
                                        desired=obj))
            continue
        if rt is None:
            changes.append(ObjectChange(ref, "error", note=f"the server does not serve {obj['apiVersion']} "
                                                           f"{ref.kind}", desired=obj))
            continue
        ns = (obj["metadata"].get("namespace") or kc.target.namespace) if rt.namespaced else None
        if ns and not obj["metadata"].get("namespace"):  # the context's namespace, made explicit
            obj = {**obj, "metadata": {**obj["metadata"], "namespace": ns}}
            ref = ref_of(obj)
        if ns in pending_ns:
            changes.append(ObjectChange(ref, "create", note=f"namespace {ns} is created by this plan: no dry run",
                                        desired=obj))
            continue
        change = _dry_run(kc, obj, rt, field_validation)
        if obj["kind"] == "Namespace" and change.action == "create":
            pending_ns.add(ref.name)
        changes.append(change)
    if prune_selector:
        changes += _prune_candidates(kc, [c.desired for c in changes], prune_selector, prune_kinds or [])
    return Plan(changes, validations, kc._version_for_validation(), prune_selector, force)


def _resource_or_none(kc: WriteOps, obj: Obj, set_crds: dict[tuple[str, str], Obj]) -> ResourceType | None:
    try:
        return _resource(kc, obj, set_crds)
    except (KubeError, KubeNotFound):
        return None


def _is_established(crd: Obj | None) -> bool:
    return crd is not None and any(c.get("type") == "Established" and c.get("status") == "True"
                                   for c in (crd.get("status") or {}).get("conditions") or [])


def _ssa(kc: WriteOps, obj: Obj, rt: ResourceType, dry_run: bool,
         field_validation: str = "Strict", force: bool = False) -> tuple[Obj, list[str]]:
    resp = kc.request("PATCH", _path(kc, obj, rt), body=obj, content_type=APPLY,
                      query={"fieldManager": FIELD_MANAGER, "fieldValidation": field_validation,
                             "dryRun": "All" if dry_run else None, "force": "true" if force else None})
    return dict(resp.data), parse_warnings(resp.headers.get("Warning"))


def _dry_run(kc: WriteOps, obj: Obj, rt: ResourceType, field_validation: str = "Strict") -> ObjectChange:
    ref = ref_of(obj)
    live = kc.request("GET", _path(kc, obj, rt), ok=(404,))
    before = live.data if live.status == 200 else None
    try:
        after, warnings = _ssa(kc, obj, rt, dry_run=True, field_validation=field_validation)
    except KubeConflict as exc:  # what taking the fields over would change: a forced dry run (writes nothing)
        forced, _ = _ssa(kc, obj, rt, dry_run=True, field_validation=field_validation, force=True)
        return ObjectChange(ref, "conflict", field_diff(before, forced),
                            note=f"fields owned by another field manager: {conflict_detail(exc)}", object=forced,
                            desired=obj)
    except KubeInvalid as exc:
        return ObjectChange(ref, "error", note=f"refused by the server: {exc}", desired=obj)
    for w in warnings:
        kc.recorder.note(f"server warning for {ref}: {w}", target=kc.target.name)
    if before is None:
        return ObjectChange(ref, "create", field_diff(None, after), warnings, object=after, desired=obj)
    fields = field_diff(before, after)
    return ObjectChange(ref, "update" if fields else "unchanged", fields, warnings, object=after, desired=obj)


def _prune_candidates(kc: WriteOps, desired: list[Obj], selector: str, extra_kinds: list[str]) -> list[ObjectChange]:
    wanted = {(ref_of(o).kind, ref_of(o).namespace, ref_of(o).name) for o in desired}
    kinds = {(str(o["kind"]), str(o["apiVersion"])) for o in desired if o["kind"] in BUILTIN}
    kinds |= {(k, BUILTIN[k].api_version) for k in extra_kinds}
    found = []
    for kind, api_version in sorted(kinds):
        for live in kc.list_objects(kind, None, label_selector=selector, api_version=api_version):
            r = ref_of(live)
            if (r.kind, r.namespace, r.name) not in wanted:
                found.append(live)
    return [ObjectChange(ref_of(o), "prune", note=f"matches {selector} but is no longer desired", object=o)
            for o in prune_order(found)]


def apply(kc: WriteOps, p: Plan, *, confirmed: bool = False, prune: bool = False,
          crd_timeout: float = 60.0) -> Plan:
    """Apply the plan's changes in order (see the module docstring); returns the plan, updated."""
    set_crds = crd_kinds([c.desired for c in p.changes if c.desired])
    for change in p.changes:
        force = change.action == "conflict" and p.force
        if force and not confirmed:
            change.note += " (withheld: taking the fields over needs apply with confirm)"
        if change.action not in ("create", "update") and not (force and confirmed):
            continue
        obj = change.desired
        try:
            rt = _resource(kc, obj, set_crds)
            after, warnings = _ssa(kc, obj, rt, dry_run=False, force=force)
        except KubeConflict as exc:
            change.action, change.note = "conflict", f"fields owned by another field manager: {conflict_detail(exc)}"
            continue
        except KubeError as exc:
            change.action, change.note = "error", f"apply failed: {exc}"
            continue
        change.object, change.applied = after, True
        if force:
            change.action, change.note = "update", f"forced: {change.note}"
            kc.recorder.note(f"forced server-side apply of {change.ref} ({FIELD_MANAGER} took the fields over): "
                             f"{change.note}", target=kc.target.name)
        change.warnings += [w for w in warnings if w not in change.warnings]
        if obj["kind"] == "CustomResourceDefinition":
            result = wait(kc, established(change.ref.name), crd_timeout)
            kc._discovered.clear()  # new kinds: read discovery again (as Helm resets its RESTMapper)
            if not result.ok:
                change.note = f"applied, but {result.what} did not happen: {result.last}"
    prunes = [c for c in p.changes if c.action == "prune"]
    for change in prunes:
        if not (prune and confirmed):
            change.note += " (withheld: deleting needs apply with prune and confirm)"
            continue
        if kc.delete(change.ref.kind, change.ref.name, change.ref.namespace, api_version=change.ref.api_version):
            change.applied = True
    return p
