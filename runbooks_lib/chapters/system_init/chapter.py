"""Chapter 01 system-init: the only module that records its checks and figures.

``plan(run)`` surveys and records the verdict (read-only: what apply would change is drift);
``apply(run)`` converges and records the re-read state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .steps import Result, converge, survey

if TYPE_CHECKING:  # pragma: no cover
    from ...run import Run


def record(run: Run, result: Result) -> None:
    """One run.check per check x node (the verdict), plus one "changes" check per node in apply mode;
    figures ``system_init`` and ``na_in_lab`` (how many checks are "n/a in lab", on which proven lab nodes)."""
    for h, nr in result.nodes.items():
        if nr.error:
            run.check("system-init", h, "unreachable" if nr.unreachable else "error", nr.error)
            continue
        for fd in nr.findings:
            run.check(fd.check, h, fd.status, fd.detail)
        if result.mode == "apply":
            if nr.applied:
                failed = [a for a in nr.applied if not a.ok]
                detail = f"{len(nr.applied)} change(s) in {nr.rounds} round(s): " + "; ".join(
                    f"{a.change.check}{' (a command failed)' if not a.ok else ''}" for a in nr.applied)
                run.check("changes", h, "changed", detail + (f" — {len(failed)} with failed commands"
                                                              if failed else ""))
            else:
                run.check("changes", h, "info", "no changes")
            if nr.withheld:
                run.check("changes", h, "drift", f"not applied, destructive: {', '.join(sorted(nr.withheld))} "
                          f"(needs confirm={result.desired.cluster_name})")
    run.figure("system_init", {
        "mode": result.mode, "wall_s": round(result.wall_s, 2), "nodes": len(result.nodes),
        "non_compliant": len(result.non_compliant()), "drift": len(result.drifting()),
        "changes": {h: len(nr.applied) for h, nr in result.nodes.items()},
        "needs_confirm": {h: sorted(nr.withheld) for h, nr in result.nodes.items() if nr.withheld},
    })
    na = [(fd.check, h) for h, nr in result.nodes.items() for fd in nr.findings if fd.status == "n/a in lab"]
    run.figure("na_in_lab", {"checks": len(na), "hosts": sorted({h for _, h in na}),
                             "lab_nodes": sorted(h for h, nr in result.nodes.items() if nr.lab)})


def plan(run: Run) -> Result:
    """Survey and record the verdict (plan mode: pending changes are drift; only what apply cannot fix fails)."""
    result = survey(run)
    if run.params.mode == "plan":
        record(run, result)
    return result


def apply(run: Run) -> Result:
    """Converge and record the re-verified verdict."""
    result = converge(run)
    record(run, result)
    return result
