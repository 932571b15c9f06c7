"""The ``runbooks`` command: list, run, run-all, reports, lab, schedule.

Exit codes: 0 PASS or DRIFT (4 for DRIFT with --detailed-exitcode); 1 FAIL (a check failed or a
step errored); 2 bad usage or invalid parameters (nothing touched); 3 a target could not be
reached; 130 / 143 interrupted by SIGINT / SIGTERM (the report is still written).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import chapters
from .params import DEFAULT_PARAMS, ParamsError

#: run-all's exit code is the worst of its chapters', in this order (first is worst)
SEVERITY = (143, 130, 2, 1, 3, 4, 0)


def worst_exit(codes: list[int]) -> int:
    """The most severe exit code: interrupted > usage > FAIL > unreachable > DRIFT (4) > PASS."""
    rank = {c: i for i, c in enumerate(SEVERITY)}
    return min(codes, key=lambda c: rank.get(c, rank[1]), default=0)


def _out_problem(out: Path) -> str | None:
    """--out must be (or become) a directory: no file in the way, itself or above."""
    for p in (out, *out.parents):
        if p.exists():
            return None if p.is_dir() else f"--out {out}: {p} is a file, not a directory"
    return None


def _notebook_problem(nb: Path) -> str | None:
    import nbformat

    if not nb.exists():
        return f"notebook not found: {nb}"
    if not nb.is_file():
        return f"notebook {nb} is not a file"
    try:
        nbformat.read(str(nb), as_version=4)
    except (OSError, ValueError, UnicodeDecodeError, nbformat.reader.NotJSONError) as exc:
        return f"notebook {nb} is not a readable .ipynb: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}"
    return None


def _usage_problems(args: argparse.Namespace) -> list[str]:
    """Problems with the CLI arguments themselves (the parameter file is load_params' job)."""
    problem = _out_problem(Path(args.out).expanduser())
    return [problem] if problem else []


def lab_hint(exc: ParamsError) -> list[str]:
    """When the missing inventory is a lab's: how to bring that lab up."""
    lab = lab_of(exc.missing_inventory)
    return [f"the lab {lab!r} is not up: runbooks lab up --name {lab} (run-all does it itself, unless --no-lab)"] if lab else []


def _refuse(problems: list[str]) -> int:
    """Exit 2: print each problem, before anything was contacted."""
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    print("nothing was contacted.", file=sys.stderr)
    return 2


def _cmd_list(args: argparse.Namespace) -> int:
    for ch in chapters.CHAPTERS:
        state = "" if ch.built else "  [not built yet]"
        print(f"{ch.number:02d}  {ch.name:<17} {ch.description}{state}")
    return 0


@dataclass
class ChapterResult:
    """One chapter of ``run-all``: what its summary row shows."""

    name: str
    exit_code: int
    verdict: str
    counts: dict[str, int] = field(default_factory=dict)
    duration_s: float | None = None
    report: Path | None = None


def _run_one(notebook: Path, name: str, args: argparse.Namespace) -> ChapterResult:
    """Run one notebook."""
    from .report import verdict_text
    from .runner import run_notebook, validate

    if problems := _usage_problems(args):
        return ChapterResult(name, _refuse(problems), "not run")
    try:
        params, overrides = validate(args.params, args.set or [], args.mode)
    except ParamsError as exc:
        return ChapterResult(name, _refuse([f"invalid parameters: {exc}", *lab_hint(exc)]), "not run")
    print(f"running {name} ({notebook.name}) in {params.mode} mode with {params.source}", file=sys.stderr)
    outcome = run_notebook(notebook, name, params, overrides, Path(args.out).expanduser(), args.cell_timeout,
                           progress=not args.quiet, detailed=args.detailed_exitcode)
    s = outcome.summary
    print(f"{name}: {verdict_text(s)} (exit {outcome.exit_code}); checks: "
          + (", ".join(f"{n} {k}" for k, n in sorted(s['counts'].items())) or "none"))
    if s.get("execution_error"):
        print(s["execution_error"]["banner"], file=sys.stderr)
    print(f"report: {outcome.html}")
    return ChapterResult(name, outcome.exit_code, verdict_text(s), dict(s.get("counts") or {}),
                         s.get("duration_s"), outcome.html)


def _cmd_run(args: argparse.Namespace) -> int:
    target = args.chapter
    if target.endswith(".ipynb"):
        nb = Path(target).expanduser()
        if problem := _notebook_problem(nb):
            return _refuse([problem])
        return _run_one(nb, nb.stem, args).exit_code
    try:
        ch = chapters.find(target)
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    if not ch.built:
        print(f"chapter {ch.name} is not built yet ({ch.notebook} does not exist)", file=sys.stderr)
        return 2
    return _run_one(ch.notebook, ch.name, args).exit_code


def lab_of(inventory: Path | str | None) -> str | None:
    """The lab whose inventory this is (``.lab/NAME/inventory.yaml``, written by ``runbooks lab up``), else None."""
    if not inventory or not importlib.util.find_spec("runbooks_lib.lab.engine"):
        return None
    from .lab.engine import STATE_ROOT

    p = Path(inventory).expanduser().resolve()
    return p.parent.name if p.name == "inventory.yaml" and p.parent.parent == STATE_ROOT.resolve() else None


def _lab_up(name: str, why: str) -> str | None:
    """Bring lab ``name`` up (``runbooks lab up --name NAME``); the reason it did not come up, else None."""
    from .lab import lab as lab_api
    from .lab.engine import EngineError

    print(f"bringing up the lab {name!r} ({why}): runbooks lab up --name {name} ...", file=sys.stderr)
    try:
        lab_api.up(name)
    except (lab_api.LabError, EngineError) as exc:
        return f"the lab {name!r} did not come up: {exc}"
    return None


def _cmd_run_all(args: argparse.Namespace) -> int:
    """The main job: bring the lab up when the parameters target one (their inventory is a lab's), run every
    built chapter. Exits with the worst chapter's code (see :func:`worst_exit`)."""
    from .report import write_index
    from .runner import validate

    if problems := _usage_problems(args):
        return _refuse(problems)
    try:
        params, _ = validate(args.params, args.set or [], args.mode)
    except ParamsError as exc:
        # a fresh clone: the lab's inventory is written by `lab up` (the rest is validated once it is up)
        lab = None if args.no_lab else lab_of(exc.missing_inventory)
        if lab is None:
            return _refuse([f"invalid parameters: {exc}", *lab_hint(exc)])
        if problem := _lab_up(lab, "its inventory does not exist yet"):
            return _refuse([problem])
        try:
            params, _ = validate(args.params, args.set or [], args.mode)
        except ParamsError as again:
            return _refuse([f"invalid parameters: {again}"])
    else:
        lab = None if args.no_lab else lab_of(params.inventory)
        if lab is not None:
            from .lab import lab as lab_api

            if not lab_api.is_up(lab) and (problem := _lab_up(lab, "it is not up")):
                return _refuse([problem])
    results = []
    for ch in chapters.CHAPTERS:
        if not ch.built:
            print(f"skip {ch.name}: not built yet", file=sys.stderr)
            continue
        result = _run_one(ch.notebook, ch.name, args)
        results.append(result)
        if result.exit_code in (130, 143):
            print("interrupted: no further chapter started", file=sys.stderr)
            break
    worst = worst_exit([r.exit_code for r in results])
    index = write_index(Path(args.out).expanduser())
    print("\n" + summary_table(results, Path.cwd()))
    print(f"index: {index}")
    print(f"exit code: {worst} (the worst chapter's)")
    return worst


def summary_table(results: list[ChapterResult], cwd: Path) -> str:
    """run-all's closing table: chapter, verdict, check counts, duration, exit code, report."""
    from .verdict import ATTENTION

    def counts(r: ChapterResult) -> str:
        order = sorted(r.counts, key=lambda s: ATTENTION.index(s) if s in ATTENTION else 99)
        return ", ".join(f"{r.counts[s]} {s}" for s in order) or "-"

    def where(r: ChapterResult) -> str:
        if r.report is None:
            return "-"
        return str(r.report.relative_to(cwd)) if r.report.is_relative_to(cwd) else str(r.report)

    rows = [("chapter", "verdict", "checks", "duration", "exit", "report")]
    rows += [(r.name, r.verdict, counts(r), f"{r.duration_s:.0f} s" if r.duration_s is not None else "-",
              str(r.exit_code), where(r)) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 6)
    return "\n".join(lines)


def _cmd_reports(args: argparse.Namespace) -> int:
    from .report import write_index

    out = Path(args.out).expanduser()
    if problem := _out_problem(out):
        return _refuse([problem])
    print(f"index: {write_index(out)}")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from .params import schema_json

    text = schema_json()
    if args.write:
        target = Path(DEFAULT_PARAMS).parent / "schema.json"
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target}")
    else:
        print(text, end="")
    return 0


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--params", help=f"parameter file (default {DEFAULT_PARAMS})")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a parameter (repeatable)")
    p.add_argument("--mode", choices=["plan", "apply"], help="plan (read-only, default) or apply")
    p.add_argument("--out", default=str(Path(DEFAULT_PARAMS).parent.parent / "reports"),
                   help="reports directory")
    p.add_argument("--cell-timeout", type=float, default=1800.0, help="seconds per cell (default 1800)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--detailed-exitcode", action="store_true",
                   help="exit 4 when the verdict is DRIFT (changes pending), for schedulers that alert on it")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runbooks", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="chapters with one-line descriptions").set_defaults(func=_cmd_list)
    run = sub.add_parser("run", help="run a chapter headless and write its report")
    run.add_argument("chapter", help="name, number, or a path to a .ipynb")
    _add_run_options(run)
    run.set_defaults(func=_cmd_run)
    run_all = sub.add_parser("run-all", help="the main job: lab up if needed, every built chapter")
    _add_run_options(run_all)
    run_all.add_argument("--no-lab", action="store_true", help="do not bring the lab up")
    run_all.set_defaults(func=_cmd_run_all)
    reports = sub.add_parser("reports", help="rebuild reports/index.html")
    reports.add_argument("--out", default=str(Path(DEFAULT_PARAMS).parent.parent / "reports"))
    reports.set_defaults(func=_cmd_reports)
    schema = sub.add_parser("schema", help="the parameter file's JSON schema")
    schema.add_argument("--write", action="store_true", help="write parameters/schema.json")
    schema.set_defaults(func=_cmd_schema)
    if importlib.util.find_spec("runbooks_lib.lab.cli"):
        from .lab.cli import add_lab_parser

        add_lab_parser(sub)
    if importlib.util.find_spec("runbooks_lib.schedule"):
        from .schedule import add_schedule_parser

        add_schedule_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:  # Ctrl-C outside a notebook run (which handles it itself)
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
