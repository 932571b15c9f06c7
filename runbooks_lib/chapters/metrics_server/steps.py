"""How chapter 05 runs a step: an error becomes the step's check, with its traceback in the evidence; and
the lab's known host keys for the lab proof (which hosts may be reported "n/a in lab")."""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator
from typing import Any

from ...kube import KubeError
from ...transport.base import CommandFailed, TargetUnreachable

#: errors a step records as a check instead of raising (a bug's exception still raises)
STEP_ERRORS = (KubeError, TargetUnreachable, CommandFailed, OSError, ValueError)


@contextlib.contextmanager
def guarded(run: Any, step: str, host: str) -> Iterator[None]:
    """Run a block as step ``step``; an error raised inside becomes the check ``step`` (error, or
    unreachable) for ``host`` with the traceback recorded in that step's evidence (as chapter 03 does)."""
    with run.recorder.in_step(step):
        try:
            yield
        except STEP_ERRORS as exc:
            run.recorder.record(kind="error", target=host, command=f"{step}: {type(exc).__name__}", exit_code=None,
                                stderr=traceback.format_exc(), status="error")
            run.check(step, host, "unreachable" if isinstance(exc, TargetUnreachable) else "error",
                      f"{type(exc).__name__}: {exc}")


def lab_known_hosts(name: str) -> str | None:
    """The known_hosts `runbooks lab up` wrote for lab ``name`` on this machine (None: no such lab)."""
    from ...lab.lab import state_dir

    path = state_dir(name) / "known_hosts"
    return path.read_text(encoding="utf-8") if path.is_file() else None
