"""File contents, exactly (base64 in transit, so a missing final newline survives a diff).

The base64 never reaches the evidence: :func:`evidence_view` turns each file line into its
size, digest and decoded text passed through the redactor (a redactor cannot see into base64).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import shlex
from collections.abc import Callable, Iterable

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


def evidence_view(text: str, redact: Callable[[str], str]) -> str:
    """``text`` with every ``@@file PATH B64`` line replaced by ``@@file PATH (N bytes, sha256 H)``
    and the decoded content, redacted, indented by ``| `` (an undecodable payload: digest only)."""
    out: list[str] = []
    for line in text.split("\n"):
        parts = line.split(" ")
        if not line.startswith(MARK + " ") or len(parts) < 3 or parts[2] == "-":
            out.append(line)
            continue
        payload = " ".join(parts[2:])
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            out.append(f"{MARK} {parts[1]} (undecodable, sha256 {hashlib.sha256(payload.encode()).hexdigest()})")
            continue
        out.append(f"{MARK} {parts[1]} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()})")
        body = redact(data.decode("utf-8", errors="replace"))
        out.extend(f"| {ln}" for ln in body.splitlines())
    return "\n".join(out)
