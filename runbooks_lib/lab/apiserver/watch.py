"""Watch: chunked JSON events after a resourceVersion.

https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
"""

from __future__ import annotations

import copy
import json
import secrets
import time
from typing import Any

from runbooks_lib.kube.paths import ResourceType

from .store import ApiError, Obj, fields_match, labels_match, parse_label_selector
from .wire import HandlerBase


class WatchMixin(HandlerBase):
    # -- watch: https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
    def _watch(self, rt: ResourceType, parsed: Any, params: dict[str, str]) -> int:
        """Stream ADDED/MODIFIED/DELETED (and BOOKMARK when asked) as chunked JSON lines until
        ``timeoutSeconds`` (default 1800) or the server stops. No resourceVersion (or "0"): the current
        objects first as ADDED; a resourceVersion older than the log keeps: 410 Gone."""
        d, st = self.double, self.double.store
        if params.get("sendInitialEvents") == "true":
            raise ApiError(422, "Invalid", 'ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: '
                                           "sendInitialEvents is forbidden for watch unless the WatchList "
                                           "feature gate is enabled")
        try:
            timeout = float(params.get("timeoutSeconds") or 1800)
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"invalid timeoutSeconds: {exc}") from exc
        deadline = time.monotonic() + max(timeout, 0.0)
        bookmarks = params.get("allowWatchBookmarks") in ("true", "1")
        reqs = parse_label_selector(params.get("labelSelector", ""))
        fsel = params.get("fieldSelector", "")

        def wanted(key: tuple[str, str, str, str], obj: Obj) -> bool:
            if key[:2] != (rt.group, rt.plural) or (parsed.namespace and rt.namespaced and key[2] != parsed.namespace):
                return False
            if parsed.name and key[3] != parsed.name:
                return False
            return labels_match(obj["metadata"].get("labels") or {}, reqs) and fields_match(obj, fsel)

        with st.lock:
            rv_text = params.get("resourceVersion", "")
            if rv_text in ("", "0"):
                start = st.rv
                first = [("ADDED", copy.deepcopy(o)) for o in st.list(rt, parsed.namespace, params.get("labelSelector", ""),
                                                                      fsel) if not parsed.name or
                         o["metadata"]["name"] == parsed.name]
            else:
                try:
                    start = int(rv_text)
                except ValueError as exc:
                    raise ApiError(400, "BadRequest", f"invalid resourceVersion {rv_text!r}") from exc
                first = []
                if start < st.oldest_rv():
                    first = [("ERROR", ApiError(410, "Expired", f"too old resource version: {start} "
                                                                f"({st.oldest_rv()})").status())]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Audit-Id", secrets.token_hex(8))
        # this server ends a watch by closing the connection: say so, or a client's pool reuses a dead socket
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        as_table = self._table_wanted()

        def emit(kind: str, obj: Obj) -> None:
            if as_table and kind in ("ADDED", "MODIFIED", "DELETED"):
                obj = self._as_table(rt, [obj], params)
            data = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        try:
            for kind, obj in first:
                emit(kind, obj)
            if first and first[0][0] == "ERROR":
                self.wfile.write(b"0\r\n\r\n")
                return 200
            idle_since = time.monotonic()
            while not d._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                with st.lock:
                    batch = []
                    for rv, ev, key, o in reversed(st.log):  # newest first: stop at what was sent
                        if rv <= start:
                            break
                        if wanted(key, o):
                            batch.append((ev, copy.deepcopy(o)))
                    batch.reverse()
                    latest = st.rv
                    if not batch and latest <= start:
                        st.changed.wait(min(left, 0.25))
                start = latest
                for kind, obj in batch:
                    emit(kind, obj)
                if batch:
                    idle_since = time.monotonic()
                elif bookmarks and time.monotonic() - idle_since >= d.bookmark_s:
                    emit("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version,
                                      "metadata": {"resourceVersion": str(latest)}})
                    idle_since = time.monotonic()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:  # the client went away: nothing left to send
            return 200
        return 200

