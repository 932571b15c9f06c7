"""Checks and the verdict: the summary table every run ends with, and its exit code."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: statuses that make a run fail, and the exit code each maps to
FAILING = {"fail": 1, "error": 1, "unreachable": 3}
STATUSES = ("pass", "fail", "warn", "n/a", "n/a in lab", "unreachable", "error", "info", "changed")


@dataclass
class Check:
    check: str
    host: str
    status: str
    detail: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown check status {self.status!r}; one of {STATUSES}")

    @property
    def failed(self) -> bool:
        return self.status in FAILING


def exit_code_for(checks: list[Check], execution_error: str | None = None) -> int:
    """0 all passed; 3 a target unreachable; 1 a check failed or a step errored."""
    codes = {FAILING[c.status] for c in checks if c.failed}
    if execution_error == "unreachable":
        codes.add(3)
    elif execution_error == "params":
        codes.add(2)
    elif execution_error:
        codes.add(1)
    for code in (2, 3, 1):
        if code in codes:
            return code
    return 0


def summarize(checks: list[Check]) -> dict[str, int]:
    return dict(Counter(c.status for c in checks))


def append_check(path: Path, check: Check) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(asdict(check), ensure_ascii=False) + "\n")


def load_checks(path: Path) -> list[Check]:
    out: list[Check] = []
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            data: dict[str, Any] = json.loads(line)
            out.append(Check(**data))
        except (json.JSONDecodeError, TypeError, ValueError):
            continue
    return out
