"""Non-resource paths (/readyz, /livez, /version), discovery (/api, /apis, group versions) and the
metrics.k8s.io API served while its APIService is Available."""

from __future__ import annotations

from typing import Any

from runbooks_lib.kube.paths import BUILTIN, ResourceType

from . import names, openapi
from .seed import control_plane_ip
from .store import ApiError, Obj, now_rfc3339
from .wire import HandlerBase

#: groups whose resources are kube-apiserver's own (CRDs' groups get no built-in short names)
BUILT_IN_GROUPS = {"", "apps", "batch", "policy", "autoscaling", "storage.k8s.io", "certificates.k8s.io",
                   "apiextensions.k8s.io", "apiregistration.k8s.io", "rbac.authorization.k8s.io",
                   "discovery.k8s.io", "authorization.k8s.io", "networking.k8s.io"}
METRICS = [ResourceType("metrics.k8s.io", "v1beta1", "nodes", "NodeMetrics", False),
           ResourceType("metrics.k8s.io", "v1beta1", "pods", "PodMetrics", True)]
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


class DiscoveryMixin(HandlerBase):
    def _non_resource(self, method: str, path: str, query: str, user: str | None) -> int | None:
        """Answer /readyz, /livez, /healthz, /version, /api, /apis; None for anything else."""
        d = self.double
        if path in ("/readyz", "/livez", "/healthz"):
            checks = ["ping", "log", "etcd", "etcd-readiness", "informer-sync", "poststarthook/start-apiserver-admission-initializer",
                      "poststarthook/generic-apiserver-start-informers", "poststarthook/apiservice-registration-controller",
                      "poststarthook/apiservice-status-available-controller"]
            text = "".join(f"[+]{c} ok\n" for c in checks) + f"{path.strip('/')} check passed\n" \
                if "verbose" in query else "ok"
            self._send(200, text, "text/plain; charset=utf-8")
            return 200
        if path == "/version":
            major, minor = d.version.lstrip("v").split(".")[:2]
            self._send(200, {"major": major, "minor": minor, "gitVersion": d.version,
                             "gitCommit": "9f2d4b6a1c0e8f7d3b5a4c2e1f0d9b8a7c6e5d4f", "gitTreeState": "clean",
                             "buildDate": "2024-08-14T19:14:23Z", "goVersion": "go1.22.5", "compiler": "gc",
                             "platform": "linux/amd64"})
            return 200
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        if path == "/api":
            self._send(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{control_plane_ip(d.nodes)}:6443"}]})
            return 200
        types = self.served_types()
        if path.startswith("/openapi/"):
            return self._openapi(path, types)
        if path == "/apis":
            self._send(200, {"kind": "APIGroupList", "apiVersion": "v1",
                             "groups": [self._group(g, types) for g in sorted({t.group for t in types if t.group})]})
            return 200
        return None

    def _openapi(self, path: str, types: list[ResourceType]) -> int:
        """/openapi/v2 (JSON; protobuf-only callers get 406), /openapi/v3 and its group-versions."""
        version = self.double.version
        if path == "/openapi/v2":
            accept = self.headers.get("Accept", "")
            if accept and "json" not in accept and "*/*" not in accept:
                raise ApiError(406, "NotAcceptable", f"only application/json is served by the lab, not {accept}")
            self._send(200, openapi.v2(version))
            return 200
        gvs = sorted({(t.group, t.version) for t in types if t.group != "metrics.k8s.io"})
        if path == "/openapi/v3":
            self._send(200, openapi.v3_index({gv: self._v3_doc(gv, types)[1] for gv in gvs}))
            return 200
        gv = openapi.v3_path(path)
        if gv is None or gv not in gvs:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        self._send(200, self._v3_doc(gv, types)[0])
        return 200

    def _v3_doc(self, gv: tuple[str, str], types: list[ResourceType]) -> tuple[bytes, str]:
        version = self.double.version
        if gv[0] in BUILT_IN_GROUPS:
            return openapi.v3_doc(version, *gv, openapi.resources_of(types, *gv))
        crds = [self._crd(t) for t in types if (t.group, t.version) == gv]
        return openapi.crd_doc(version, *gv, [c for c in crds if c])

    def _crd(self, rt: ResourceType) -> Obj:
        with self.double.store.lock:
            return self.double.store.find(BUILTIN["CustomResourceDefinition"], None, f"{rt.plural}.{rt.group}") or {}

    def served_types(self) -> list[ResourceType]:
        return list(self.double.store.types.values()) + (METRICS if self._metrics_available() else [])

    @staticmethod
    def _group(group: str, types: list[ResourceType]) -> Obj:
        versions = sorted({t.version for t in types if t.group == group}, reverse=True)
        gv = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": gv, "preferredVersion": gv[0]}

    def _discovery(self, parsed: Any, types: list[ResourceType]) -> int:
        if parsed.version is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        mine = [t for t in types if t.group == parsed.group and t.version == parsed.version]
        if not mine:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        resources = []
        st = self.double.store
        for t in mine:
            verbs = ["get", "list"] if t.group == "metrics.k8s.io" else (
                ["create"] if t.group == "authorization.k8s.io" else VERBS)
            entry: Obj = {"name": t.plural, "singularName": t.kind.lower(), "namespaced": t.namespaced,
                          "kind": t.kind, "verbs": verbs}
            if t.group in BUILT_IN_GROUPS:
                entry.update({k: v for k, v in (("shortNames", names.SHORT_NAMES.get(t.plural)),
                                                ("categories", names.CATEGORIES.get(t.plural))) if v})
            else:  # a CRD's own names (``kubectl get bd`` for blockdevices.openebs.io)
                crd_names = (self._crd(t).get("spec") or {}).get("names") or {}
                entry.update({k: crd_names[k] for k in ("shortNames", "categories") if crd_names.get(k)})
            resources.append(entry)
            subs = list(names.SUBRESOURCES.get(t.plural, []))
            if st.has_status(t):
                subs.append(("status", t.kind, ["get", "patch", "update"]))
            for sub, kind, sverbs in subs:
                resources.append({"name": f"{t.plural}/{sub}", "singularName": "", "namespaced": t.namespaced,
                                  "kind": kind, "verbs": sverbs,
                                  **({"group": "autoscaling", "version": "v1"} if sub == "scale" else
                                     {"group": "policy", "version": "v1"} if sub == "eviction" else {})})
        gv = f"{parsed.group}/{parsed.version}" if parsed.group else parsed.version
        self._send(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
        return 200

    def _metrics_available(self) -> bool:
        with self.double.store.lock:
            svc = self.double.store.find(BUILTIN["APIService"], None, "v1beta1.metrics.k8s.io")
        return svc is not None and any(c.get("type") == "Available" and c.get("status") == "True"
                                       for c in (svc.get("status") or {}).get("conditions") or [])

    def _metrics(self, parsed: Any, method: str) -> int:
        if not self._metrics_available():
            raise ApiError(503, "ServiceUnavailable", "the server is currently unable to handle the request")
        if method != "GET":
            raise ApiError(405, "MethodNotAllowed", "metrics are read-only")
        st = self.double.store
        ts = now_rfc3339()
        items: list[Obj]
        with st.lock:
            if parsed.plural == "nodes":
                items = [{"metadata": {"name": n["metadata"]["name"], "labels": n["metadata"].get("labels", {})},
                          "timestamp": ts, "window": "20.05s",
                          "usage": {"cpu": f"{180 + 40 * i}m", "memory": f"{1843200 + 204800 * i}Ki"}}
                         for i, n in enumerate(st.list(BUILTIN["Node"], None))]
                kind = "NodeMetrics"
            else:
                items = [{"metadata": {"name": p["metadata"]["name"], "namespace": p["metadata"]["namespace"],
                                       "labels": p["metadata"].get("labels", {})},
                          "timestamp": ts, "window": "18.2s",
                          "containers": [{"name": c.get("name"), "usage": {"cpu": "3m", "memory": "21504Ki"}}
                                         for c in p["spec"].get("containers", [])]}
                         for p in st.list(BUILTIN["Pod"], parsed.namespace)
                         if (p.get("status") or {}).get("phase") == "Running"]
                kind = "PodMetrics"
        for item in items:
            item.update(kind=kind, apiVersion="metrics.k8s.io/v1beta1")
        if parsed.name:
            found = [i for i in items if i["metadata"]["name"] == parsed.name]
            if not found:
                raise ApiError(404, "NotFound", f'{parsed.plural}.metrics.k8s.io "{parsed.name}" not found')
            self._send(200, found[0])
        else:
            self._send(200, {"kind": f"{kind}List", "apiVersion": "metrics.k8s.io/v1beta1",
                             "metadata": {}, "items": items})
        return 200
