"""Step plumbing for chapter 06: errors as checks, cluster node → inventory host, lab proof.

``guarded`` and ``node_hosts`` follow chapter 03's (kube_proxy_modes.chapter) — kept here so this
chapter does not import another chapter's notebook glue; a shared home for them is a lead's call."""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator
from typing import Any

from ...kube import KubeError
from ...transport import CommandFailed, TargetUnreachable

#: errors a step records as a check instead of raising (a bug's exception still raises)
STEP_ERRORS = (KubeError, TargetUnreachable, CommandFailed, OSError, ValueError, RuntimeError)


@contextlib.contextmanager
def guarded(run: Any, step: str, host: str) -> Iterator[None]:
    """Run a block as step ``step``: an error raised inside becomes an ``error`` (or ``unreachable``)
    check for ``host``, with the traceback in that step's evidence."""
    with run.recorder.in_step(step):
        try:
            yield
        except STEP_ERRORS as exc:
            run.recorder.record(kind="error", target=host, command=f"{step}: {type(exc).__name__}", exit_code=None,
                                stderr=traceback.format_exc(), status="error")
            status = "unreachable" if isinstance(exc, TargetUnreachable) else "error"
            run.check(step, host, status, f"{type(exc).__name__}: {exc}")


def node_hosts(nodes: list[Any], hosts: list[Any]) -> dict[str, str]:
    """Cluster node name → inventory host: same name, else same address (InternalIP)."""
    by_name = {h.name: h.name for h in hosts}
    by_addr = {h.address: h.name for h in hosts}
    out: dict[str, str] = {}
    for n in nodes:
        host = by_name.get(n.name) or (by_addr.get(n.internal_ip) if n.internal_ip else None)
        if host:
            out[n.name] = host
    return out


def lab_known_hosts(name: str) -> str | None:
    """The known_hosts `runbooks lab up` wrote for lab ``name`` on this machine (None: no such lab)."""
    from ...lab.lab import state_dir

    path = state_dir(name) / "known_hosts"
    return path.read_text(encoding="utf-8") if path.is_file() else None
