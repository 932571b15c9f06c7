"""File contents, exactly (base64 in transit, so a missing final newline survives a diff)."""

from __future__ import annotations

import base64
import binascii
import shlex
from collections.abc import Iterable

MARK = "@@file"


def command(paths: Iterable[str]) -> str:
    """Print each path (globs allowed) as ``@@file PATH B64`` or ``@@file PATH -`` when absent."""
    words = " ".join(p if any(c in p for c in "*?[") else shlex.quote(p) for p in paths)
    return (f"for f in {words}; do if [ -f \"$f\" ]; then printf '{MARK} %s %s\\n' \"$f\" "
            f"\"$(base64 -w0 < \"$f\")\"; else printf '{MARK} %s -\\n' \"$f\"; fi; done")


def parse(text: str) -> dict[str, str | None]:
    """path -> content (None: absent). Unexpanded glob patterns are dropped."""
    out: dict[str, str | None] = {}
    for line in text.splitlines():
        if not line.startswith(MARK + " "):
            continue
        parts = line.split(" ")
        if len(parts) < 2:
            continue
        path = parts[1]
        payload = parts[2] if len(parts) > 2 else ""
        if any(c in path for c in "*?["):
            continue
        if payload == "-":
            out[path] = None
            continue
        try:
            out[path] = base64.b64decode(payload).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            out[path] = None
    return out
