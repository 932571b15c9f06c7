"""Which commands are on PATH (as root, so /usr/sbin is included)."""

from __future__ import annotations

import re
from collections.abc import Iterable


def command(names: Iterable[str]) -> str:
    words = " ".join(n for n in names if re.fullmatch(r"[A-Za-z0-9._+-]+", n))
    return f'for t in {words}; do p="$(command -v "$t" 2>/dev/null)"; echo "$t ${{p:--}}"; done'


def parse(text: str) -> dict[str, str | None]:
    """tool -> path, or None when absent."""
    out: dict[str, str | None] = {}
    for line in text.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            out[parts[0]] = None if parts[1].strip() == "-" else parts[1].strip()
    return out
