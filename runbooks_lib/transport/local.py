"""Local transport: commands on the machine running the notebook (used by the lab and tests)."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from .base import Call, Transport

#: seconds between checks for a stopped fan-out while a command runs
POLL_S = 0.1


class LocalTransport(Transport):
    """Runs shell code with /bin/sh on this machine; a timeout or an interrupted wait kills the
    whole process group."""

    def __init__(self, name: str = "localhost", **kwargs: object) -> None:
        kwargs.setdefault("user", getpass.getuser())
        super().__init__(name, **kwargs)  # type: ignore[arg-type]

    def _exec(self, call: Call) -> tuple[int, str, str, bool]:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", call.shell],
            stdin=subprocess.PIPE if call.stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        call.started = True
        deadline = time.monotonic() + call.timeout
        stdin = call.stdin
        try:
            while True:
                try:
                    out, err = proc.communicate(stdin, timeout=max(0.0, min(POLL_S, deadline - time.monotonic())))
                    return proc.returncode, out, err, False
                except subprocess.TimeoutExpired:
                    stdin = None  # communicate() goes on feeding what it started with
                call.check_stop(self.name)
                if time.monotonic() >= deadline:
                    os.killpg(proc.pid, signal.SIGKILL)
                    out, err = proc.communicate()
                    return (self.TIMEOUT_EXIT, out, err + f"\n[killed after {call.timeout:.0f}s timeout]", True)
        except BaseException:  # interrupted while waiting: nothing of it outlives the wait
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
            raise

    def put(self, local: Path, remote: str) -> None:
        shutil.copyfile(local, remote)

    def get(self, remote: str, local: Path) -> None:
        shutil.copyfile(remote, local)
