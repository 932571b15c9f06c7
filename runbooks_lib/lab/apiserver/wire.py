"""The request handler's plumbing shared by the routing mixins: TLS, the caller, bodies, answers."""

from __future__ import annotations

import json
import secrets
import ssl
import sys
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import yaml

from runbooks_lib.kube.paths import BUILTIN, ResourceType

from . import protobuf, tables
from .store import ApiError, Obj

if TYPE_CHECKING:
    from .server import ApiDouble

ADMIN_USER = "kubernetes-admin"
VIEWER_USER = "runbooks-viewer"


@dataclass
class RequestLog:
    """One request the server answered (bodies are not kept)."""

    method: str
    path: str
    query: str
    verb: str
    status: int
    user: str
    content_type: str = ""


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    double: ApiDouble
    ssl_ctx: ssl.SSLContext | None

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        self.double.errors.append(f"{client_address}: {exc!r}")


class HandlerBase(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server
    #: ``Warning`` headers for the current answer (299 warnings, as kube-apiserver sends them)
    warnings: list[str]

    def setup(self) -> None:
        ctx = self.server.ssl_ctx
        if ctx is not None:
            self.request.settimeout(10)
            self.request = ctx.wrap_socket(self.request, server_side=True)
            self.request.settimeout(None)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return

    @property
    def double(self) -> ApiDouble:
        return self.server.double

    def _user(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth[7:]
            if token == self.double.viewer_token:
                return VIEWER_USER
            if not self.double.tls and token == self.double.admin_token:
                return ADMIN_USER
            return None
        if isinstance(self.request, ssl.SSLSocket):
            cert = self.request.getpeercert()
            if cert:
                for rdn in cert.get("subject", ()):
                    for attr in rdn:
                        if attr[0] == "commonName":
                            return str(attr[1])
        return None

    def _send(self, code: int, payload: Any, content_type: str = "application/json") -> None:
        body = payload if isinstance(payload, bytes) else (
            payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Audit-Id", secrets.token_hex(8))
        for text in getattr(self, "warnings", []):
            quoted = text.replace("\\", "\\\\").replace('"', '\\"')  # an RFC 7234 quoted-string
            self.send_header("Warning", f'299 - "{quoted}"')
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        if self.headers.get("Content-Type", "").startswith(protobuf.MEDIA_TYPE):
            return protobuf.decode_body(raw)
        try:
            return yaml.safe_load(raw.decode("utf-8"))  # JSON is YAML
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ApiError(400, "BadRequest", f"the body of the request was in an unknown format: {exc}") from exc

    def _table_wanted(self) -> bool:
        return tables.wants_table(self.headers.get("Accept", ""))

    def _as_table(self, rt: ResourceType, items: list[Obj], params: dict[str, str]) -> Obj:
        crd = self.double.store.find(BUILTIN["CustomResourceDefinition"], None, f"{rt.plural}.{rt.group}")
        return tables.table(rt, items, str(self.double.store.rv), params.get("includeObject") or "Metadata", crd)

    @staticmethod
    def _require_obj(body: Any) -> Obj:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body must be an object")
        return body
