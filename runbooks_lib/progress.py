"""The console line while a notebook runs: ``[4/9] system-init · survey · lab-w2 · 3 records``.

It reads what the kernel already writes for the report: the evidence recorder's step marker and
the evidence file (step and host of the newest record), plus the cell being executed and the
last line that cell printed (a long benchmark's "N=1000 ..." lines). On a terminal the line is
rewritten in place; otherwise a line is printed when the cell, step, host or printed line changes.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import TextIO

from .evidence import STEP_FILE


class Progress:
    """Follows one run's step, host and cell; :meth:`tick` prints (main thread)."""

    def __init__(self, chapter: str, run_dir: Path, stream: TextIO | None = None) -> None:
        self.chapter = chapter
        self.run_dir = run_dir
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._lock = threading.Lock()
        self.cell_index = 0
        self.cell_total = 0
        self.said = ""  # the last line the running cell printed
        self.step = ""
        self.host = ""
        self.records = 0
        self._offset = 0
        self._partial = b""
        self._shown = ""
        self._shown_key: tuple[int, str, str, str] | None = None

    # called from papermill's thread
    def on_cell(self, index: int, total: int) -> None:
        with self._lock:
            self.cell_index, self.cell_total, self.said = index + 1, total, ""

    def on_text(self, text: str) -> None:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if lines:
            with self._lock:
                self.said = lines[-1][:80]

    # main thread
    def _read_evidence(self) -> None:
        path = self.run_dir / "evidence.jsonl"
        try:
            with path.open("rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except OSError:
            return
        self._offset += len(chunk)
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            self.records += 1
            self.host = str(rec.get("target", ""))
            self.step = str(rec.get("step", ""))

    def line(self) -> str:
        """``[cell/total] chapter · step · host · N records · last printed line``."""
        self._read_evidence()
        try:
            marked = (self.run_dir / STEP_FILE).read_text(encoding="utf-8").strip()
        except OSError:
            marked = ""
        step = marked if marked and marked != "run" else self.step
        with self._lock:
            cell = f"[{self.cell_index}/{self.cell_total}] " if self.cell_total else ""
            said = self.said
        parts = [self.chapter, step or "starting", self.host if step == self.step else ""]
        text = cell + " · ".join(p for p in parts if p)
        if self.records:
            text += f" · {self.records} record{'s' if self.records != 1 else ''}"
        return text + (f" · {said}" if said else "")

    def tick(self) -> None:
        text = self.line()
        if text == self._shown:
            return
        self._shown = text
        if self.tty:
            self.stream.write("\r\033[K" + text[:200])
        else:
            key = (self.cell_index, self.step, self.host, self.said)
            if key == self._shown_key:
                return
            self._shown_key = key
            self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty and self._shown:
            self.stream.write("\n")
            self.stream.flush()
