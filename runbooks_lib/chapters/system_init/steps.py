"""Chapter 01's steps: read every node (``survey``) and converge it (``converge``), returning a :class:`Result`.

Nothing here records checks; :mod:`.chapter` turns a Result into the run's checks and figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ...changes import Change
from ...changes import apply as apply_change
from ...transport.base import CommandResult, Transport
from . import drift, labproof
from .checks import CHECKS, Desired, Finding, Node, desired_from, pending_changes, uniqueness
from .gather import NodeFacts, gather

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ...run import Run

MAX_ROUNDS = 3


@dataclass
class Applied:
    change: Change
    results: list[CommandResult]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


@dataclass
class NodeResult:
    host: str
    facts: NodeFacts | None = None
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None
    unreachable: bool = False
    applied: list[Applied] = field(default_factory=list)
    rounds: int = 0
    lab: bool = False                       # proven a lab node (flagged lab and its facts agree)
    withheld: set[str] = field(default_factory=set)  # destructive changes left for lack of confirm

    @property
    def planned(self) -> list[Change]:
        return pending_changes(self.findings)


@dataclass
class Result:
    mode: str
    nodes: dict[str, NodeResult]
    wall_s: float
    desired: Desired

    def findings_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [{"check": fd.check, "host": h, "status": fd.status, "detail": fd.detail}
                for h, nr in self.nodes.items() for fd in nr.findings]
        for h, nr in self.nodes.items():
            if nr.error:
                rows.append({"check": "gather", "host": h, "status": "unreachable" if nr.unreachable else "error",
                             "detail": nr.error})
        return pd.DataFrame(rows, columns=["check", "host", "status", "detail"])

    def matrix(self) -> pd.DataFrame:
        """checks x nodes -> status."""
        import pandas as pd

        data: dict[str, dict[str, str]] = {}
        for h, nr in self.nodes.items():
            col = {fd.check: fd.status for fd in nr.findings}
            if nr.error:
                col = {c: ("unreachable" if nr.unreachable else "error") for c in CHECKS}
            data[h] = col
        return pd.DataFrame(data, index=list(CHECKS)).fillna("")

    def status(self, check: str, host: str) -> str:
        return next((fd.status for fd in self.nodes[host].findings if fd.check == check), "")

    def non_compliant(self) -> list[tuple[str, str]]:
        """(check, host) pairs whose status fails the run."""
        return [(fd.check, h) for h, nr in self.nodes.items() for fd in nr.findings
                if fd.status in ("fail", "error")]

    def drifting(self) -> list[tuple[str, str]]:
        """(check, host) pairs apply would change (or left for confirm)."""
        return [(fd.check, h) for h, nr in self.nodes.items() for fd in nr.findings if fd.status == "drift"]


def context(run: Run) -> tuple[Desired, dict[str, Node]]:
    p = run.params
    nodes = {h.name: Node(h.name, h.address, list(h.roles), h.lab) for h in p.selected_hosts()}
    return desired_from(p), nodes




def _assess(t: Transport, node: Node, d: Desired) -> NodeResult:
    """Read one node; evaluate it as a lab node only when its facts prove one."""
    facts = gather(t, d.tools, d.sysctl_keys())
    proven, lab_fd = labproof.prove(node, facts.lab, facts.hostname, labproof.lab_known_hosts)
    findings = drift.plan_findings(facts, proven, d)
    findings.insert(1, lab_fd)
    return NodeResult(t.name, facts, findings, lab=proven.lab)


def _survey_node(t: Transport, node: Node, d: Desired, confirmed: bool) -> NodeResult:
    nr = _assess(t, node, d)
    drift.mark_confirm(nr.findings, d.cluster_name, confirmed)
    return nr


def _converge_node(t: Transport, node: Node, d: Desired, confirmed: bool) -> NodeResult:
    """Apply what differs (destructive changes only when confirmed), re-read, repeat while something
    applicable remains; then what still differs fails, and what waits for confirm stays drift."""
    nr = _assess(t, node, d)
    tried: set[str] = set()
    applied, rounds = nr.applied, 0
    for rnd in range(1, MAX_ROUNDS + 1):
        todo = [c for c in nr.planned if _key(c) not in tried and (confirmed or not c.destructive)]
        if not todo:
            break
        rounds = rnd
        for change in todo:
            tried.add(_key(change))
            t.recorder.note(f"{t.name}: apply [{change.check}] {change.summary}")
            applied.append(Applied(change, apply_change(t, change)))
        nr = _assess(t, node, d)
    nr.applied, nr.rounds = applied, rounds
    nr.withheld = set() if confirmed else drift.waiting(nr.findings)
    for check in sorted(nr.withheld):
        t.recorder.note(f"{t.name}: not applied [{check}]: destructive, needs confirm={d.cluster_name}")
    drift.settle(nr.findings, nr.withheld, d.cluster_name)
    return nr


def _key(c: Change) -> str:
    return f"{c.check}|{c.path}|{c.content}|{'&&'.join(c.commands)}"


def _run_fleet(run: Run, fn: Any, nodes: dict[str, Node], d: Desired, mode: str) -> Result:
    t0 = time.monotonic()
    fleet = run.fleet()
    timeout = run.params.ssh.command_timeout * (MAX_ROUNDS * 4 if mode == "apply" else 2) + 60
    confirmed = run.params.confirmed
    outcomes = fleet.map(lambda t: fn(t, nodes[t.name], d, confirmed), timeout=timeout)
    results: dict[str, NodeResult] = {}
    for h, oc in outcomes.items():
        if oc.ok and oc.value is not None:
            results[h] = oc.value
        else:
            results[h] = NodeResult(h, error=oc.error, unreachable=oc.unreachable)
    facts = {h: nr.facts for h, nr in results.items() if nr.facts is not None}
    proven = {h: replace(nodes[h], lab=results[h].lab) for h in facts}
    for h, extra in uniqueness(facts, proven).items():
        fs = results[h].findings
        pos = next((i for i, fd in enumerate(fs) if fd.check == "host.systemd"), len(fs))
        fs[pos:pos] = extra
    return Result(mode, results, time.monotonic() - t0, d)


def survey(run: Run) -> Result:
    """Read every node and evaluate every check (read-only; nothing recorded as checks)."""
    d, nodes = context(run)
    with run.recorder.in_step("survey"):
        return _run_fleet(run, _survey_node, nodes, d, "plan")


def converge(run: Run) -> Result:
    """apply mode: change what differs on every node, then re-read (the Result is the re-read state)."""
    if run.params.mode != "apply":
        raise PermissionError("system-init changes nodes only with mode=apply (this run is plan mode)")
    d, nodes = context(run)
    with run.recorder.in_step("apply"):
        return _run_fleet(run, _converge_node, nodes, d, "apply")


def changes_text(nr: NodeResult) -> str:
    """The exact planned changes for one node (diffs and commands), or "no changes"."""
    planned = nr.planned
    if nr.error:
        return f"{nr.host}: {nr.error}"
    if not planned:
        return f"{nr.host}: no changes"
    return f"{nr.host}: {len(planned)} change(s)\n\n" + "\n\n".join(c.describe() for c in planned)


def applied_text(nr: NodeResult) -> str:
    if not nr.applied:
        return f"{nr.host}: no changes"
    lines = [f"{nr.host}: {len(nr.applied)} change(s) applied in {nr.rounds} round(s)"]
    for a in nr.applied:
        lines.append(f"  [{a.change.check}] {a.change.summary}: {'ok' if a.ok else 'FAILED'}")
        for r in a.results:
            if not r.ok:
                lines.append(f"    $ {r.command} -> exit {r.exit_code}: {(r.stderr or r.stdout).strip()[-300:]}")
    return "\n".join(lines)
