"""Run a chapter notebook headless with papermill, then always write the reports.

Papermill only turns cell errors into PapermillExecutionError; a cell timeout or a dead kernel
escapes it, and SIGINT/SIGTERM stop the kernel (see :mod:`.execution`). The notebook executes
into a private 0700 temporary directory; only the scrubbed notebook, JSON and HTML reach the
reports directory (files 0600, directories 0700), in every case, with a banner saying where the
run stopped. A failed check is a verdict (PASS, DRIFT, FAIL), never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat

from .chapters import mode_does
from .evidence import STEP_FILE, load_records, utc_now
from .execution import StopSignals, execute
from .params import PROJECT_ROOT, Params, is_secret_path, load_params, secret_values
from .progress import Progress
from .redact import Redactor
from .report import private_dir, render_html, write_index, write_private
from .run import REPORTS_DIR_ENV, RUN_DIR_ENV, tool_versions
from .verdict import exit_code_for, load_checks, summarize, verdict_for

KERNEL_NAME = "runbooks"
DEFAULT_REPORTS = PROJECT_ROOT / "reports"


@dataclass
class RunOutcome:
    exit_code: int
    html: Path
    ipynb: Path
    json: Path
    summary: dict[str, Any]


def ensure_kernel() -> str:
    """A kernelspec pinned to this interpreter (never the notebook author's kernel)."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec_dir = Path(sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"runbooks ({sys.prefix})",
        "language": "python",
        "metadata": {"debugger": False},
    }
    path = spec_dir / "kernel.json"
    if not path.exists() or json.loads(path.read_text()) != spec:
        spec_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(spec, indent=1))
    KernelSpecManager().get_kernel_spec(KERNEL_NAME)  # fails loudly if jupyter cannot see it
    return KERNEL_NAME


def _secret_overrides(overrides: list[str], env: dict[str, str]) -> list[str]:
    """Overrides of secret fields travel as env references, never as clear parameters.
    (A mapping holding secrets, ``--set 'secrets={a: x}'``, is refused by :func:`load_params`.)"""
    out = []
    for spec in overrides:
        key, _, value = spec.partition("=")
        if is_secret_path(key.strip()) and not value.startswith(("env:", "file:")):
            var = f"RUNBOOKS_SECRET_{len(env)}"
            env[var] = value
            out.append(f"{key}=env:{var}")
        else:
            out.append(spec)
    return out


def _classify(exc: BaseException) -> tuple[str, str]:
    name = type(exc).__name__
    text = str(exc)
    if name == "PapermillExecutionError":
        ename = getattr(exc, "ename", "")
        if ename == "TargetUnreachable":
            return "unreachable", text
        if ename == "ParamsError":
            return "params", text
        return "cell error", text
    if name == "CellTimeoutError" or "timed out" in text.lower():
        return "cell timeout", text
    if name == "DeadKernelError" or "kernel died" in text.lower():
        return "kernel died", text
    return name, text


def _scrub(nb: nbformat.NotebookNode, redactor: Redactor) -> nbformat.NotebookNode:
    """Redact every cell source and output, and the papermill parameter records."""
    meta = nb.metadata.get("papermill", {})
    if "parameters" in meta:
        meta["parameters"] = redactor.redact_obj(meta["parameters"])
    for cell in nb.cells:
        cell.source = redactor.redact(cell.source)
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = redactor.redact(out["text"])
            if "traceback" in out:
                out["traceback"] = [redactor.redact(t) for t in out["traceback"]]
            if "evalue" in out:
                out["evalue"] = redactor.redact(out["evalue"])
            for mime, val in list(out.get("data", {}).items()):
                if isinstance(val, str) and not mime.startswith("image/"):
                    out["data"][mime] = redactor.redact(val)
                elif isinstance(val, list):
                    out["data"][mime] = [redactor.redact(v) if isinstance(v, str) else v for v in val]
    return nb


def _stopped_cell(nb: nbformat.NotebookNode) -> int | None:
    """The execution count of the cell that failed or was running when the run stopped."""
    for cell in nb.cells:
        status = cell.get("metadata", {}).get("papermill", {}).get("status")
        if status in ("failed", "running"):
            return cell.get("execution_count")
    return None


def _stopped_step(run_dir: Path, evidence: list[dict[str, Any]]) -> str:
    """The evidence recorder's step in progress, else the step of the last record."""
    try:
        step = (run_dir / STEP_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        step = ""
    if step and step != "run":
        return step
    return str(evidence[-1].get("step", "run")) if evidence else "run"


def _banner(title: str, message: str) -> nbformat.NotebookNode:
    text = message if len(message) < 3000 else message[:1500] + "\n...\n" + message[-1500:]
    return nbformat.v4.new_markdown_cell(
        f"<div style='border:2px solid #cf222e;padding:8px'><b>{title.replace('<', '&lt;')}.</b> "
        "The cells below show what ran up to that point; a traceback, if any, is under the cell "
        "that raised.<pre>" + re.sub(r"\x1b\[[0-9;]*m", "", text).replace("<", "&lt;") + "</pre></div>")


def report_paths(out_dir: Path, chapter: str, params_name: str) -> tuple[Path, Path, Path]:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = out_dir / chapter / f"{stamp}_{params_name}"
    n = 1
    while base.with_suffix(".json").exists() or base.with_suffix(".ipynb").exists():
        n += 1
        base = out_dir / chapter / f"{stamp}-{n}_{params_name}"
    return base.with_suffix(".html"), base.with_suffix(".ipynb"), base.with_suffix(".json")


def _notices(checks_counts: dict[str, int], nb: nbformat.NotebookNode) -> list[str]:
    """Header notices: a report with results "n/a in lab" (as checks or in any output) says so up front."""
    n = checks_counts.get("n/a in lab", 0)
    if n:
        return [f"lab target: {n} check{'s' if n != 1 else ''} n/a in lab (the lab cannot show them; "
                "they prove nothing about a real node)"]
    outputs = json.dumps([c.get("outputs", []) for c in nb.cells], default=str)
    if "n/a in lab" in outputs:
        return ["lab target: some results below are n/a in lab (the lab cannot show them; "
                "they prove nothing about a real node)"]
    return []


def run_notebook(
    notebook: Path,
    chapter: str,
    params: Params,
    overrides: list[str],
    out_dir: Path = DEFAULT_REPORTS,
    cell_timeout: float = 1800.0,
    progress: bool = True,
    detailed: bool = False,
    grace: float = 20.0,
) -> RunOutcome:
    """Execute ``notebook`` with validated ``params`` and write .ipynb, .json, .html, index.

    ``detailed``: exit 4 for DRIFT. ``grace``: seconds an interrupted step gets to clean up."""
    private_dir(out_dir, tighten=(out_dir / "index.html").exists())
    private_dir(out_dir / chapter)
    work = Path(tempfile.mkdtemp(prefix=f"runbooks-{chapter}-"))  # 0700: unscrubbed output lives here
    try:
        with StopSignals() as stops:  # a signal while the report is written no longer loses it
            return _run(notebook, chapter, params, overrides, out_dir, work, cell_timeout, progress, detailed,
                        grace, stops)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(notebook: Path, chapter: str, params: Params, overrides: list[str], out_dir: Path, work: Path,
         cell_timeout: float, progress: bool, detailed: bool, grace: float, stops: StopSignals) -> RunOutcome:
    html_path, ipynb_path, json_path = report_paths(out_dir, chapter, params.name)
    run_dir, executed = work / "run", work / "executed.ipynb"
    run_dir.mkdir(mode=0o700)
    redactor = Redactor(secret_values(params))
    env: dict[str, str] = {}
    safe_overrides = _secret_overrides(overrides, env)
    for value in env.values():
        redactor.add_secret(value)
    env.update({RUN_DIR_ENV: str(run_dir), REPORTS_DIR_ENV: str(out_dir / chapter), "RUNBOOKS_HEADLESS": "1"})
    parameters = {"params_file": params.source, "overrides": safe_overrides, "run_dir": str(run_dir)}
    started, t0 = utc_now(), time.monotonic()
    saved_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        ex = execute(notebook, executed, parameters, ensure_kernel(), cell_timeout=cell_timeout,
                     cwd=notebook.parent, progress=progress, stops=stops, grace=grace,
                     watcher=Progress(chapter, run_dir), ipc_path=work / "kernel")
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    duration = time.monotonic() - t0
    nb = nbformat.read(str(executed if executed.exists() else notebook), as_version=4)
    nb.cells = [c for c in nb.cells if "papermill-error-cell-tag" not in c.get("metadata", {}).get("tags", [])]
    checks = load_checks(run_dir / "checks.jsonl")
    evidence = load_records(run_dir / "evidence.jsonl")
    error: dict[str, Any] | None = None
    if ex.signal:
        name = signal.Signals(ex.signal).name
        step = _stopped_step(run_dir, evidence)
        cell = _stopped_cell(nb)
        error = {"kind": "interrupted", "signal": name, "step": step, "cell": cell,
                 "banner": f"Run interrupted at step {step}" + (f" (In [{cell}])" if cell else "") + f" by {name}",
                 "message": f"{name} received after {duration:.1f} s; the kernel was "
                 + ("killed after the step ignored the interrupt" if ex.kernel_killed else
                    "interrupted (the step's cleanup ran) and shut down") + f" in {ex.stop_s} s."}
    elif ex.error is not None:
        kind, text = _classify(ex.error)
        step, cell = _stopped_step(run_dir, evidence), _stopped_cell(nb)
        where = f" at step {step}" + (f" (In [{cell}])" if cell else "")
        error = {"kind": kind, "step": step, "cell": cell, "banner": f"Run stopped: {kind}{where}",
                 "message": text[-4000:]}
    if error:
        nb.cells.insert(0, _banner(error["banner"], error["message"]))
    nb = _scrub(nb, redactor)
    meta = _json(run_dir / "meta.json")
    figures = _json(run_dir / "figures.json")
    exit_code = exit_code_for(checks, error["kind"] if error else None, detailed=detailed)
    if stops.exit_code:  # interrupted, or a signal came after the last cell: run-all starts nothing more
        exit_code = stops.exit_code
    counts = summarize(checks)
    summary: dict[str, Any] = {
        "chapter": chapter, "params": params.name, "params_file": params.source,
        "mode": params.mode, "mode_does": mode_does(chapter, params.mode), "cluster_name": params.cluster_name,
        "targets": meta.get("targets", []), "started_utc": started, "duration_s": round(duration, 2),
        "status": verdict_for(checks, error["kind"] if error else None),
        "pending": sum(1 for c in checks if c.drift), "exit_code": exit_code,
        "notices": _notices(counts, nb),
        "execution_error": error, "counts": counts, "checks": [c.__dict__ for c in checks], "figures": figures,
        "evidence": evidence, "tools": meta.get("tools") or tool_versions(),
        "html": html_path.name, "ipynb": ipynb_path.name,
    }
    summary = redactor.redact_obj(summary)  # type: ignore[assignment]
    write_private(ipynb_path, nbformat.writes(nb))
    write_private(json_path, json.dumps(summary, indent=2, default=str))
    write_private(html_path, render_html(nb, summary))
    write_index(out_dir)
    return RunOutcome(exit_code, html_path, ipynb_path, json_path, summary)


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}


def validate(params_file: str | None, overrides: list[str], mode: str | None) -> tuple[Params, list[str]]:
    """Validate parameters before anything runs; ``--mode`` becomes an override."""
    ovr = list(overrides) + ([f"mode={mode}"] if mode else [])
    return load_params(params_file, ovr), ovr
