"""Drift and failure: what apply would change is drift, what apply cannot fix (or left differing) fails.

- :func:`expected_fixes`: a failing check that another check's pending change is expected to fix
  (containerd not installed -> the packages step) is drift, naming that change, in a plan.
- :func:`mark_confirm`: a destructive change (``Change.destructive``) needs ``confirm=<cluster name>``;
  without it apply leaves it, and its check stays drift "needs confirm".
- :func:`settle`: after apply, anything still differing is a failure, except what waits for confirm.
"""

from __future__ import annotations

from .checks import Desired, Finding, Node, evaluate
from .gather import NodeFacts

#: check -> the checks whose changes are expected to fix it (apply runs those first)
DEPENDS = {
    "host.tools": ("packages",),
    "host.resolvable": ("hosts",),
    "containerd.config": ("packages",),
    "containerd.service": ("packages", "containerd.config"),
    "containerd.cri": ("packages", "containerd.config", "containerd.service"),
    "chrony.config": ("packages",),
    "chrony.service": ("packages",),
    "chrony.sync": ("packages", "chrony.config", "chrony.service"),
    "kubelet.enabled": ("kube.packages",),
}
NEEDS_CONFIRM = "needs confirm"


def plan_findings(f: NodeFacts, node: Node, d: Desired) -> list[Finding]:
    """Every per-node finding as a plan reports it (pass / drift / fail / n/a ...)."""
    return expected_fixes(evaluate(f, node, d))


def expected_fixes(findings: list[Finding]) -> list[Finding]:
    """Failing checks that a pending change of another check should fix become drift (in place)."""
    drifting = {fd.check for fd in findings if fd.status == "drift"}
    for fd in findings:
        deps = [d for d in DEPENDS.get(fd.check, ()) if d in drifting]
        if fd.status == "fail" and deps:
            fd.status = "drift"
            names = deps[0] if len(deps) == 1 else f"{', '.join(deps[:-1])} and {deps[-1]}"
            fd.detail += f"; expected to be fixed by apply's {names} change{'s' if len(deps) > 1 else ''}"
            drifting.add(fd.check)
    return findings


def waiting(findings: list[Finding]) -> set[str]:
    """Checks whose pending change is destructive (needs confirm)."""
    return {fd.check for fd in findings if fd.status == "drift" and fd.change is not None
            and fd.change.destructive}


def mark_confirm(findings: list[Finding], cluster_name: str, confirmed: bool) -> list[Finding]:
    """Say on each destructive drift that apply needs confirm (or that it has it)."""
    for fd in findings:
        if fd.status == "drift" and fd.change is not None and fd.change.destructive:
            how = "confirmed" if confirmed else f"{NEEDS_CONFIRM}={cluster_name}"
            fd.detail += f" (destructive: {fd.change.destructive}; {how})"
    return findings


def settle(findings: list[Finding], withheld: set[str], cluster_name: str) -> list[Finding]:
    """After apply: still differing -> fail, unless it waits for a change withheld for confirm."""
    for fd in findings:
        if fd.status != "drift":
            continue
        waits_on = [d for d in DEPENDS.get(fd.check, ()) if d in withheld]
        if fd.check in withheld:
            fd.detail = f"{NEEDS_CONFIRM}={cluster_name}: not applied (destructive); {fd.detail}"
        elif waits_on:
            fd.detail = (f"{NEEDS_CONFIRM}={cluster_name}: waits for the {', '.join(waits_on)} change "
                         f"(destructive, not applied); {fd.detail}")
        else:
            fd.status = "fail"
            fd.detail = f"still differs after apply: {fd.detail}"
    return findings
