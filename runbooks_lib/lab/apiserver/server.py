"""The lab's Kubernetes API server: an HTTP(S) server the real ``kubernetes`` client and kubectl reach
over a socket, with a simulated control plane behind it.

Module map: ``http`` routing, ``wire`` handler plumbing, ``discovery`` (non-resource paths, discovery,
metrics.k8s.io), ``watch``, ``execws`` (exec over WebSocket), ``store`` (objects, selectors, SSA),
``controllers`` (DaemonSet/Deployment controllers, scheduler, kubelet), ``seed`` (a kubeadm v1.30
cluster), ``pki``. Production code never imports this package (tests/test_no_lab_in_product.py).

Users: the kubeconfig's ``kubernetes-admin`` (client certificate, everything allowed except
``--forbid`` entries) and ``runbooks-viewer`` (bearer token; get/list/watch only, no Secrets).

    python -m runbooks_lib.lab.apiserver --kubeconfig PATH [--port 0] [--forbid verb:resource ...]
        [--node NAME=IP:ROLE ...] [--version v1.30.4] [--no-tls]
"""

from __future__ import annotations

import base64
import copy
import secrets
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from runbooks_lib.kube.paths import BUILTIN, ResourceType

from . import catalogue, names, rbac
from .admission import Admission
from .controllers import Controllers, _Rollout
from .execws import ExecHandler, ExecRunner
from .http import Handler
from .pki import Pki, make_pki
from .seed import DEFAULT_NODES, NodeSpec, check_nodes, seed_objects
from .store import ApiError, Obj, Store
from .wire import ADMIN_USER, VIEWER_USER, RequestLog, Server
from .workloads import seed_replicasets

CLUSTER_NAME = "runbooks-api-double"


@dataclass
class ApiDouble(Controllers, ExecRunner):
    """The double: start() it, write_kubeconfig(), point the client at it, stop() it."""

    version: str = "v1.30.4"
    forbid: Iterable[str] = ()
    tls: bool = True
    rollout_step_s: float = 0.2
    pod_ready_s: float = 0.2
    seed: bool = True
    #: (name, ip, role) of the seeded nodes; role "control-plane" or "worker"
    nodes: list[NodeSpec] = field(default_factory=lambda: list(DEFAULT_NODES))
    requests: list[RequestLog] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: pods on these nodes see no Service ClusterIP (a failed dataplane, for health-gate tests)
    broken_nodes: set[str] = field(default_factory=set)
    exec_handler: ExecHandler | None = None
    #: images the lab publishes in its catalogue besides the seeded cluster's and ``catalogue.EXTRA_IMAGES``
    images: list[str] = field(default_factory=list)
    #: a watch that asked for bookmarks gets one after this many idle seconds
    bookmark_s: float = 10.0

    def __post_init__(self) -> None:
        self.nodes = check_nodes(list(self.nodes))
        self.store = Store(list(BUILTIN.values()) + rbac.ACCESS_REVIEWS + names.EXTRA_TYPES)
        self.admission = Admission(self.store, self.version)
        self.store.admit = self.admission
        self._crd_types: dict[str, ResourceType] = {}
        self._unbound_seen: set[str] = set()
        self.viewer_token = secrets.token_urlsafe(24)
        self.pki: Pki | None = make_pki(ADMIN_USER) if self.tls else None
        self._forbid = {tuple(f.split(":", 1)) for f in self.forbid}
        self._server: Server | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._log_lock = threading.Lock()
        self._born: dict[str, float] = {}
        self._rollouts: dict[tuple[str, str, str], _Rollout] = {}
        self._ip_next = 10
        if self.seed:
            with self.store.lock:
                objs = seed_objects(self.version, self.nodes)
                objs += seed_replicasets(objs) + [catalogue.configmap(objs, self.images)] + rbac.seed_objects()
                for obj in objs:
                    stored = self._put(obj)
                    if obj["kind"] == "Pod":
                        self._born[stored["metadata"]["uid"]] = 0.0
                self._link_owners()

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the API double is not started")
        port = self._server.server_address[1]
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        ctx = None
        if self.pki is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            with tempfile.TemporaryDirectory() as tmp:
                cert, key = Path(tmp, "srv.crt"), Path(tmp, "srv.key")
                cert.write_bytes(self.pki.server_cert_pem)
                key.write_bytes(self.pki.server_key_pem)
                ctx.load_cert_chain(cert, key)
            ctx.verify_mode = ssl.CERT_OPTIONAL
            ctx.load_verify_locations(cadata=self.pki.ca_pem.decode())
        server = Server((host, port), Handler)
        server.double, server.ssl_ctx = self, ctx
        self._server = server
        for target in (server.serve_forever, self._controllers):
            t = threading.Thread(target=target, name=f"api-double-{target.__name__}", daemon=True)
            t.start()
            self._threads.append(t)
        return self.url

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> ApiDouble:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kubeconfig(self, server: str | None = None) -> dict[str, Any]:
        """A kubeconfig for this double: context kubernetes-admin@runbooks-api-double (current) and
        runbooks-viewer@runbooks-api-double."""
        cluster: dict[str, Any] = {"server": server or self.url}
        admin: dict[str, Any] = {}
        if self.pki is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self.pki.ca_pem).decode()
            admin = {"client-certificate-data": base64.b64encode(self.pki.client_cert_pem).decode(),
                     "client-key-data": base64.b64encode(self.pki.client_key_pem).decode()}
        else:
            admin = {"token": self.admin_token}
        return {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": CLUSTER_NAME, "cluster": cluster}],
            "users": [{"name": ADMIN_USER, "user": admin},
                      {"name": VIEWER_USER, "user": {"token": self.viewer_token}}],
            "contexts": [{"name": f"{ADMIN_USER}@{CLUSTER_NAME}",
                          "context": {"cluster": CLUSTER_NAME, "user": ADMIN_USER}},
                         {"name": f"{VIEWER_USER}@{CLUSTER_NAME}",
                          "context": {"cluster": CLUSTER_NAME, "user": VIEWER_USER, "namespace": "default"}}],
            "current-context": f"{ADMIN_USER}@{CLUSTER_NAME}",
        }

    @property
    def admin_token(self) -> str:
        """Admin bearer token, used only when TLS is off (no client certificates then)."""
        if not hasattr(self, "_admin_token"):
            self._admin_token = secrets.token_urlsafe(24)
        return self._admin_token

    def write_kubeconfig(self, path: str | Path, server: str | None = None) -> Path:
        """Write the kubeconfig (0600) atomically: a reader never sees a partial file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        tmp.touch(mode=0o600)
        tmp.write_text(yaml.safe_dump(self.kubeconfig(server), sort_keys=False), encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(path)
        return path

    # ------------------------------------------------------------------ inspection for tests
    def log(self, entry: RequestLog) -> None:
        with self._log_lock:
            self.requests.append(entry)

    def request_count(self) -> int:
        with self._log_lock:
            return len(self.requests)

    def object(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        """A stored object (a copy), by kind."""
        with self.store.lock:
            obj = self.store.find(BUILTIN[kind], namespace, name)
            return copy.deepcopy(obj) if obj else None

    def objects(self, kind: str, namespace: str | None = None, label_selector: str = "") -> list[Obj]:
        with self.store.lock:
            return copy.deepcopy(self.store.list(BUILTIN[kind], namespace, label_selector))

    def _link_owners(self) -> None:
        """Seeded ownerReferences name their owner; give them its uid (as the controllers would have)."""
        st = self.store
        for key, obj in list(st.objects.items()):
            refs = obj["metadata"].get("ownerReferences") or []
            for ref in refs:
                rt = st.by_kind.get((ref["apiVersion"].rpartition("/")[0], ref["kind"]))
                owner = st.find(rt, key[2] or None, ref["name"]) if rt else None
                if owner is not None:
                    ref["uid"] = owner["metadata"]["uid"]

    def authorize(self, user: str, verb: str, rt: ResourceType, parsed: Any) -> None:
        """403 for ``--forbid`` entries, then RBAC (the admin is in system:masters)."""
        resource = rt.plural + (f"/{parsed.sub}" if parsed.sub else "")
        denied = any((v in (verb, "*")) and (r in (resource, rt.plural, "*")) for v, r in self._forbid)
        if not denied:
            rbac.authorize(self.store, user, verb, rt, parsed)
            return
        what = f'{rt.plural}{"." + rt.group if rt.group else ""}'
        subject = f'{what} "{parsed.name}"' if parsed.name else what
        scope = (f'in the namespace "{parsed.namespace}"' if parsed.namespace else "at the cluster scope")
        raise ApiError(403, "Forbidden",
                       f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
                       f'in API group "{rt.group}" {scope}',
                       {"name": parsed.name or "", "group": rt.group, "kind": rt.plural})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


