"""Transport base: run a command on a target and get a CommandResult.

Quoting, sudo, timeouts, stopping and evidence live here, once. Concrete transports (ssh, local)
only implement ``_exec`` (and file transfer where they can).

An interrupted wait (KeyboardInterrupt, the runner's SIGTERM, a stopped fan-out) stops the
command where it runs before the exception goes on: a local process group is killed by
``_exec``; on a remote target the command's ``timeout`` process group gets TERM (KILL 5 s later)
from a stop script found by the command's tag, as its own overrun kill would.
"""

from __future__ import annotations

import math
import shlex
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from ..evidence import Recorder, current, utc_now


class TargetUnreachable(Exception):
    """The target could not be reached (connection refused, timeout, auth failure, host key),
    or the connection died while a command ran."""

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"{target}: unreachable: {reason}")
        self.target = target
        self.reason = reason


class CommandFailed(Exception):
    """A command run with ``check=True`` exited non-zero."""

    def __init__(self, result: CommandResult) -> None:
        super().__init__(
            f"{result.target}: `{result.command}` exited {result.exit_code}: "
            f"{(result.stderr or result.stdout).strip()[-500:]}"
        )
        self.result = result


class Cancelled(BaseException):
    """The fan-out this command ran in was stopped (interrupted, or past its wall limit). A
    BaseException, like KeyboardInterrupt, so a step's ``except Exception`` does not carry on."""


@dataclass
class CommandResult:
    target: str
    command: str
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


Command = str | Sequence[str]

#: the fan-outs the current thread works for (innermost last); any one set stops its commands
_STOPS: ContextVar[tuple[threading.Event, ...]] = ContextVar("runbooks_stops", default=())


@contextmanager
def stop_scope(stop: threading.Event) -> Iterator[None]:
    """Commands run in this thread inside the block are stopped, on their target too, once ``stop`` is set."""
    token = _STOPS.set((*_STOPS.get(), stop))
    try:
        yield
    finally:
        _STOPS.reset(token)


def stop_requested() -> bool:
    """True when a fan-out the current thread works for has been stopped."""
    return any(e.is_set() for e in _STOPS.get())


@contextmanager
def shielded() -> Iterator[None]:
    """Commands run inside go ahead even once their fan-out is stopped: a step's cleanup in
    ``finally`` (remove a staging copy, a ``.part``). Their own timeout still applies, and a
    stopped fan-out waits for them only a bounded time (fleet.STOP_JOIN_S)."""
    token = _STOPS.set(())
    try:
        yield
    finally:
        _STOPS.reset(token)


@dataclass
class Call:
    """One command as ``_exec`` runs it. ``started`` is set once it may be running on the target;
    ``stops`` are polled while waiting (``_exec`` raises Cancelled when one is set)."""

    shell: str
    timeout: float
    stdin: str | None = None
    stops: tuple[threading.Event, ...] = ()
    tag: str = ""
    started: bool = False

    def check_stop(self, target: str) -> None:
        if any(e.is_set() for e in self.stops):
            raise Cancelled(f"{target}: fan-out stopped")


def to_shell(cmd: Command) -> str:
    """A shell string: a str is taken as shell code, a sequence is quoted word by word."""
    return cmd if isinstance(cmd, str) else shlex.join(list(cmd))


#: the environment variable that tags a remote command so the stop script finds its process group
TAG_VAR = "RUNBOOKS_CMD"


def stop_script(tag: str) -> str:
    """Shell code that stops the command tagged ``tag``: TERM to its `timeout` process group
    (waiting up to 2 s for it to appear, as the interrupt can overtake the exec), then KILL to what
    is left after 5 s, as the overrun kill (`timeout -k 5`) gives a TERM handler time to clean up."""
    pattern = shlex.quote(f"^timeout -k [0-9]+ [0-9]+ env {TAG_VAR}={tag} ")
    return (f"i=0; while ! p=$(pgrep -o -f -- {pattern}); do i=$((i+1)); "
            "[ $i -ge 20 ] && { echo 'not running'; exit 0; }; sleep 0.1; done; "
            'pkill -TERM -g "$p"; i=0; while pgrep -g "$p" >/dev/null; do i=$((i+1)); '
            '[ $i -ge 50 ] && { pkill -KILL -g "$p"; echo "group $p killed"; exit 0; }; sleep 0.1; done; '
            'echo "group $p stopped"')


class Transport(ABC):
    """Runs commands on one target; every call goes through the evidence recorder."""

    #: the exit code used for a command killed by its timeout (as coreutils `timeout`)
    TIMEOUT_EXIT = 124
    #: seconds the stop of an interrupted remote command may take
    STOP_TIMEOUT = 10.0

    def __init__(
        self,
        name: str,
        user: str = "root",
        command_timeout: float = 120.0,
        recorder: Recorder | None = None,
    ) -> None:
        self.name = name
        self.user = user
        self.command_timeout = command_timeout
        self._recorder = recorder

    @property
    def recorder(self) -> Recorder:
        return self._recorder or current()

    @property
    def needs_sudo(self) -> bool:
        return self.user != "root"

    #: wrap remote commands in coreutils `timeout` so an overrun is killed where it runs
    kill_on_target = False

    def wrap(self, shell: str, sudo: bool, timeout: float | None = None, tag: str | None = None) -> str:
        """Wrap ``shell`` for the target: `timeout` inside sudo (so the kill has the rights and
        reaches the whole process group, tagged for the stop script), and non-interactive sudo
        when the user is not root."""
        if self.kill_on_target and timeout is not None:
            env = f"env {TAG_VAR}={tag} " if tag else ""
            shell = f"timeout -k 5 {max(1, math.ceil(timeout))} {env}sh -c {shlex.quote(shell)}"
        elif sudo and self.needs_sudo:
            shell = f"sh -c {shlex.quote(shell)}"
        if sudo and self.needs_sudo:
            return f"sudo -n -- {shell}"
        return shell

    def run(
        self,
        cmd: Command,
        *,
        sudo: bool = True,
        timeout: float | None = None,
        check: bool = False,
        stdin: str | None = None,
        record: bool = True,
        display: str | None = None,
    ) -> CommandResult:
        """Run ``cmd``; record it (``display`` replaces the command text in evidence).

        Interrupted while waiting (KeyboardInterrupt, a stopped fan-out: Cancelled, ...), the
        command is stopped on the target first, then the exception goes on."""
        shell = to_shell(cmd)
        limit = self.command_timeout if timeout is None else timeout
        tag = uuid.uuid4().hex[:16]
        call = Call(self.wrap(shell, sudo, limit, tag), limit, stdin, _STOPS.get(), tag)
        call.check_stop(self.name)
        started = utc_now()
        t0 = time.monotonic()

        def note(status: str, stderr: str, exit_code: int | None = None) -> None:
            if record:
                self.recorder.record(
                    kind="command", target=self.name, command=display or shell, exit_code=exit_code,
                    stderr=stderr, duration_s=time.monotonic() - t0, started_utc=started, status=status,
                )

        try:
            code, out, err, timed_out = self._exec(call)
        except TargetUnreachable as exc:
            note("unreachable", exc.reason)
            raise
        except BaseException as exc:
            note("interrupted", f"{type(exc).__name__} while waiting; " + self._stop(call, sudo))
            raise
        result = CommandResult(
            target=self.name, command=display or shell, exit_code=code, stdout=out, stderr=err,
            duration_s=time.monotonic() - t0, timed_out=timed_out,
        )
        if record:
            self.recorder.record(
                kind="command", target=self.name, command=result.command, exit_code=code,
                stdout=out, stderr=err, duration_s=result.duration_s, started_utc=started,
                status="timeout" if timed_out else ("ok" if code == 0 else "failed"),
                extra={"sudo": bool(sudo and self.needs_sudo), "timeout_s": limit},
            )
        if check and not result.ok:
            raise CommandFailed(result)
        return result

    def _stop(self, call: Call, sudo: bool) -> str:
        """Stop an interrupted command on the target; what happened (recorded as its own command)."""
        if not call.started:
            return "it had not started"
        if not self.kill_on_target:
            return "its process group was killed"  # by _exec, which holds the process
        script = stop_script(call.tag)
        t0 = time.monotonic()
        try:
            code, out, err, _ = self._exec(Call(self.wrap(script, sudo), self.STOP_TIMEOUT))
        except (TargetUnreachable, OSError) as exc:  # best effort: why it failed is the evidence
            what, code, out, err = f"could not stop it: {exc}", None, "", str(exc)
        else:
            what = f"stopped on the target: {out.strip() or err.strip()}" if code == 0 else \
                f"stop exited {code}: {err.strip()}"
        self.recorder.record(kind="command", target=self.name, command=f"stop command {call.tag}: {script}",
                             exit_code=code, stdout=out, stderr=err, duration_s=time.monotonic() - t0,
                             status="ok" if code == 0 else "failed")
        return what

    def read_file(self, path: str, *, sudo: bool = True) -> str | None:
        """A file's text, or None when it does not exist."""
        res = self.run(f"if [ -e {shlex.quote(path)} ]; then cat {shlex.quote(path)}; "
                       f"else exit 44; fi", sudo=sudo)
        if res.exit_code == 44:
            return None
        if not res.ok:
            raise CommandFailed(res)
        return res.stdout

    def write_file(self, path: str, content: str, *, mode: str = "0644", sudo: bool = True) -> CommandResult:
        """Write ``content`` to ``path`` atomically (temp file + rename) with ``mode``."""
        q = shlex.quote(path)
        tmp = shlex.quote(f"{path}.runbooks-tmp")
        shell = (f"mkdir -p \"$(dirname {q})\" && cat > {tmp} && chmod {mode} {tmp} "
                 f"&& mv -f {tmp} {q}")
        return self.run(shell, sudo=sudo, stdin=content, check=True,
                        display=f"write {path} ({len(content.encode())} bytes, mode {mode})")

    @abstractmethod
    def _exec(self, call: Call) -> tuple[int, str, str, bool]:
        """Run ``call.shell``; return (exit code, stdout, stderr, timed_out). Set ``call.started``
        once it may run; poll ``call.check_stop``. Raise TargetUnreachable when the target is gone."""

    def host_key(self) -> str | None:
        """The target's host key as verified on connecting ("keytype base64"); None without one."""
        return None

    def put(self, local: Path, remote: str) -> None:  # pragma: no cover - overridden
        raise NotImplementedError(f"{type(self).__name__} cannot upload files")

    def get(self, remote: str, local: Path) -> None:  # pragma: no cover - overridden
        raise NotImplementedError(f"{type(self).__name__} cannot download files")

    def close(self) -> None:  # noqa: B027 - optional hook, most transports hold nothing
        """Release connections (no-op by default)."""
