"""Where desired objects come from: multi-document YAML in files, or at URLs pinned by sha256.

    objs = sources.from_file("calico.yaml")
    objs = sources.from_url("https://.../calico.yaml", sha256="9f1c...", recorder=run.recorder)

A URL without a sha256 is refused (offline sites pass a file instead). Each fetch is one
evidence record (URL, byte count, digest). Empty documents are skipped; ``kind: List`` documents
are flattened into their items.
"""

from __future__ import annotations

import hashlib
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from ..evidence import Recorder, current, utc_now
from .errors import KubeError

Obj = dict[str, Any]
MAX_BYTES = 32 * 1024 * 1024


class SourceError(KubeError):
    """A manifest source cannot be used: unreadable, not YAML, not objects, or a digest mismatch."""


def load_documents(text: str, origin: str) -> list[Obj]:
    """Objects from multi-document YAML (``---``); each must be a mapping with apiVersion, kind, metadata.name."""
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SourceError(f"{origin}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    out: list[Obj] = []
    problems = []
    for i, doc in enumerate(docs, 1):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            problems.append(f"document {i} is a {type(doc).__name__}, not an object")
            continue
        items = doc.get("items") if str(doc.get("kind", "")).endswith("List") and "items" in doc else [doc]
        for item in items or []:
            missing = [k for k in ("apiVersion", "kind") if not item.get(k)]
            if not (item.get("metadata") or {}).get("name"):
                missing.append("metadata.name")
            if missing:
                problems.append(f"document {i} ({item.get('kind', '?')}) lacks {', '.join(missing)}")
            else:
                out.append(item)
    if problems:
        raise SourceError(f"{origin}: " + "; ".join(problems))
    return out


def from_file(path: str | Path) -> list[Obj]:
    """Objects from a YAML file (multi-document)."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{p}: cannot be read: {exc}") from exc
    return load_documents(text, str(p))


def from_url(url: str, sha256: str, *, timeout: float = 30.0, recorder: Recorder | None = None) -> list[Obj]:
    """Objects from an http(s) URL whose content must hash to ``sha256`` (hex)."""
    rec = recorder or current()
    want = (sha256 or "").strip().lower().removeprefix("sha256:")
    if len(want) != 64 or any(c not in "0123456789abcdef" for c in want):
        raise SourceError(f"{url}: a URL source needs its sha256 (64 hex digits) so the content is pinned; "
                          "offline sites pass a file instead")
    if not url.startswith(("https://", "http://")):
        raise SourceError(f"{url}: only http(s) URLs are fetched; pass a local path as a file source")
    started, t0 = utc_now(), time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - scheme checked above
            body = resp.read(MAX_BYTES + 1)
    except (urllib.error.URLError, OSError) as exc:
        rec.record(kind="command", target=url, command=f"GET {url}", exit_code=None, stderr=str(exc),
                   duration_s=time.monotonic() - t0, started_utc=started, status="unreachable")
        raise SourceError(f"{url}: cannot be fetched: {exc}") from exc
    got = hashlib.sha256(body).hexdigest()
    ok = got == want and len(body) <= MAX_BYTES
    rec.record(kind="command", target=url, command=f"GET {url}", exit_code=0 if ok else 1,
               stdout=f"{len(body)} bytes, sha256 {got}", stderr="" if ok else f"expected sha256 {want}",
               duration_s=time.monotonic() - t0, started_utc=started, status="ok" if ok else "failed",
               extra={"sha256": got, "bytes": len(body)})
    if len(body) > MAX_BYTES:
        raise SourceError(f"{url}: larger than {MAX_BYTES} bytes")
    if got != want:
        raise SourceError(f"{url}: sha256 is {got}, expected {want}: refusing content that is not the pinned one")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{url}: not UTF-8 text") from exc
    return load_documents(text, url)
