"""HTTP routing of the lab's API server: resource requests (get, list, create, update, patch, apply,
delete, deletecollection, watch, exec) onto the store; discovery and non-resource paths via mixins."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import parse_qs

from runbooks_lib.kube.paths import parse_path, split_url, verb_for

from .discovery import DiscoveryMixin
from .execws import ExecMixin
from .store import ApiError
from .watch import WatchMixin
from .wire import RequestLog


class Handler(WatchMixin, ExecMixin, DiscoveryMixin):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        path, query = split_url(self.path)
        path = path.rstrip("/") or "/"
        ctype = self.headers.get("Content-Type", "")
        user = self._user()
        verb = verb_for(method, path, query, ctype)
        code = 500
        try:
            body = None if method in ("GET", "DELETE") and not self.headers.get("Content-Length") else self._body()
            code = self._route(method, path, query, ctype, user, body)
        except ApiError as err:
            code = err.code
            self._send(err.code, err.status())
        except Exception as exc:  # noqa: BLE001 - answer 500 as an API server would, keep serving
            code = 500
            self.double.errors.append(f"{method} {path}: {exc!r}")
            self._send(500, ApiError(500, "InternalError", f"an error on the server: {exc!r}").status())
        finally:
            self.double.log(RequestLog(method, path, query, verb, code, user or "system:anonymous", ctype))

    # -- routing
    def _route(self, method: str, path: str, query: str, ctype: str, user: str | None, body: Any) -> int:
        d = self.double
        done = self._non_resource(method, path, query, user)
        if done is not None:
            return done
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        types = self.served_types()
        namespaced = {(t.group, t.plural): t.namespaced for t in types}
        parsed = parse_path(path, namespaced)
        if parsed.group is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not parsed.is_resource:
            return self._discovery(parsed, types)
        if parsed.group == "metrics.k8s.io":
            return self._metrics(parsed, method)
        rt = d.store.type_for(parsed.group, parsed.plural or "")
        if rt.version != parsed.version:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        verb = verb_for(method, path, query, ctype)
        d.authorize(user, verb, rt, parsed)
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        if parsed.sub == "exec":
            return self._exec(rt, parsed, query)
        if params.get("watch") in ("true", "1"):
            if method != "GET":
                raise ApiError(405, "MethodNotAllowed", "watch is a GET")
            return self._watch(rt, parsed, params)
        dry = params.get("dryRun") == "All"
        manager = params.get("fieldManager") or self.headers.get("User-Agent", "unknown").split("/")[0]
        status_only = parsed.sub == "status"
        if parsed.sub and not status_only:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({parsed.sub})")
        st = d.store
        with st.lock:
            if method == "GET" and parsed.name:
                self._send(200, copy.deepcopy(st.get(rt, parsed.namespace, parsed.name)))
                return 200
            if method == "GET":
                items = st.list(rt, parsed.namespace, params.get("labelSelector", ""), params.get("fieldSelector", ""))
                self._send(200, st.list_doc(rt, items))
                return 200
            if method == "POST" and not parsed.name:
                obj = self._require_obj(body)
                out = st.create(rt, parsed.namespace, obj, manager, dry)
                self._send(201, out)
                return 201
            if method == "PUT" and parsed.name:
                out = st.update(rt, parsed.namespace, parsed.name, self._require_obj(body), manager, dry, status_only)
                self._send(200, out)
                return 200
            if method == "PATCH" and parsed.name:
                if "apply-patch" in ctype:
                    out, created = st.apply(rt, parsed.namespace, parsed.name, self._require_obj(body),
                                            params.get("fieldManager", ""), params.get("force") == "true", dry)
                    self._send(201 if created else 200, out)
                    return 201 if created else 200
                if not any(t in ctype for t in ("merge-patch+json", "strategic-merge-patch+json", "json-patch+json")):
                    raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown "
                                                                f"format - accepted media types include: "
                                                                f"application/json-patch+json, application/merge-"
                                                                f"patch+json, application/apply-patch+yaml ({ctype})")
                out = st.patch(rt, parsed.namespace, parsed.name, body, ctype, manager, dry, status_only)
                self._send(200, out)
                return 200
            if method == "DELETE" and parsed.name:
                out = st.delete(rt, parsed.namespace, parsed.name, dry)
                self._send(200, out)
                return 200
            if method == "DELETE":
                items = st.list(rt, parsed.namespace, params.get("labelSelector", ""), params.get("fieldSelector", ""))
                gone = [st.delete(rt, o["metadata"].get("namespace"), o["metadata"]["name"], dry) for o in items]
                self._send(200, st.list_doc(rt, gone))
                return 200
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

