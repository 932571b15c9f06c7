"""Exec a command in a pod (WebSocket, the kubernetes client's stream) and capture its output.

The stream module swaps the ApiClient's ``call_api`` for a WebSocket call while it runs, so the
exec is recorded here (as a command on target ``pod/<ns>/<name>``), not by the HTTP hook."""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass

from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from ..evidence import utc_now
from .core import KubeCore
from .errors import KubeApiError, KubeRefused, KubeTimeout


@dataclass
class ExecResult:
    pod: str
    namespace: str
    command: list[str]
    exit_code: int | None
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def _exit_code(status_text: str) -> int | None:
    if not status_text:
        return None
    try:
        status = json.loads(status_text)
    except ValueError:
        return None
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            return int(cause.get("message", "1"))
    return 1  # failed to start (e.g. executable not found): no exit code from the runtime


class ExecOps(KubeCore):
    def exec(self, pod: str, namespace: str, command: list[str], *, container: str | None = None,
             timeout: float = 60.0) -> ExecResult:
        """Run ``command`` (argv, no shell) in a pod; stdout/stderr/exit code; bounded by ``timeout``."""
        api = CoreV1Api(self.api)
        target = f"pod/{namespace}/{pod}"
        started, t0 = utc_now(), time.monotonic()
        kwargs = {"container": container} if container else {}
        try:
            ws = stream(api.connect_get_namespaced_pod_exec, pod, namespace, command=command, stderr=True,
                        stdout=True, stdin=False, tty=False, _preload_content=False, _request_timeout=timeout,
                        **kwargs)
        except ApiException as exc:
            reason = str(exc.reason or exc)
            self.recorder.record(kind="command", target=target, command=shlex.join(command), exit_code=None,
                                 stderr=reason, duration_s=time.monotonic() - t0, started_utc=started,
                                 status="error", extra={"via": "pods/exec"})
            if "403" in reason or "401" in reason:
                raise KubeRefused(f"create pods/exec in {namespace} refused: {reason}", code=403, verb="create",
                                  resource="pods/exec", namespace=namespace, name=pod) from exc
            raise KubeApiError(f"exec in {target} failed: {reason}", code=0, verb="create", resource="pods/exec",
                               namespace=namespace, name=pod) from exc
        out, err = [], []
        deadline = t0 + timeout
        try:
            while ws.is_open() and time.monotonic() < deadline:
                ws.update(timeout=min(1.0, max(deadline - time.monotonic(), 0.01)))
                out.append(ws.read_stdout(timeout=0) or "")
                err.append(ws.read_stderr(timeout=0) or "")
            timed_out = ws.is_open()
            out.append(ws.read_stdout(timeout=0) or "")
            err.append(ws.read_stderr(timeout=0) or "")
            code = None if timed_out else _exit_code(ws.read_channel(3))
        finally:
            ws.close()
        result = ExecResult(pod, namespace, list(command), code, "".join(out), "".join(err),
                            round(time.monotonic() - t0, 4), timed_out)
        self.recorder.record(kind="command", target=target, command=shlex.join(command), exit_code=code,
                             stdout=result.stdout, stderr=result.stderr, duration_s=result.duration_s,
                             started_utc=started, status="timeout" if timed_out else ("ok" if code == 0 else "failed"),
                             extra={"via": "pods/exec", "container": container})
        return result

    def exec_checked(self, pod: str, namespace: str, command: list[str], *, container: str | None = None,
                     timeout: float = 60.0) -> ExecResult:
        res = self.exec(pod, namespace, command, container=container, timeout=timeout)
        if res.timed_out:
            raise KubeTimeout(f"exec in pod/{namespace}/{pod}: {shlex.join(command)} still running after {timeout:g} s")
        return res
