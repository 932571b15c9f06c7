"""File content changes: unified diffs (difflib) and managed blocks between markers."""

from __future__ import annotations

import difflib

from . import Change, NoChange


def unified_diff(path: str, old: str | None, new: str) -> str:
    a = (old or "").splitlines(keepends=True)
    b = new.splitlines(keepends=True)
    lines = list(difflib.unified_diff(a, b, fromfile=f"{path} (current)" if old is not None else "/dev/null",
                                      tofile=f"{path} (planned)"))
    return "".join(ln if ln.endswith("\n") else ln + "\n\\ No newline at end of file\n" for ln in lines)


def file_content(check: str, path: str, current: str | None, desired: str, *, summary: str = "",
                 commands: list[str] | None = None, mode: str = "0644", in_place: bool = False
                 ) -> Change | NoChange:
    """Write ``desired`` to ``path`` when it differs from ``current`` (None: absent)."""
    if current == desired:
        return NoChange(check, f"{path} is as wanted")
    what = summary or (f"create {path}" if current is None else f"update {path}")
    return Change(check, what, list(commands or []), path=path, content=desired, mode=mode,
                  diff=unified_diff(path, current, desired), in_place=in_place)


def begin_marker(name: str) -> str:
    return f"# BEGIN {name} (managed by runbooks system-init; edits inside are replaced)"


def end_marker(name: str) -> str:
    return f"# END {name}"


def managed_block(text: str | None, name: str, body: list[str]) -> str:
    """``text`` with the block ``name`` replaced by ``body`` (appended when absent; removed when empty)."""
    lines = (text or "").splitlines()
    begin, end = begin_marker(name), end_marker(name)
    start = next((i for i, ln in enumerate(lines) if ln.startswith(f"# BEGIN {name} ")
                  or ln == f"# BEGIN {name}"), None)
    stop = next((i for i, ln in enumerate(lines) if ln == end and start is not None and i > start), None)
    block = [begin, *body, end] if body else []
    if start is not None and stop is not None:
        lines[start: stop + 1] = block
    elif block:
        lines.extend(block)
    return "\n".join(lines) + "\n" if lines else ""
