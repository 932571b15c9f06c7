"""Run a chapter notebook headless with papermill, then always write the reports.

Papermill only turns cell errors into PapermillExecutionError; a cell timeout or a dead kernel
escapes it. This runner catches all three, keeps what ran (papermill saves after every cell),
adds a banner, scrubs secrets and converts to offline HTML in every case.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat

from .evidence import load_records, utc_now
from .params import PROJECT_ROOT, Params, is_secret_path, load_params, secret_values
from .redact import Redactor
from .report import render_html, write_index
from .run import RUN_DIR_ENV, tool_versions
from .verdict import exit_code_for, load_checks, summarize

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
    """Overrides of secret fields travel as env references, never as clear parameters."""
    out = []
    for i, spec in enumerate(overrides):
        key, _, value = spec.partition("=")
        if is_secret_path(key.strip()) and not value.startswith(("env:", "file:")):
            var = f"RUNBOOKS_SECRET_{i}"
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
        if ename == "ChecksFailed":
            return "checks", text
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


def _banner(kind: str, message: str) -> nbformat.NotebookNode:
    text = message if len(message) < 3000 else message[:1500] + "\n...\n" + message[-1500:]
    return nbformat.v4.new_markdown_cell(
        f"<div style='border:2px solid #cf222e;padding:8px'><b>Run stopped: {kind}.</b> "
        "The cells below show what ran up to that point.<pre>"
        + re.sub(r"\x1b\[[0-9;]*m", "", text).replace("<", "&lt;") + "</pre></div>")


def report_paths(out_dir: Path, chapter: str, params_name: str) -> tuple[Path, Path, Path]:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = out_dir / chapter / f"{stamp}_{params_name}"
    n = 1
    while base.with_suffix(".json").exists() or base.with_suffix(".ipynb").exists():
        n += 1
        base = out_dir / chapter / f"{stamp}-{n}_{params_name}"
    return base.with_suffix(".html"), base.with_suffix(".ipynb"), base.with_suffix(".json")


def run_notebook(
    notebook: Path,
    chapter: str,
    params: Params,
    overrides: list[str],
    out_dir: Path = DEFAULT_REPORTS,
    cell_timeout: float = 1800.0,
    progress: bool = True,
) -> RunOutcome:
    """Execute ``notebook`` with validated ``params`` and write .ipynb, .json, .html, index."""
    import papermill as pm

    html_path, ipynb_path, json_path = report_paths(out_dir, chapter, params.name)
    ipynb_path.parent.mkdir(parents=True, exist_ok=True)
    run_dir = ipynb_path.with_name(f".{ipynb_path.stem}.run")
    run_dir.mkdir(parents=True, exist_ok=True)
    redactor = Redactor(secret_values(params))
    env: dict[str, str] = {RUN_DIR_ENV: str(run_dir), "RUNBOOKS_HEADLESS": "1"}
    safe_overrides = _secret_overrides(overrides, env)
    for var, value in env.items():
        if var.startswith("RUNBOOKS_SECRET_"):
            redactor.add_secret(value)
    parameters = {"params_file": params.source, "overrides": safe_overrides, "run_dir": str(run_dir)}
    started, t0 = utc_now(), time.monotonic()
    error: tuple[str, str] | None = None
    saved_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        pm.execute_notebook(
            str(notebook), str(ipynb_path), parameters=parameters, kernel_name=ensure_kernel(),
            progress_bar=progress, request_save_on_cell_execute=True, execution_timeout=cell_timeout,
            cwd=str(notebook.parent),
        )
    except Exception as exc:  # noqa: BLE001 - every failure still gets a report
        error = _classify(exc)
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    duration = time.monotonic() - t0
    nb = nbformat.read(str(ipynb_path if ipynb_path.exists() else notebook), as_version=4)
    if error and error[0] != "checks":
        nb.cells.insert(0, _banner(*error))
    nb = _scrub(nb, redactor)
    checks = load_checks(run_dir / "checks.jsonl")
    evidence = load_records(run_dir / "evidence.jsonl")
    meta = _json(run_dir / "meta.json")
    figures = _json(run_dir / "figures.json")
    exec_kind = None if error is None or error[0] == "checks" else error[0]
    exit_code = exit_code_for(checks, "unreachable" if exec_kind == "unreachable" else
                              "params" if exec_kind == "params" else exec_kind)
    summary: dict[str, Any] = {
        "chapter": chapter, "params": params.name, "params_file": params.source,
        "mode": params.mode, "cluster_name": params.cluster_name,
        "targets": meta.get("targets", []), "started_utc": started, "duration_s": round(duration, 2),
        "status": "PASS" if exit_code == 0 else "FAIL", "exit_code": exit_code,
        "execution_error": {"kind": error[0], "message": error[1][-4000:]} if exec_kind and error else None,
        "counts": summarize(checks), "checks": [c.__dict__ for c in checks], "figures": figures,
        "evidence": evidence, "tools": meta.get("tools") or tool_versions(),
        "html": html_path.name, "ipynb": ipynb_path.name,
    }
    summary = redactor.redact_obj(summary)  # type: ignore[assignment]
    nbformat.write(nb, str(ipynb_path))
    json_path.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    html_path.write_text(render_html(nb, summary), encoding="utf-8")
    shutil.rmtree(run_dir, ignore_errors=True)
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
