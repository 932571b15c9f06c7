"""Pod exec over WebSocket (v5.channel.k8s.io or v4.channel.k8s.io) and the small set of commands a probe pod runs."""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from runbooks_lib.kube.paths import BUILTIN, ResourceType

from .store import ApiError, Obj, Store
from .wire import HandlerBase

if TYPE_CHECKING:
    pass

_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

ExecHandler = Callable[[Any, Obj, str, list[str]], tuple[str, str, int]]


class ExecRunner:
    """Mixed into the server: exec dispatch and the ClusterIP reachability a probe sees."""

    exec_handler: ExecHandler | None
    broken_nodes: set[str]
    store: Store
    ready_endpoints: Callable[[str, str], list[str]]

    def run_exec(self, pod: Obj, container: str, command: list[str]) -> tuple[str, str, int]:
        if self.exec_handler is not None:
            return self.exec_handler(self, pod, container, command)
        return default_exec(self, pod, container, command)

    def cluster_ip_open(self, ip: str, port: int) -> bool:
        with self.store.lock:
            for svc in self.store.list(BUILTIN["Service"], None):
                if svc["spec"].get("clusterIP") == ip and any(p.get("port") == port for p in svc["spec"].get("ports", [])):
                    # a Service with a selector answers only through a ready endpoint
                    meta = svc["metadata"]
                    return not svc["spec"].get("selector") or bool(self.ready_endpoints(meta["namespace"], meta["name"]))
        return False


def default_exec(double: ExecRunner, pod: Obj, container: str, command: list[str]) -> tuple[str, str, int]:
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



class ExecMixin(HandlerBase):
    # -- exec over WebSocket (v5/v4.channel.k8s.io)
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
        offered = [p.strip() for p in self.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        # v5 (kubectl >= 1.30) is v4 plus a stream-close channel, unused without stdin
        self.send_header("Sec-WebSocket-Protocol", next((p for p in offered if p in _PROTOCOLS), _PROTOCOLS[-1]))
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

