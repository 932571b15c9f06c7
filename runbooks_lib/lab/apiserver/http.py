"""HTTP routing of the lab's API server: resource requests (get, list, create, update, patch, apply,
delete, deletecollection, watch, exec) onto the store; discovery and non-resource paths via mixins."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import parse_qs

from runbooks_lib.kube.paths import parse_path, split_url, verb_for

from . import rbac
from .admission import check_dry_run, check_field_validation
from .discovery import DiscoveryMixin
from .execws import ExecMixin
from .store import ApiError
from .subresources import SubresourceMixin
from .watch import WatchMixin
from .wire import RequestLog


class Handler(WatchMixin, ExecMixin, DiscoveryMixin, SubresourceMixin):
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
        self.warnings = []
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

    def _orphan(self, owner: Any) -> None:
        """propagationPolicy=Orphan: dependents lose their ownerReference to ``owner`` and stay."""
        st, uid = self.double.store, owner["metadata"]["uid"]
        for key, obj in list(st.objects.items()):
            refs = obj["metadata"].get("ownerReferences") or []
            if any(r.get("uid") == uid for r in refs):
                rt = st.types[key[:2]]
                kept = [r for r in refs if r.get("uid") != uid]
                st.put_raw(rt, {**obj, "metadata": {**obj["metadata"], "ownerReferences": kept}},
                           "garbage-collector")

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
        multi = parse_qs(query, keep_blank_values=True)
        params = {k: v[-1] for k, v in multi.items()}
        if rt.group == "authorization.k8s.io":
            if method != "POST" or parsed.name:
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            self._send(201, rbac.review(d.store, user, rt, self._require_obj(body)))
            return 201
        if parsed.sub == "exec":
            return self._exec(rt, parsed, query)
        if params.get("watch") in ("true", "1"):
            if method != "GET":
                raise ApiError(405, "MethodNotAllowed", "watch is a GET")
            return self._watch(rt, parsed, params)
        delete_opts = body if method == "DELETE" and isinstance(body, dict) else {}
        options = {"POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions", "DELETE": "DeleteOptions"}
        dry_values = multi.get("dryRun", []) + list(delete_opts.get("dryRun") or [])
        dry = check_dry_run(dry_values, options.get(method, "ListOptions")) if method in options else False
        mode = check_field_validation(params.get("fieldValidation", "")) if method in ("POST", "PUT", "PATCH") else "Warn"
        manager = params.get("fieldManager") or self.headers.get("User-Agent", "unknown").split("/")[0]
        status_only = parsed.sub == "status"
        if parsed.sub and parsed.sub != "status":
            with d.store.lock:
                d.admission.begin(mode)
                self.warnings = d.admission.warnings
                done = self._subresource(method, rt, parsed, ctype, body, manager, dry, params)
            if done is not None:
                return done
        if parsed.sub and not (status_only and d.store.has_status(rt)):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        st = d.store
        with st.lock:
            d.admission.begin(mode)
            self.warnings = d.admission.warnings
            if method == "GET" and parsed.name:
                found = copy.deepcopy(st.get(rt, parsed.namespace, parsed.name))
                self._send(200, self._as_table(rt, [found], params) if self._table_wanted() else found)
                return 200
            if method == "GET":
                items = st.list(rt, parsed.namespace, params.get("labelSelector", ""), params.get("fieldSelector", ""))
                self._send(200, self._as_table(rt, copy.deepcopy(items), params) if self._table_wanted()
                           else st.list_doc(rt, items))
                return 200
            if method == "POST" and not parsed.name:
                obj = self._require_obj(body)
                if rt.kind == "CertificateSigningRequest":  # the requestor, as the API server records it
                    obj.setdefault("spec", {})["username"] = user
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
            policy = params.get("propagationPolicy") or delete_opts.get("propagationPolicy") or "Background"
            if method == "DELETE" and parsed.name:
                if policy == "Orphan" and not dry:
                    self._orphan(st.get(rt, parsed.namespace, parsed.name))
                out = st.delete(rt, parsed.namespace, parsed.name, dry)
                self._send(200, out)
                return 200
            if method == "DELETE":
                items = st.list(rt, parsed.namespace, params.get("labelSelector", ""), params.get("fieldSelector", ""))
                gone = [st.delete(rt, o["metadata"].get("namespace"), o["metadata"]["name"], dry) for o in items]
                self._send(200, st.list_doc(rt, gone))
                return 200
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

