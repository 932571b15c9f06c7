"""The evidence recorder: the one place every command and API call is written down.

Each record holds step, target, command, exit code, stdout, stderr, duration, UTC start and
status. Text is redacted *before* it is stored, and capped (head and tail kept, the omitted
byte count shown). Records are appended to a JSON-lines file as they happen, so a run whose
kernel dies still leaves its evidence behind.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .redact import Redactor, default_redactor

DEFAULT_CAP = 16 * 1024
#: the file beside the evidence file naming the step in progress
STEP_FILE = "current_step"


def cap_text(text: str, limit: int = DEFAULT_CAP) -> str:
    """Keep the head and tail of ``text`` within ``limit`` bytes and say how much was omitted."""
    raw = text.encode("utf-8", "replace")
    if len(raw) <= limit:
        return text
    half = limit // 2
    head = raw[:half].decode("utf-8", "ignore")
    tail = raw[-half:].decode("utf-8", "ignore")
    omitted = len(raw) - len(head.encode()) - len(tail.encode())
    return f"{head}\n... [{omitted} bytes omitted] ...\n{tail}"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Record:
    """One command or API call, already redacted."""

    kind: str  # "command" | "api" | "note"
    step: str
    target: str
    command: str
    exit_code: int | None
    stdout: str
    stderr: str
    duration_s: float
    started_utc: str
    status: str  # "ok" | "failed" | "unreachable" | "timeout" | "interrupted" | "error" | "info"
    extra: dict[str, Any] = field(default_factory=dict)


class Recorder:
    """Collects records in memory and appends them to ``path`` (JSON lines) when set."""

    def __init__(
        self,
        path: Path | None = None,
        redactor: Redactor | None = None,
        cap: int = DEFAULT_CAP,
    ) -> None:
        self.path = path
        self.redactor = redactor or default_redactor()
        self.cap = cap
        self.records: list[Record] = []
        self._lock = threading.Lock()
        self._step = "run"

    @property
    def step(self) -> str:
        return self._step

    @contextlib.contextmanager
    def in_step(self, name: str) -> Iterator[None]:
        """Label the records made inside the block with step ``name`` (also written next to the
        evidence file, so the runner can say at which step an interrupted run stopped)."""
        previous, self._step = self._step, name
        self._mark_step(name)
        try:
            yield
        finally:
            self._step = previous
        self._mark_step(previous)  # only when the block did not raise: the marker keeps the failed step

    def _mark_step(self, name: str) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.with_name(STEP_FILE).write_text(name, encoding="utf-8")

    def _clean(self, text: str) -> str:
        return cap_text(self.redactor.redact(text or ""), self.cap)

    def record(
        self,
        *,
        kind: str,
        target: str,
        command: str,
        exit_code: int | None,
        stdout: str = "",
        stderr: str = "",
        duration_s: float = 0.0,
        started_utc: str | None = None,
        status: str | None = None,
        step: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Record:
        if status is None:
            status = "ok" if exit_code == 0 else "failed"
        rec = Record(
            kind=kind,
            step=step or self._step,
            target=target,
            command=self.redactor.redact(command),
            exit_code=exit_code,
            stdout=self._clean(stdout),
            stderr=self._clean(stderr),
            duration_s=round(duration_s, 4),
            started_utc=started_utc or utc_now(),
            status=status,
            extra=self.redactor.redact_obj(extra or {}),  # type: ignore[arg-type]
        )
        with self._lock:
            self.records.append(rec)
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(asdict(rec), ensure_ascii=False) + "\n")
        return rec

    def note(self, text: str, target: str = "-") -> Record:
        return self.record(kind="note", target=target, command=text, exit_code=None, status="info")

    @contextlib.contextmanager
    def timed(self) -> Iterator[dict[str, Any]]:
        """Measure a block: yields a dict filled with ``started_utc`` and, after, ``duration_s``."""
        info: dict[str, Any] = {"started_utc": utc_now()}
        t0 = time.monotonic()
        try:
            yield info
        finally:
            info["duration_s"] = time.monotonic() - t0


def load_records(path: Path) -> list[dict[str, Any]]:
    """Read a JSON-lines evidence file; a torn last line (killed kernel) is skipped."""
    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


_current: Recorder | None = None


def current() -> Recorder:
    """The recorder of the current run (a memory-only one when no run was started)."""
    global _current
    if _current is None:
        _current = Recorder()
    return _current


def set_current(recorder: Recorder) -> None:
    global _current
    _current = recorder
