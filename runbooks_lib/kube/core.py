"""The core every helper uses: one recorded request path, resource lookup, error translation.

Every HTTP call goes through :class:`RecordingApiClient` (a subclass of the kubernetes client's
ApiClient, overriding ``call_api``), which writes verb, path, status code, duration and object
kind/name to the run's recorder. Request and response bodies and headers are never recorded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import urllib3
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException

from ..evidence import Recorder, current, utc_now
from ..transport.base import TargetUnreachable
from .errors import (
    KubeApiError,
    KubeConflict,
    KubeError,
    KubeInvalid,
    KubeNotFound,
    KubeRefused,
)
from .paths import BUILTIN, ResourceType, parse_path, split_url, verb_for

#: the cluster name the lab's API server writes into its kubeconfig (runbooks_lib.lab.apiserver)
LAB_CLUSTER_NAME = "runbooks-api-double"


@dataclass(frozen=True)
class KubeTarget:
    """What a kubeconfig context points at (no credentials)."""

    kubeconfig: str
    context: str
    cluster: str
    server: str
    user: str
    namespace: str = "default"

    @property
    def is_double(self) -> bool:
        return self.cluster == LAB_CLUSTER_NAME

    @property
    def name(self) -> str:
        """The evidence target name."""
        return f"kube:{self.context}"


@dataclass
class Response:
    status: int
    data: Any  # dict for JSON, str otherwise
    headers: dict[str, str]


def _describe_body(data: bytes | None, content_type: str) -> dict[str, Any]:
    """kind/name/namespace/item count of a JSON response, and a Status message; never the body."""
    if not data or "json" not in (content_type or ""):
        return {}
    try:
        doc = json.loads(data)
    except ValueError:
        return {}
    if not isinstance(doc, dict):
        return {}
    out: dict[str, Any] = {}
    if doc.get("kind"):
        out["kind"] = doc["kind"]
    meta = doc.get("metadata") or {}
    if isinstance(meta, dict):
        if meta.get("name"):
            out["name"] = meta["name"]
        if meta.get("namespace"):
            out["namespace"] = meta["namespace"]
    if isinstance(doc.get("items"), list):
        out["items"] = len(doc["items"])
    if doc.get("kind") == "Status" and doc.get("message"):
        out["message"] = str(doc["message"])[:2000]
    return out


class RecordingApiClient(ApiClient):
    """ApiClient whose every call is written to the evidence recorder, and whose connection
    failures (refused, timed out, TLS) become :class:`TargetUnreachable` (exit 3)."""

    def __init__(self, configuration: Configuration, target: KubeTarget,
                 recorder: Callable[[], Recorder]) -> None:
        super().__init__(configuration)
        self.target = target
        self._recorder = recorder
        self.user_agent = "runbooks/kube"

    def call_api(self, method: str, url: str, header_params: dict[str, str] | None = None, body: Any = None,
                 post_params: Any = None, _request_timeout: Any = None) -> Any:
        path, query = split_url(url)
        ctype = (header_params or {}).get("Content-Type", "")
        verb = verb_for(method, path, query, ctype)
        parsed = parse_path(path)
        command = f"{verb} {path}" + (f"?{query}" if query else "")
        extra: dict[str, Any] = {"method": method, "verb": verb, "path": path, "query": query,
                                 "resource": parsed.plural, "namespace": parsed.namespace, "name": parsed.name,
                                 "dry_run": "dryRun=All" in query}
        started, t0 = utc_now(), time.monotonic()
        rec = self._recorder()

        def fail(status: str, reason: str) -> None:
            rec.record(kind="api", target=self.target.name, command=command, exit_code=None, stderr=reason,
                       duration_s=time.monotonic() - t0, started_utc=started, status=status, extra=extra)

        try:
            resp = super().call_api(method, url, header_params, body, post_params, _request_timeout)
        except ApiException as exc:  # the REST layer turns urllib3 SSLError into status 0
            reason = str(exc.reason or exc)
            if "SSL" in reason or "certificate" in reason.lower():
                fail("unreachable", reason)
                raise TargetUnreachable(self.target.name, _tls_reason(self.target, reason)) from exc
            fail("error", reason)
            raise
        except urllib3.exceptions.HTTPError as exc:
            reason = str(getattr(exc, "reason", None) or exc)
            if isinstance(getattr(exc, "reason", None), urllib3.exceptions.SSLError) or "CERTIFICATE" in reason:
                fail("unreachable", reason)
                raise TargetUnreachable(self.target.name, _tls_reason(self.target, reason)) from exc
            fail("unreachable", reason)
            raise TargetUnreachable(self.target.name, f"cannot reach the API server {self.target.server} "
                                                      f"(context {self.target.context}): {_short(reason)}") from exc
        resp.read()
        info = _describe_body(resp.data, resp.headers.get("Content-Type", ""))
        message = info.pop("message", "")
        extra.update({"status_code": resp.status, **{k: v for k, v in info.items() if v is not None}})
        if info.get("name"):
            extra["name"] = info["name"]
        rec.record(kind="api", target=self.target.name, command=command, exit_code=resp.status,
                   stderr=message if resp.status >= 400 else "", duration_s=time.monotonic() - t0,
                   started_utc=started, status="ok" if resp.status < 400 else "failed", extra=extra)
        return resp


def _short(reason: str) -> str:
    for marker in ("Connection refused", "timed out", "Name or service not known", "No route to host"):
        if marker.lower() in reason.lower():
            return marker.lower()
    return reason[-300:]


def _tls_reason(target: KubeTarget, reason: str) -> str:
    why = "the server certificate is not signed by the kubeconfig's CA" if "verify failed" in reason \
        else "TLS handshake failed"
    if "hostname" in reason.lower() or "IP address mismatch" in reason:
        why = "the server certificate does not name this address"
    return (f"TLS to {target.server} failed: {why} (cluster {target.cluster} in {target.kubeconfig}: check "
            f"certificate-authority-data / tls-server-name). {_short(reason)}")


class KubeCore:
    """Requests, resource lookup (built-in table, then discovery) and error translation."""

    def __init__(self, target: KubeTarget, api: RecordingApiClient, request_timeout: float = 30.0,
                 recorder: Recorder | None = None) -> None:
        self.target = target
        self.api = api
        self.request_timeout = request_timeout
        self._recorder = recorder
        self._discovered: dict[str, list[ResourceType]] = {}

    @property
    def recorder(self) -> Recorder:
        return self._recorder or current()

    # -- requests
    def request(self, method: str, path: str, *, query: dict[str, Any] | list[tuple[str, Any]] | None = None,
                body: Any = None, content_type: str | None = None, timeout: float | None = None,
                ok: tuple[int, ...] = ()) -> Response:
        """One API request; JSON decoded; errors raised as KubeApiError subclasses unless in ``ok``."""
        pairs = list(query.items()) if isinstance(query, dict) else list(query or [])
        pairs = [(k, v) for k, v in pairs if v is not None]
        headers = {"Accept": "application/json, */*"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        method_, url, headers, body_, post = self.api.param_serialize(
            method, path, query_params=pairs, header_params=headers, body=body, auth_settings=["BearerToken"])
        if pairs and "?" not in url:  # param_serialize ignores an empty-valued list; keep it explicit
            url += "?" + urlencode(pairs)
        resp = self.api.call_api(method_, url, headers, body_, post,
                                 _request_timeout=timeout or self.request_timeout)
        raw = resp.data or b""
        ctype = resp.headers.get("Content-Type", "")
        data: Any = raw.decode("utf-8", "replace")
        if "json" in ctype:
            try:
                data = json.loads(raw) if raw else {}
            except ValueError:
                pass
        if resp.status >= 400 and resp.status not in ok:
            raise self._error(method, path, content_type or "", resp.status, data, pairs)
        return Response(resp.status, data, dict(resp.headers))

    def _error(self, method: str, path: str, ctype: str, code: int, data: Any,
               query: list[tuple[str, Any]]) -> KubeApiError:
        parsed = parse_path(path)
        verb = verb_for(method, path, urlencode(query), ctype)
        status = data if isinstance(data, dict) else {}
        message = str(status.get("message") or (data if isinstance(data, str) else "") or f"HTTP {code}")
        resource = (parsed.plural or path) + (f"/{parsed.sub}" if parsed.sub else "")
        where = parsed.namespace or "the cluster scope"
        kw: dict[str, Any] = dict(code=code, reason=str(status.get("reason", "")), verb=verb, resource=resource,
                  namespace=parsed.namespace, name=parsed.name, status=status)
        if code == 401:
            return KubeRefused(f"{verb} {resource} in {where} refused: 401 Unauthorized: the API server did not "
                               f"accept the credentials of user {self.target.user} (context {self.target.context} "
                               f"in {self.target.kubeconfig}); expired certificate or token?", **kw)
        if code == 403:
            return KubeRefused(f"{verb} {resource} in {where} refused: {message}", **kw)
        if code == 404:
            return KubeNotFound(message, **kw)
        if code == 409:
            return KubeConflict(message, **kw)
        if code in (400, 422):
            return KubeInvalid(message, **kw)
        return KubeApiError(f"{verb} {resource} in {where} failed: {code} {message}", **kw)

    def get_json(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, query=query).data

    # -- resources
    def resource(self, kind: str, api_version: str | None = None) -> ResourceType:
        """The resource type for a kind (built-in table, else discovery of ``api_version``)."""
        rt = BUILTIN.get(kind)
        if rt is not None and (api_version is None or api_version == rt.api_version):
            return rt
        if api_version is None:
            raise KubeError(f"kind {kind} is not built in: pass api_version so it can be discovered")
        for t in self._discover(api_version):
            if t.kind == kind:
                return t
        raise KubeError(f"the server does not serve kind {kind} in {api_version}")

    def _discover(self, api_version: str) -> list[ResourceType]:
        if api_version not in self._discovered:
            group, _, version = api_version.rpartition("/")
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            doc = self.request("GET", path).data
            self._discovered[api_version] = [
                ResourceType(group, version, r["name"], r["kind"], bool(r.get("namespaced")))
                for r in doc.get("resources", []) if "/" not in r["name"]
            ]
        return self._discovered[api_version]

    def path_for(self, kind: str, name: str | None = None, namespace: str | None = None,
                 api_version: str | None = None, sub: str | None = None) -> str:
        rt = self.resource(kind, api_version)
        if rt.namespaced and name and not namespace:
            namespace = self.target.namespace
        return rt.path(name, namespace if rt.namespaced else None, sub)
