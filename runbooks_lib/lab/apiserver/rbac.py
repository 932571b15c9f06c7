"""RBAC for the lab's users: Roles/ClusterRoles bound by RoleBindings/ClusterRoleBindings, evaluated
per request, and SelfSubjectAccessReview / SubjectAccessReview answered from the same rules.

https://kubernetes.io/docs/reference/access-authn-authz/rbac/
https://kubernetes.io/docs/reference/access-authn-authz/authorization/#checking-api-access
"""

from __future__ import annotations

from typing import Any

from runbooks_lib.kube.paths import BUILTIN, ResourceType

from .errors import ApiError, Obj
from .wire import ADMIN_USER, VIEWER_USER

ACCESS_REVIEWS = [ResourceType("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False),
                  ResourceType("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", False)]
_RBAC = "rbac.authorization.k8s.io"
#: what every authenticated user may do (system:basic-user, system:discovery)
_ALWAYS = {("create", "authorization.k8s.io", "selfsubjectaccessreviews"),
           ("create", "authorization.k8s.io", "selfsubjectrulesreviews")}


def groups_of(user: str) -> list[str]:
    """The lab's users: kubeadm's admin (system:masters, via its certificate) and the viewer."""
    return ["system:masters", "system:authenticated"] if user == ADMIN_USER else ["system:authenticated"]


def seed_objects() -> list[Obj]:
    """ClusterRole + ClusterRoleBinding giving ``runbooks-viewer`` get/list/watch on everything but Secrets."""
    by_group: dict[str, list[str]] = {}
    for rt in BUILTIN.values():
        if rt.plural != "secrets":
            by_group.setdefault(rt.group, []).append(rt.plural)
    rules = [{"apiGroups": [g], "resources": sorted(p), "verbs": ["get", "list", "watch"]}
             for g, p in sorted(by_group.items())]
    rules.append({"apiGroups": ["metrics.k8s.io"], "resources": ["nodes", "pods"], "verbs": ["get", "list"]})
    meta = {"name": VIEWER_USER, "labels": {"app.kubernetes.io/part-of": "runbooks-lab"}}
    return [{"apiVersion": f"{_RBAC}/v1", "kind": "ClusterRole", "metadata": dict(meta), "rules": rules},
            {"apiVersion": f"{_RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": dict(meta),
             "roleRef": {"apiGroup": _RBAC, "kind": "ClusterRole", "name": VIEWER_USER},
             "subjects": [{"apiGroup": _RBAC, "kind": "User", "name": VIEWER_USER}]}]


def _bound(binding: Obj, user: str, groups: list[str]) -> bool:
    for s in binding.get("subjects") or []:
        if s.get("kind") == "User" and s.get("name") == user:
            return True
        if s.get("kind") == "Group" and s.get("name") in groups:
            return True
    return False


def _rule_allows(rule: Obj, verb: str, group: str, resource: str, name: str) -> bool:
    def has(key: str, value: str) -> bool:
        vals = rule.get(key) or []
        return "*" in vals or value in vals
    if not (has("verbs", verb) and has("apiGroups", group) and has("resources", resource)):
        return False
    names = rule.get("resourceNames") or []
    return not names or name in names


def allowed(store: Any, user: str, groups: list[str], verb: str, group: str, resource: str,
            namespace: str, name: str = "") -> tuple[bool, str]:
    """(allowed, reason) as the RBAC authorizer decides."""
    if "system:masters" in groups:
        return True, ""
    if (verb, group, resource) in _ALWAYS:
        return True, "allowed for every authenticated user"
    rb = {k: BUILTIN[k] for k in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")}
    bindings: list[tuple[Obj, str | None]] = [(b, None) for b in store.list(rb["ClusterRoleBinding"], None)]
    if namespace:
        bindings += [(b, namespace) for b in store.list(rb["RoleBinding"], namespace)]
    for binding, ns in bindings:
        if not _bound(binding, user, groups):
            continue
        ref = binding.get("roleRef") or {}
        role = (store.find(rb["Role"], ns, ref.get("name", "")) if ref.get("kind") == "Role" and ns
                else store.find(rb["ClusterRole"], None, ref.get("name", "")))
        for rule in (role or {}).get("rules") or []:
            if _rule_allows(rule, verb, group, resource, name):
                where = f'RoleBinding "{binding["metadata"]["name"]}" of {ref.get("kind")} "{ref.get("name")}" to ' \
                        if ns else f'ClusterRoleBinding "{binding["metadata"]["name"]}" of ClusterRole "{ref.get("name")}" to '
                return True, f"RBAC: allowed by {where}User \"{user}\""
    return False, ""


def authorize(store: Any, user: str, verb: str, rt: ResourceType, parsed: Any) -> None:
    """403 as kube-apiserver words it when RBAC does not allow the request."""
    verb = "patch" if verb == "apply" else verb
    resource = rt.plural + (f"/{parsed.sub}" if parsed.sub else "")
    ok, _why = allowed(store, user, groups_of(user), verb, rt.group, resource, parsed.namespace or "", parsed.name or "")
    if ok:
        return
    what = f'{rt.plural}{"." + rt.group if rt.group else ""}'
    subject = f'{what} "{parsed.name}"' if parsed.name else what
    scope = f'in the namespace "{parsed.namespace}"' if parsed.namespace else "at the cluster scope"
    raise ApiError(403, "Forbidden", f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
                                     f'in API group "{rt.group}" {scope}',
                   {"name": parsed.name or "", "group": rt.group, "kind": rt.plural})


def review(store: Any, user: str, rt: ResourceType, body: Obj) -> Obj:
    """Answer a SelfSubjectAccessReview (about the caller) or SubjectAccessReview (about spec.user)."""
    spec = body.get("spec") or {}
    attrs = spec.get("resourceAttributes")
    if not isinstance(attrs, dict):
        raise ApiError(422, "Invalid", f'{rt.kind}.authorization.k8s.io "" is invalid: spec.resourceAttributes: '
                                       "Invalid value: null: exactly one of nonResourceAttributes or "
                                       "resourceAttributes must be specified")
    if rt.plural == "subjectaccessreviews":
        subject, groups = spec.get("user", ""), list(spec.get("groups") or [])
        if not subject and not groups:
            raise ApiError(422, "Invalid", 'SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: '
                                           "Invalid value: \"\": at least one of user or group must be specified")
    else:
        subject, groups = user, groups_of(user)
    resource = attrs.get("resource", "") + (f"/{attrs['subresource']}" if attrs.get("subresource") else "")
    ok, why = allowed(store, subject, groups, attrs.get("verb", ""), attrs.get("group", ""), resource,
                      attrs.get("namespace", ""), attrs.get("name", ""))
    status: Obj = {"allowed": ok}
    if why:
        status["reason"] = why
    return {"apiVersion": "authorization.k8s.io/v1", "kind": rt.kind, "metadata": {"creationTimestamp": None},
            "spec": spec, "status": status}
