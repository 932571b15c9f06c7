"""The lab's cluster API: the Kubernetes API double (``runbooks_lib.lab.apiserver``) as a background
process, seeded with the lab's nodes (names, addresses, roles), writing ``.lab/<name>/kubeconfig``.

``spawn`` starts it (new session, so it outlives ``runbooks lab up``; log ``apidouble.log`` and
pidfile ``apidouble.pid`` in the lab's state dir) unless one is already running for the lab;
``wait_ready`` waits, bounded, for the kubeconfig and an answer on ``/version``; ``stop`` sends
SIGTERM, waits, then SIGKILL; ``info`` says what runs. Only the process named in the pidfile is
ever signalled, and only when its command line is the double's with this lab's kubeconfig.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

#: what the double reports: the params' default kubernetes_version (1.30), patch level as kubeadm 1.30.4
VERSION = "v1.30.4"
MODULE = "runbooks_lib.lab.apiserver"
#: the module an older checkout ran (a lab started before the move is still recognised and stopped)
OLD_MODULES = ("runbooks_lib.kube.double",)
PIDFILE = "apidouble.pid"
LOGFILE = "apidouble.log"
KUBECONFIG = "kubeconfig"


class ApiDoubleError(RuntimeError):
    """The lab's API double did not start or answer; the message carries the log's tail."""


@dataclass
class DoubleInfo:
    running: bool
    pid: int | None
    url: str | None
    version: str | None
    detail: str


def _pid(sdir: Path) -> int | None:
    try:
        return int((sdir / PIDFILE).read_text().strip())
    except (OSError, ValueError):
        return None


def _proc(pid: int) -> tuple[list[bytes], str] | None:
    """The process's argv and state letter, read once each; None when there is no such process."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None
    return argv, state


def _runs_double(argv: list[bytes], sdir: Path) -> bool:
    return any(m.encode() in argv for m in (MODULE, *OLD_MODULES)) and str(sdir / KUBECONFIG).encode() in argv


def _is_ours(pid: int, sdir: Path) -> bool:
    """The process runs the double for this lab's kubeconfig (guards against a reused pid)."""
    p = _proc(pid)
    return p is not None and p[1] != "Z" and _runs_double(p[0], sdir)


def running_pid(sdir: Path) -> int | None:
    """The pid of this lab's live API double, else None."""
    pid = _pid(sdir)
    return pid if pid is not None and _is_ours(pid, sdir) else None


def node_args(nodes: list[tuple[str, str, list[str]]]) -> list[str]:
    """``--node NAME=IP:ROLE`` for each (hostname, ip, roles) of the lab."""
    out: list[str] = []
    for host, ip, roles in nodes:
        out += ["--node", f"{host}={ip}:{'control-plane' if 'control-plane' in roles else 'worker'}"]
    return out


def spawn(sdir: Path, nodes: list[tuple[str, str, list[str]]], version: str = VERSION) -> int:
    """Start the lab's double unless it runs already; its pid. Does not wait (see ``wait_ready``)."""
    pid = running_pid(sdir)
    if pid is not None:
        return pid
    (sdir / KUBECONFIG).unlink(missing_ok=True)  # a stale one names a dead port; wait_ready waits for the new one
    argv = [sys.executable, "-m", MODULE, "--kubeconfig", str(sdir / KUBECONFIG), "--version", version,
            *node_args(nodes)]
    with open(sdir / LOGFILE, "ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd="/", start_new_session=True, close_fds=True)
    (sdir / PIDFILE).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 5.0  # until exec: before it, /proc/<pid>/cmdline is still ours
    while not _is_ours(proc.pid, sdir) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return proc.pid


def _server_and_ctx(kubeconfig: Path) -> tuple[str, ssl.SSLContext | None]:
    doc = yaml.safe_load(kubeconfig.read_text()) or {}
    cluster = doc["clusters"][0]["cluster"]
    server = str(cluster["server"])
    if not server.startswith("https://"):
        return server, None
    ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    return server, ctx


def probe(sdir: Path, timeout: float = 2.0) -> tuple[str, str]:
    """(server URL, gitVersion) from ``/version`` through the lab's kubeconfig; raises OSError/KeyError."""
    server, ctx = _server_and_ctx(sdir / KUBECONFIG)
    with urllib.request.urlopen(server + "/version", timeout=timeout, context=ctx) as resp:  # noqa: S310
        return server, str(json.loads(resp.read())["gitVersion"])


def log_tail(sdir: Path, lines: int = 8) -> str:
    try:
        return "\n".join((sdir / LOGFILE).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_ready(sdir: Path, timeout: float = 30.0) -> tuple[str, str]:
    """Wait until the double's kubeconfig exists and ``/version`` answers; (server, version)."""
    deadline = time.monotonic() + timeout
    last = "not started"
    while True:
        pid = running_pid(sdir)
        if pid is None:
            raise ApiDoubleError(f"the lab's API double is not running; {sdir / LOGFILE}:\n{log_tail(sdir)}")
        if (sdir / KUBECONFIG).is_file():
            try:
                return probe(sdir)
            except (OSError, KeyError, IndexError, ValueError, yaml.YAMLError) as exc:
                last = f"{type(exc).__name__}: {exc}"
        else:
            last = "no kubeconfig yet"
        if time.monotonic() > deadline:
            raise ApiDoubleError(f"the lab's API double (pid {pid}) did not answer /version within {timeout:g} s "
                                 f"({last}); {sdir / LOGFILE}:\n{log_tail(sdir)}")
        time.sleep(0.1)


def ensure(sdir: Path, nodes: list[tuple[str, str, list[str]]], version: str = VERSION,
           timeout: float = 30.0) -> tuple[int, str, str]:
    """A running, answering double for the lab: (pid, server, version). A live one that does not
    answer within ``timeout`` is stopped and started again once."""
    for attempt in (1, 2):
        pid = spawn(sdir, nodes, version)
        try:
            server, ver = wait_ready(sdir, timeout)
            return pid, server, ver
        except ApiDoubleError:
            if attempt == 2:
                raise
            stop(sdir)
    raise AssertionError("unreachable")


def stop(sdir: Path, timeout: float = 10.0) -> str:
    """SIGTERM the lab's double, wait up to ``timeout``, then SIGKILL; what happened."""
    pid = running_pid(sdir)
    (sdir / PIDFILE).unlink(missing_ok=True)
    if pid is None:
        return "not running"
    how = "SIGTERM"
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _gone(pid, sdir, timeout):
        how = "SIGKILL after SIGTERM"
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not _gone(pid, sdir, 5.0):
            raise ApiDoubleError(f"the lab's API double (pid {pid}) survived SIGKILL")
    return f"stopped pid {pid} ({how})"


def _gone(pid: int, sdir: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it when this process started it
        if _exited(pid, sdir):
            return True
        time.sleep(0.05)
    return _exited(pid, sdir)


def _exited(pid: int, sdir: Path) -> bool:
    """No such process, a zombie, or the pid runs something else now, from one read of /proc. A process
    still exiting (its memory released, so an empty cmdline, but not yet a zombie) has not exited."""
    p = _proc(pid)
    if p is None:
        return True
    argv, state = p
    return state == "Z" or (any(argv) and not _runs_double(argv, sdir))


def info(sdir: Path) -> DoubleInfo:
    """Whether the lab's double runs and answers (one /version request, 2 s)."""
    pid = running_pid(sdir)
    if pid is None:
        return DoubleInfo(False, None, None, None, "API double not running (`runbooks lab up` starts it)")
    try:
        server, ver = probe(sdir)
    except (OSError, KeyError, IndexError, ValueError, yaml.YAMLError) as exc:
        return DoubleInfo(False, pid, None, None, f"API double pid {pid} not answering: {exc}")
    return DoubleInfo(True, pid, server, ver, f"API double at {server} ({ver}, pid {pid}, kubeconfig "
                                              f"{sdir / KUBECONFIG})")
