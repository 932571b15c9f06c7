"""Idempotent changes: built from a fact and a desired state, they carry the commands (or the file
content and its unified diff) only when the fact differs; otherwise a :class:`NoChange` says why.

Plan mode shows them; apply mode runs them with :func:`apply`. Nothing here decides success:
the chapter re-reads the facts after applying, and that is the verdict.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from ..transport.base import CommandResult, Transport


@dataclass
class Change:
    """What to do on one host for one check: write a file and/or run commands (in that order)."""

    check: str
    summary: str
    commands: list[str] = field(default_factory=list)
    path: str | None = None
    content: str | None = None
    mode: str = "0644"
    diff: str = ""
    in_place: bool = False      # write through the existing inode (bind-mounted /etc/hosts)
    backup: bool = True         # keep PATH.runbooks.bak once, before the first change
    destructive: str = ""       # why it disrupts the node ("restarts containerd"): apply needs confirm

    def describe(self) -> str:
        """The exact planned change: the diff for a file, then the commands."""
        parts = [f"[{self.check}] {self.summary}"]
        if self.path is not None:
            parts.append(self.diff or f"(write {self.path})")
        parts.extend(f"$ {c}" for c in self.commands)
        if self.destructive:
            parts.append(f"(destructive: {self.destructive}; apply does it only with confirm=<cluster name>)")
        return "\n".join(parts)


@dataclass(frozen=True)
class NoChange:
    check: str
    reason: str

    def __str__(self) -> str:
        return f"no change: {self.reason}"


def apply(transport: Transport, change: Change, timeout: float | None = None) -> list[CommandResult]:
    """Run ``change`` on ``transport``; stop at the first failing step. Returns every result."""
    results: list[CommandResult] = []
    if change.path is not None and change.content is not None:
        q = shlex.quote(change.path)
        if change.backup:
            results.append(transport.run(
                f"if [ -e {q} ] && [ ! -e {q}.runbooks.bak ]; then cp -p {q} {q}.runbooks.bak; fi",
                timeout=timeout))
        if change.in_place:
            res = transport.run(f"cat > {q}", stdin=change.content, timeout=timeout,
                                display=f"write {change.path} in place ({len(change.content.encode())} bytes)")
        else:
            tmp = shlex.quote(f"{change.path}.runbooks-tmp")
            res = transport.run(
                f"mkdir -p \"$(dirname {q})\" && cat > {tmp} && chmod {change.mode} {tmp} && mv -f {tmp} {q}",
                stdin=change.content, timeout=timeout,
                display=f"write {change.path} ({len(change.content.encode())} bytes, mode {change.mode})")
        results.append(res)
        if not res.ok:
            return results
    for cmd in change.commands:
        res = transport.run(cmd, timeout=timeout)
        results.append(res)
        if not res.ok:
            break
    return results
