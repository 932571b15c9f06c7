"""Transport base: run a command on a target and get a CommandResult.

Quoting, sudo, timeouts and evidence live here, once. Concrete transports (ssh, local)
only implement ``_exec`` (and file transfer where they can).
"""

from __future__ import annotations

import math
import shlex
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..evidence import Recorder, current, utc_now


class TargetUnreachable(Exception):
    """The target could not be reached (connection refused, timeout, auth failure, host key)."""

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


def to_shell(cmd: Command) -> str:
    """A shell string: a str is taken as shell code, a sequence is quoted word by word."""
    return cmd if isinstance(cmd, str) else shlex.join(list(cmd))


class Transport(ABC):
    """Runs commands on one target; every call goes through the evidence recorder."""

    #: the exit code used for a command killed by its timeout (as coreutils `timeout`)
    TIMEOUT_EXIT = 124

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

    def wrap(self, shell: str, sudo: bool, timeout: float | None = None) -> str:
        """Wrap ``shell`` for the target: `timeout` inside sudo (so the kill has the rights and
        reaches the whole process group), and non-interactive sudo when the user is not root."""
        if self.kill_on_target and timeout is not None:
            shell = f"timeout -k 5 {max(1, math.ceil(timeout))} sh -c {shlex.quote(shell)}"
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
        """Run ``cmd``; record it (``display`` replaces the command text in evidence)."""
        shell = to_shell(cmd)
        limit = self.command_timeout if timeout is None else timeout
        wrapped = self.wrap(shell, sudo, limit)
        started = utc_now()
        t0 = time.monotonic()
        try:
            code, out, err, timed_out = self._exec(wrapped, limit, stdin)
        except TargetUnreachable as exc:
            if record:
                self.recorder.record(
                    kind="command", target=self.name, command=display or shell, exit_code=None,
                    stderr=exc.reason, duration_s=time.monotonic() - t0, started_utc=started,
                    status="unreachable",
                )
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
    def _exec(self, shell: str, timeout: float, stdin: str | None) -> tuple[int, str, str, bool]:
        """Run shell code; return (exit code, stdout, stderr, timed_out). Raise TargetUnreachable."""

    def put(self, local: Path, remote: str) -> None:  # pragma: no cover - overridden
        raise NotImplementedError(f"{type(self).__name__} cannot upload files")

    def get(self, remote: str, local: Path) -> None:  # pragma: no cover - overridden
        raise NotImplementedError(f"{type(self).__name__} cannot download files")

    def close(self) -> None:  # noqa: B027 - optional hook, most transports hold nothing
        """Release connections (no-op by default)."""
