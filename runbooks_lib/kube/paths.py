"""API paths: which resource, namespace, name and subresource a request addresses, and its verb.

Shared by the client's evidence hook and the API double, so both read a path the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class ResourceType:
    """A served resource: group/version, plural, kind, and whether it lives in a namespace."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def base(self, namespace: str | None = None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{root}/namespaces/{namespace}/{self.plural}"
        return f"{root}/{self.plural}"

    def path(self, name: str | None = None, namespace: str | None = None, sub: str | None = None) -> str:
        out = self.base(namespace)
        if name:
            out += f"/{name}"
            if sub:
                out += f"/{sub}"
        return out


#: kinds the chapters use, so a helper call needs no discovery request (others are discovered)
BUILTIN: dict[str, ResourceType] = {
    r.kind: r
    for r in [
        ResourceType("", "v1", "namespaces", "Namespace", False),
        ResourceType("", "v1", "nodes", "Node", False),
        ResourceType("", "v1", "pods", "Pod", True),
        ResourceType("", "v1", "services", "Service", True),
        ResourceType("", "v1", "endpoints", "Endpoints", True),
        ResourceType("", "v1", "configmaps", "ConfigMap", True),
        ResourceType("", "v1", "secrets", "Secret", True),
        ResourceType("", "v1", "serviceaccounts", "ServiceAccount", True),
        ResourceType("", "v1", "events", "Event", True),
        ResourceType("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True),
        ResourceType("", "v1", "persistentvolumes", "PersistentVolume", False),
        ResourceType("apps", "v1", "daemonsets", "DaemonSet", True),
        ResourceType("apps", "v1", "deployments", "Deployment", True),
        ResourceType("apps", "v1", "replicasets", "ReplicaSet", True),
        ResourceType("apps", "v1", "statefulsets", "StatefulSet", True),
        ResourceType("batch", "v1", "jobs", "Job", True),
        ResourceType("storage.k8s.io", "v1", "storageclasses", "StorageClass", False),
        ResourceType("apiregistration.k8s.io", "v1", "apiservices", "APIService", False),
        ResourceType("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
        ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
        ResourceType("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
        ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
        ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
        ResourceType("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True),
        ResourceType("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True),
        ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False),
    ]
}


@dataclass(frozen=True)
class ApiPath:
    """What a request path addresses. ``plural`` is None for non-resource paths (/version, /readyz)."""

    path: str
    group: str | None = None
    version: str | None = None
    plural: str | None = None
    namespace: str | None = None
    name: str | None = None
    sub: str | None = None

    @property
    def is_resource(self) -> bool:
        return self.plural is not None


def parse_path(path: str, namespaced: dict[tuple[str, str], bool] | None = None) -> ApiPath:
    """Split an API path. ``namespaced`` maps (group, plural) to scope for the ambiguous case
    ``/api/v1/namespaces/NAME/PLURAL``; without it the namespaced reading is taken."""
    parts = [p for p in path.split("?")[0].split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return ApiPath(path)
    if not rest:
        return ApiPath(path, group, version)
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        scoped = (namespaced or {}).get((group, rest[2]), True)
        if scoped:
            namespace, rest = rest[1], rest[2:]
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else None
    sub = "/".join(rest[2:]) or None
    return ApiPath(path, group, version, plural, namespace, name, sub)


def verb_for(method: str, path: str, query: str = "", content_type: str = "") -> str:
    """The Kubernetes verb of a request (get, list, watch, create, update, patch, apply, delete...)."""
    method = method.upper()
    parsed = parse_path(path)
    params = dict(parse_qsl(query))
    if not parsed.is_resource:
        return method.lower()
    if parsed.sub == "exec":
        return "create"  # pods/exec is authorised as create on the subresource
    if method == "GET":
        if params.get("watch") in ("true", "1"):
            return "watch"
        return "get" if parsed.name else "list"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "apply" if "apply-patch" in content_type else "patch"
    if method == "DELETE":
        return "delete" if parsed.name else "deletecollection"
    return method.lower()


def split_url(url: str) -> tuple[str, str]:
    """(path, query) of a full URL or a path."""
    parts = urlsplit(url)
    return parts.path or "/", parts.query
