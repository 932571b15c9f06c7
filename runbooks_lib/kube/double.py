"""An HTTP(S) Kubernetes API double that the real ``kubernetes`` client reaches over a socket.

It serves what the runbooks' helpers use, with API semantics: discovery (/api, /apis, /api/v1,
/apis/<group>/<version>), /version, /readyz, /livez; get, list (label and field selectors),
create, update (resourceVersion conflicts), merge/strategic/JSON patch, server-side apply
(field managers, conflicts, ``force``, ``dryRun=All`` never persisting), delete and
deletecollection; 401 without credentials, 403 for configured forbidden verbs; 404/409/422 as
v1 Status objects; pod exec over WebSocket (v4.channel.k8s.io). Watch is not served (405): the
helpers poll. Simulated controllers make a cluster move: a DaemonSet controller recreates
deleted pods and rolls updated templates node by node, a Deployment rollout advances its status,
a kubelet makes scheduled pods Ready, APIServices follow their service's pods. Persistent volume
claims never bind (there is no provisioner). metrics.k8s.io is served while its APIService is
Available.

Seeded with a kubeadm v1.30 cluster, by default of three nodes cp1/w1/w2 (``nodes=[(name, ip, role)]``
or ``--node NAME=IP:ROLE``; see ``double_seed``). Users: the
kubeconfig's ``kubernetes-admin`` (client certificate, everything allowed except ``--forbid``
entries) and ``runbooks-viewer`` (bearer token; get/list only, no Secrets).

    python -m runbooks_lib.kube.double --kubeconfig PATH [--port 0] [--forbid verb:resource ...]
        [--node NAME=IP:ROLE ...] [--version v1.30.4] [--no-tls]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import hashlib
import json
import secrets
import signal
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl

import yaml

from .double_seed import DEFAULT_NODES, NodeSpec, check_nodes, control_plane_ip, parse_node_arg, seed_objects
from .double_store import ApiError, Obj, Store, fields_match, labels_match, now_rfc3339, parse_label_selector
from .paths import BUILTIN, ResourceType, parse_path, split_url, verb_for
from .pki import Pki, make_pki

CLUSTER_NAME = "runbooks-api-double"
ADMIN_USER = "kubernetes-admin"
VIEWER_USER = "runbooks-viewer"
METRICS = [ResourceType("metrics.k8s.io", "v1beta1", "nodes", "NodeMetrics", False),
           ResourceType("metrics.k8s.io", "v1beta1", "pods", "PodMetrics", True)]
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update"]
SUBRESOURCES = {"pods": ["exec", "status", "log"], "deployments": ["status", "scale"],
                "daemonsets": ["status"], "statefulsets": ["status", "scale"], "nodes": ["status"],
                "apiservices": ["status"], "persistentvolumeclaims": ["status"], "services": ["status"]}
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

ExecHandler = Callable[["ApiDouble", Obj, str, list[str]], tuple[str, str, int]]


@dataclass
class RequestLog:
    """One request the double answered (bodies are not kept)."""

    method: str
    path: str
    query: str
    verb: str
    status: int
    user: str
    content_type: str = ""


@dataclass
class _Rollout:
    started: float
    last_step: float = 0.0
    steps: int = 0


@dataclass
class ApiDouble:
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
    #: a watch that asked for bookmarks gets one after this many idle seconds
    bookmark_s: float = 10.0

    def __post_init__(self) -> None:
        self.nodes = check_nodes(list(self.nodes))
        self.store = Store(list(BUILTIN.values()))
        self.viewer_token = secrets.token_urlsafe(24)
        self.pki: Pki | None = make_pki(ADMIN_USER) if self.tls else None
        self._forbid = {tuple(f.split(":", 1)) for f in self.forbid}
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._log_lock = threading.Lock()
        self._born: dict[str, float] = {}
        self._rollouts: dict[tuple[str, str, str], _Rollout] = {}
        self._ip_next = 10
        if self.seed:
            with self.store.lock:
                for obj in seed_objects(self.version, self.nodes):
                    stored = self._put(obj)
                    if obj["kind"] == "Pod":
                        self._born[stored["metadata"]["uid"]] = 0.0

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
        server = _Server((host, port), _Handler)
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

    # ------------------------------------------------------------------ internals
    def _put(self, obj: Obj, manager: str = "kube-controller-manager") -> Obj:
        rt = self.store.by_kind[(obj["apiVersion"].rpartition("/")[0], obj["kind"])]
        return self.store.put_raw(rt, obj, manager)

    def event(self, obj: Obj, reason: str, message: str, type_: str = "Normal", component: str = "") -> None:
        meta = obj["metadata"]
        ts = now_rfc3339()
        self._put({"apiVersion": "v1", "kind": "Event",
                   "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}",
                                "namespace": meta.get("namespace") or "default"},
                   "involvedObject": {"kind": obj["kind"], "name": meta["name"], "namespace": meta.get("namespace"),
                                      "apiVersion": obj["apiVersion"], "uid": meta.get("uid")},
                   "reason": reason, "message": message, "type": type_, "count": 1,
                   "source": {"component": component}, "reportingComponent": component,
                   "firstTimestamp": ts, "lastTimestamp": ts}, manager=component or "double")

    def authorize(self, user: str, verb: str, rt: ResourceType, parsed: Any) -> None:
        resource = rt.plural + (f"/{parsed.sub}" if parsed.sub else "")
        denied = any((v in (verb, "*")) and (r in (resource, rt.plural, "*")) for v, r in self._forbid)
        if user == VIEWER_USER and (verb not in ("get", "list", "watch") or rt.plural == "secrets"):
            denied = True
        if not denied:
            return
        what = f'{rt.plural}{"." + rt.group if rt.group else ""}'
        subject = f'{what} "{parsed.name}"' if parsed.name else what
        scope = (f'in the namespace "{parsed.namespace}"' if parsed.namespace else "at the cluster scope")
        raise ApiError(403, "Forbidden",
                       f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
                       f'in API group "{rt.group}" {scope}',
                       {"name": parsed.name or "", "group": rt.group, "kind": rt.plural})

    def _node_obj(self, node_name: str) -> Obj | None:
        return self.store.find(BUILTIN["Node"], None, node_name)

    def node_ip(self, node_name: str) -> str:
        """The node's InternalIP as its Node object says (192.0.2.99 for an unknown node)."""
        n = self._node_obj(node_name) or {}
        return next((a["address"] for a in (n.get("status") or {}).get("addresses") or []
                     if a.get("type") == "InternalIP"), "192.0.2.99")

    def next_pod_ip(self, node_name: str) -> str:
        cidr = ((self._node_obj(node_name) or {}).get("spec") or {}).get("podCIDR") or "10.244.99.0/24"
        self._ip_next += 1
        return cidr.rsplit(".", 1)[0] + f".{self._ip_next}"

    # ------------------------------------------------------------------ simulated controllers
    def _controllers(self) -> None:
        while not self._stop.wait(0.05):
            try:
                with self.store.lock:
                    self._tick(time.monotonic())
            except Exception as exc:  # noqa: BLE001 - a controller bug must not kill the server thread
                self.errors.append(f"controller: {exc!r}")

    def _tick(self, now: float) -> None:
        st = self.store
        nodes = [n["metadata"]["name"] for n in st.list(BUILTIN["Node"], None)]
        pods = st.list(BUILTIN["Pod"], None)
        for ds in st.list(BUILTIN["DaemonSet"], None):
            self._daemonset(ds, nodes, pods, now)
        for dep in st.list(BUILTIN["Deployment"], None):
            self._deployment(dep, now)
        for pod in st.list(BUILTIN["Pod"], None):
            self._kubelet(pod, nodes, now)
        for pvc in st.list(BUILTIN["PersistentVolumeClaim"], None):
            if (pvc.get("status") or {}).get("phase") is None:
                self._put({**pvc, "status": {"phase": "Pending"}}, "persistentvolume-controller")
                self.event(pvc, "FailedBinding", "no persistent volumes available for this claim and no "
                                                 "storage class is set", "Warning", "persistentvolume-controller")
        for svc in st.list(BUILTIN["APIService"], None):
            self._apiservice(svc)

    @staticmethod
    def _owned_by(pod: Obj, kind: str, name: str) -> bool:
        return any(o.get("kind") == kind and o.get("name") == name
                   for o in pod["metadata"].get("ownerReferences") or [])

    @staticmethod
    def _ready(pod: Obj) -> bool:
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in (pod.get("status") or {}).get("conditions") or [])

    def _daemonset(self, ds: Obj, nodes: list[str], pods: list[Obj], now: float) -> None:
        meta, ns, name = ds["metadata"], ds["metadata"]["namespace"], ds["metadata"]["name"]
        gen = int(meta.get("generation", 1))
        mine = [p for p in pods if p["metadata"].get("namespace") == ns and self._owned_by(p, "DaemonSet", name)]
        by_node: dict[str, Obj] = {}
        for p in mine:
            by_node.setdefault(p["spec"].get("nodeName", ""), p)
        template = ds["spec"]["template"]
        for node_name in nodes:
            if node_name in by_node:
                continue
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": f"{name}-{secrets.token_hex(3)[:5]}", "namespace": ns,
                                "labels": {**(template["metadata"].get("labels") or {}),
                                           "pod-template-generation": str(gen),
                                           "controller-revision-hash": hashlib.sha1(
                                               json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]},
                                "annotations": dict(template["metadata"].get("annotations") or {}),
                                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": name,
                                                     "uid": meta["uid"], "controller": True,
                                                     "blockOwnerDeletion": True}]},
                   "spec": {**copy.deepcopy(template["spec"]), "nodeName": node_name},
                   "status": {"phase": "Pending", "conditions": [
                       {"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()}]}}
            stored = self._put(pod, "kube-controller-manager")
            self._born[stored["metadata"]["uid"]] = now
            by_node[node_name] = stored
            self.event(ds, "SuccessfulCreate", f"Created pod: {stored['metadata']['name']}",
                       component="daemonset-controller")
        current = list(by_node.values())
        updated = [p for p in current if p["metadata"]["labels"].get("pod-template-generation") == str(gen)]
        ready = [p for p in current if self._ready(p)]
        status = dict(ds.get("status") or {})
        key = ("DaemonSet", ns, name)
        if int(status.get("observedGeneration", 0)) < gen:
            self._rollouts[key] = _Rollout(started=now)
        roll = self._rollouts.get(key)
        if roll and len(ready) == len(current) and now - roll.last_step >= self.rollout_step_s:
            old = [p for p in current if p not in updated]
            if old:  # maxUnavailable 1: replace one old pod once all pods are ready
                victim = sorted(old, key=lambda p: p["spec"].get("nodeName", ""))[0]
                self.store.delete(BUILTIN["Pod"], ns, victim["metadata"]["name"], False)
                self.event(ds, "SuccessfulDelete", f"Deleted pod: {victim['metadata']['name']}",
                           component="daemonset-controller")
                roll.last_step = now
            else:
                self._rollouts.pop(key, None)
        new_status = {"currentNumberScheduled": len(current), "desiredNumberScheduled": len(nodes),
                      "numberAvailable": len(ready), "numberMisscheduled": 0, "numberReady": len(ready),
                      "observedGeneration": gen, "updatedNumberScheduled": len(updated)}
        if len(ready) < len(nodes):
            new_status["numberUnavailable"] = len(nodes) - len(ready)
        if new_status != status:
            self._put({**ds, "status": new_status}, "kube-controller-manager")

    def _deployment(self, dep: Obj, now: float) -> None:
        meta = dep["metadata"]
        gen = int(meta.get("generation", 1))
        status = dict(dep.get("status") or {})
        replicas = int(dep["spec"].get("replicas", 1))
        key = ("Deployment", meta["namespace"], meta["name"])
        if int(status.get("observedGeneration", 0)) < gen:
            self._rollouts[key] = _Rollout(started=now, last_step=now)
            rev = int((meta.get("annotations") or {}).get("deployment.kubernetes.io/revision", "0")) + 1
            dep = {**dep, "metadata": {**meta, "annotations": {**(meta.get("annotations") or {}),
                                                                "deployment.kubernetes.io/revision": str(rev)}}}
            status.update(observedGeneration=gen, updatedReplicas=0, replicas=replicas + 1,
                          availableReplicas=max(replicas - 1, 0), readyReplicas=max(replicas - 1, 0),
                          unavailableReplicas=1)
            self._put({**dep, "status": status}, "kube-controller-manager")
            return
        roll = self._rollouts.get(key)
        if roll is None or now - roll.last_step < self.rollout_step_s:
            return
        roll.last_step = now
        updated = min(int(status.get("updatedReplicas", 0)) + 1, replicas)
        if updated >= replicas:
            status = {"availableReplicas": replicas, "observedGeneration": gen, "readyReplicas": replicas,
                      "replicas": replicas, "updatedReplicas": replicas,
                      "conditions": (dep.get("status") or {}).get("conditions", [])}
            self._rollouts.pop(key, None)
        else:
            status.update(updatedReplicas=updated, replicas=replicas + 1)
        self._put({**dep, "status": status}, "kube-controller-manager")

    def _kubelet(self, pod: Obj, nodes: list[str], now: float) -> None:
        status = pod.get("status") or {}
        uid = pod["metadata"]["uid"]
        if status.get("phase") not in (None, "Pending"):
            return
        node_name = pod["spec"].get("nodeName")
        if not node_name:  # the scheduler: the worker with the fewest pods
            cps = {n["metadata"]["name"] for n in self.store.list(BUILTIN["Node"], None)
                   if "node-role.kubernetes.io/control-plane" in (n["metadata"].get("labels") or {})}
            workers = [n for n in nodes if n not in cps] or nodes
            if not workers:
                return
            load = {n: 0 for n in workers}
            for p in self.store.list(BUILTIN["Pod"], None):
                if p["spec"].get("nodeName") in load:
                    load[p["spec"]["nodeName"]] += 1
            node_name = min(workers, key=lambda n: (load[n], n))
            pod = {**pod, "spec": {**pod["spec"], "nodeName": node_name}}
            self._born.setdefault(uid, now)
            self._put(pod, "kube-scheduler")
            self.event(pod, "Scheduled", f"Successfully assigned {pod['metadata']['namespace']}/"
                                         f"{pod['metadata']['name']} to {node_name}", component="default-scheduler")
            return
        born = self._born.setdefault(uid, now)
        if node_name not in nodes or now - born < self.pod_ready_s:
            return
        host_ip = self.node_ip(node_name)
        ip = host_ip if pod["spec"].get("hostNetwork") else self.next_pod_ip(node_name)
        ts = now_rfc3339()
        containers = pod["spec"].get("containers") or []
        self._put({**pod, "status": {
            "phase": "Running", "hostIP": host_ip, "podIP": ip, "podIPs": [{"ip": ip}], "startTime": ts,
            "qosClass": "BestEffort",
            "conditions": [{"type": t, "status": "True", "lastTransitionTime": ts}
                           for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                                     "PodScheduled")],
            "containerStatuses": [{"name": c.get("name"), "image": c.get("image"), "ready": True, "started": True,
                                   "imageID": str(c.get("image", "")).split(":")[0] + "@sha256:"
                                   + hashlib.sha256(str(c.get("image")).encode()).hexdigest(),
                                   "containerID": "containerd://" + hashlib.sha256(uid.encode()).hexdigest(),
                                   "restartCount": 0, "state": {"running": {"startedAt": ts}}}
                                  for c in containers]}}, "kubelet")
        for c in containers:
            self.event(pod, "Started", f"Started container {c.get('name')}", component="kubelet")

    def _apiservice(self, svc: Obj) -> None:
        ref = svc["spec"].get("service")
        if not ref:
            return
        target = self.store.find(BUILTIN["Service"], ref.get("namespace"), ref.get("name", ""))
        if target is None:
            cond = ("False", "ServiceNotFound", f'service/{ref.get("name")} in "{ref.get("namespace")}" is not present')
        else:
            sel = target["spec"].get("selector") or {}
            pods = [p for p in self.store.list(BUILTIN["Pod"], ref.get("namespace"))
                    if labels_match(p["metadata"].get("labels") or {}, [(k, "=", [v]) for k, v in sel.items()])]
            if any(self._ready(p) for p in pods):
                cond = ("True", "Passed", "all checks passed")
            else:
                cond = ("False", "MissingEndpoints", f'endpoints for service/{ref.get("name")} in '
                                                     f'"{ref.get("namespace")}" have no addresses with port name "https"')
        old: Obj = next((c for c in (svc.get("status") or {}).get("conditions") or [] if c.get("type") == "Available"), {})
        if (old.get("status"), old.get("reason")) == cond[:2]:
            return
        self._put({**svc, "status": {"conditions": [
            {"type": "Available", "status": cond[0], "reason": cond[1], "message": cond[2],
             "lastTransitionTime": now_rfc3339()}]}}, "kube-apiserver")

    # ------------------------------------------------------------------ exec
    def run_exec(self, pod: Obj, container: str, command: list[str]) -> tuple[str, str, int]:
        if self.exec_handler is not None:
            return self.exec_handler(self, pod, container, command)
        return default_exec(self, pod, container, command)

    def cluster_ip_open(self, ip: str, port: int) -> bool:
        with self.store.lock:
            for svc in self.store.list(BUILTIN["Service"], None):
                if svc["spec"].get("clusterIP") == ip and any(p.get("port") == port for p in svc["spec"].get("ports", [])):
                    return True
        return False


def default_exec(double: ApiDouble, pod: Obj, container: str, command: list[str]) -> tuple[str, str, int]:
    """A small set of commands a probe pod runs: echo, hostname, cat /etc/resolv.conf, true/false,
    ``nc -z -w N IP PORT`` and ``wget ... http(s)://IP:PORT`` (open when a Service has that ClusterIP
    and port, and the pod's node is not marked broken), ``sh -c 'exit N'``."""
    if not command:
        return "", "no command", 126
    prog, args = Path(command[0]).name, command[1:]
    node_name = pod["spec"].get("nodeName", "")
    if prog == "echo":
        return " ".join(args) + "\n", "", 0
    if prog == "hostname":
        return pod["metadata"]["name"] + "\n", "", 0
    if prog in ("true", "false"):
        return "", "", 0 if prog == "true" else 1
    if prog == "cat" and args == ["/etc/resolv.conf"]:
        ns = pod["metadata"].get("namespace", "default")
        return (f"search {ns}.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\n"
                "options ndots:5\n", "", 0)
    if prog == "sh" and len(args) == 2 and args[0] == "-c" and args[1].strip().startswith("exit"):
        return "", "", int(args[1].split()[1])
    if prog in ("nc", "wget"):
        target = [a for a in args if not a.startswith("-")]
        if prog == "nc" and len(target) >= 2:
            ip, port = target[-2], int(target[-1])
        elif prog == "wget" and target:
            url = target[-1]
            hostport = url.split("://", 1)[-1].split("/", 1)[0]
            ip, _, p = hostport.partition(":")
            port = int(p or (443 if url.startswith("https") else 80))
        else:
            return "", f"{prog}: bad arguments", 1
        if node_name not in double.broken_nodes and double.cluster_ip_open(ip, port):
            return ("" if prog == "nc" else "ok\n"), "", 0
        return "", f"{prog}: {ip}:{port}: Connection timed out\n", 1
    return "", f"sh: {command[0]}: not found\n", 127


# ----------------------------------------------------------------------------- HTTP

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    double: ApiDouble
    ssl_ctx: ssl.SSLContext | None

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        self.double.errors.append(f"{client_address}: {exc!r}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        ctx = self.server.ssl_ctx
        if ctx is not None:
            self.request.settimeout(10)
            self.request = ctx.wrap_socket(self.request, server_side=True)
            self.request.settimeout(None)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return

    # -- plumbing
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
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return yaml.safe_load(raw.decode("utf-8"))  # JSON is YAML
        except yaml.YAMLError as exc:
            raise ApiError(400, "BadRequest", f"the body of the request was in an unknown format: {exc}") from exc

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
        types = list(d.store.types.values()) + (METRICS if self._metrics_available() else [])
        if path == "/apis":
            self._send(200, {"kind": "APIGroupList", "apiVersion": "v1",
                             "groups": [self._group(g, types) for g in sorted({t.group for t in types if t.group})]})
            return 200
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
        self.end_headers()
        self.close_connection = True

        def emit(kind: str, obj: Obj) -> None:
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
                    batch = [(ev, copy.deepcopy(o)) for rv, ev, key, o in st.log if rv > start and wanted(key, o)]
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

    @staticmethod
    def _require_obj(body: Any) -> Obj:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body must be an object")
        return body

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
        for t in mine:
            verbs = ["get", "list"] if t.group == "metrics.k8s.io" else VERBS
            resources.append({"name": t.plural, "singularName": t.kind.lower(), "namespaced": t.namespaced,
                              "kind": t.kind, "verbs": verbs})
            for sub in SUBRESOURCES.get(t.plural, []):
                resources.append({"name": f"{t.plural}/{sub}", "singularName": "", "namespaced": t.namespaced,
                                  "kind": "PodExecOptions" if sub == "exec" else t.kind,
                                  "verbs": ["create", "get"] if sub == "exec" else ["get", "patch", "update"]})
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

    # -- exec over WebSocket (v4.channel.k8s.io)
    def _exec(self, rt: ResourceType, parsed: Any, query: str) -> int:
        if self.headers.get("Upgrade", "").lower() != "websocket":
            raise ApiError(400, "BadRequest", "Upgrade request required")
        qs = parse_qsl(query, keep_blank_values=True)
        command = [v for k, v in qs if k == "command"]
        container = dict(qs).get("container", "")
        with self.double.store.lock:
            pod = copy.deepcopy(self.double.store.get(rt, parsed.namespace, parsed.name))
        if (pod.get("status") or {}).get("phase") != "Running":
            raise ApiError(400, "BadRequest", f'unable to upgrade connection: pod {parsed.name} is not running '
                                              f'(phase {(pod.get("status") or {}).get("phase", "Pending")})')
        names = [c.get("name") for c in pod["spec"].get("containers", [])]
        if container and container not in names:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {parsed.name}")
        if not command:
            raise ApiError(400, "BadRequest", "you must specify at least 1 command")
        out, err, code = self.double.run_exec(pod, container or names[0], command)
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("Sec-WebSocket-Protocol", "v4.channel.k8s.io")
        self.end_headers()
        if out:
            self._ws_frame(b"\x01" + out.encode())
        if err:
            self._ws_frame(b"\x02" + err.encode())
        if code == 0:
            status: Obj = {"metadata": {}, "status": "Success"}
        else:
            status = {"metadata": {}, "status": "Failure",
                      "message": f"command terminated with non-zero exit code: error executing command "
                                 f"{command}, exit code {code}", "reason": "NonZeroExitCode",
                      "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
        self._ws_frame(b"\x03" + json.dumps(status).encode())
        self._ws_frame(struct.pack("!H", 1000), opcode=0x8)
        self.wfile.flush()
        with contextlib.suppress(OSError):  # wait (bounded) for the client's close frame
            self.request.settimeout(2)
            self.rfile.read(2)
        self.close_connection = True
        return 101

    def _ws_frame(self, payload: bytes, opcode: int = 0x2) -> None:
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([n])
        elif n < 65536:
            head += bytes([126]) + struct.pack("!H", n)
        else:
            head += bytes([127]) + struct.pack("!Q", n)
        self.wfile.write(head + payload)


# ----------------------------------------------------------------------------- CLI

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m runbooks_lib.kube.double", description=__doc__.split("\n\n")[0])
    ap.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig pointing at the double")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: any free port")
    ap.add_argument("--forbid", nargs="*", default=[], metavar="VERB:RESOURCE",
                    help='refuse with 403, e.g. "patch:configmaps", "delete:pods", "*:secrets"')
    ap.add_argument("--version", default="v1.30.4", help="Kubernetes version the double reports")
    ap.add_argument("--no-tls", action="store_true", help="plain HTTP with bearer tokens")
    ap.add_argument("--node", action="append", default=[], metavar="NAME=IP:ROLE",
                    help="a seeded node (repeatable; ROLE control-plane or worker); default cp1, w1, w2")
    args = ap.parse_args(argv)
    try:
        nodes = [parse_node_arg(n) for n in args.node] or list(DEFAULT_NODES)
        check_nodes(nodes)
    except ValueError as exc:
        ap.error(str(exc))
    double = ApiDouble(version=args.version, forbid=args.forbid, tls=not args.no_tls, nodes=nodes)
    url = double.start(args.host, args.port)
    path = double.write_kubeconfig(args.kubeconfig)
    print(f"API double serving at {url}; kubeconfig {path} (cluster {CLUSTER_NAME})", flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(1.0):
        pass
    double.stop()
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
