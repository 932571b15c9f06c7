"""Local transport: commands on the machine running the notebook (used by the lab and tests)."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import subprocess
from pathlib import Path

from .base import Transport


class LocalTransport(Transport):
    """Runs shell code with /bin/sh on this machine; a timeout kills the whole process group."""

    def __init__(self, name: str = "localhost", **kwargs: object) -> None:
        kwargs.setdefault("user", getpass.getuser())
        super().__init__(name, **kwargs)  # type: ignore[arg-type]

    def _exec(self, shell: str, timeout: float, stdin: str | None) -> tuple[int, str, str, bool]:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", shell],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(stdin, timeout=timeout)
            return proc.returncode, out, err, False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            return self.TIMEOUT_EXIT, out, err + f"\n[killed after {timeout:.0f}s timeout]", True

    def put(self, local: Path, remote: str) -> None:
        shutil.copyfile(local, remote)

    def get(self, remote: str, local: Path) -> None:
        shutil.copyfile(remote, local)
