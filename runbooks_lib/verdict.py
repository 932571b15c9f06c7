"""Checks and the verdict: PASS, DRIFT (changes pending) or FAIL, and the exit code.

A check's status is one of :data:`STATUSES`. ``drift`` means "apply would change this" (a plan
that finds work to do); ``fail``/``error`` mean something apply cannot fix, or an error;
``unreachable`` names a host that could not be reached.

Exit codes: 0 PASS, 0 DRIFT (4 with ``detailed``), 1 FAIL, 2 usage, 3 unreachable, 130 interrupted.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: statuses that make a run fail, and the exit code each maps to
FAILING = {"fail": 1, "error": 1, "unreachable": 3}
#: statuses that mean "apply would change this"
DRIFTING = frozenset({"drift"})
STATUSES = ("pass", "drift", "fail", "warn", "n/a", "n/a in lab", "unreachable", "error", "info", "changed")
EXIT_DRIFT = 4
EXIT_INTERRUPTED = 130

#: status colours (checks, evidence records, verdicts: keys are lowercase, see :func:`status_color`)
COLORS = {
    "pass": "#1a7f37", "ok": "#1a7f37", "changed": "#0969da", "warn": "#9a6700",
    "fail": "#cf222e", "error": "#cf222e", "unreachable": "#8250df", "timeout": "#cf222e",
    "drift": "#bc4c00", "n/a": "#6e7781", "n/a in lab": "#6e7781", "info": "#57606a", "failed": "#cf222e",
    "missing": "#9a6700", "unavailable": "#6e7781", "differs": "#cf222e", "interrupted": "#8250df",
}
#: order of statuses in recap lines and tables: what needs attention first
ATTENTION = ("unreachable", "error", "fail", "drift", "warn", "changed", "n/a", "n/a in lab", "info", "pass")


def status_color(status: str) -> str:
    """The colour of a check/record status or a verdict ("PASS", "FAIL (interrupted)", "DRIFT (3 ...)")."""
    key = status.strip().lower()
    return COLORS.get(key) or COLORS.get(key.split(" (")[0], "#57606a")


@dataclass
class Check:
    check: str
    host: str
    status: str
    detail: str = ""
    step: str = ""  # the evidence recorder's step when the check was made (links a check to its evidence)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown check status {self.status!r}; one of {STATUSES}")

    @property
    def failed(self) -> bool:
        return self.status in FAILING

    @property
    def drift(self) -> bool:
        return self.status in DRIFTING


def verdict_for(checks: list[Check], execution_error: str | None = None) -> str:
    """PASS, DRIFT (n changes pending) or FAIL (a failed check, or any execution error)."""
    if execution_error or any(c.failed for c in checks):
        return "FAIL"
    if any(c.drift for c in checks):
        return "DRIFT"
    return "PASS"


def verdict_label(verdict: str, pending: int) -> str:
    """"PASS", "FAIL" or "DRIFT (3 changes pending)"."""
    if verdict == "DRIFT":
        return f"DRIFT ({pending} change{'s' if pending != 1 else ''} pending)"
    return verdict


def exit_code_for(checks: list[Check], execution_error: str | None = None, detailed: bool = False) -> int:
    """0 PASS or DRIFT (4 for DRIFT when ``detailed``); 3 unreachable; 2 params; 130 interrupted; 1 FAIL."""
    codes = {FAILING[c.status] for c in checks if c.failed}
    if execution_error == "unreachable":
        codes.add(3)
    elif execution_error == "params":
        codes.add(2)
    elif execution_error == "interrupted":
        codes.add(EXIT_INTERRUPTED)
    elif execution_error:
        codes.add(1)
    for code in (EXIT_INTERRUPTED, 2, 3, 1):
        if code in codes:
            return code
    if detailed and any(c.drift for c in checks):
        return EXIT_DRIFT
    return 0


def summarize(checks: list[Check]) -> dict[str, int]:
    return dict(Counter(c.status for c in checks))


def recap(checks: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    """Per host (in order of first appearance), how many checks ended in each status."""
    out: dict[str, Counter[str]] = {}
    for c in checks:
        out.setdefault(str(c["host"]), Counter())[str(c["status"])] += 1
    return out


#: recap words for statuses (``passed=`` and ``failed=`` as Ansible writes them; ``pass=N`` reads as a
#: mount option's password to the redactor)
_RECAP_WORD = {"pass": "passed", "fail": "failed", "n/a": "n/a", "n/a in lab": "n/a_in_lab"}


def recap_line(host: str, counts: Counter[str] | dict[str, int], width: int = 0) -> str:
    """Ansible's PLAY RECAP shape: ``lab-w1 : passed=31 drift=4 failed=0 unreachable=0 warn=1 n/a=5``
    (passed, drift, failed and unreachable always; other statuses when present)."""
    always = ("pass", "drift", "fail", "unreachable")
    order = [*always, *(s for s in ATTENTION if s not in always and counts.get(s))]
    return f"{host:<{width}} : " + " ".join(f"{_RECAP_WORD.get(s, s)}={counts.get(s, 0)}" for s in order)


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
