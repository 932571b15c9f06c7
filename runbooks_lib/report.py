"""Reports: the JSON summary, the offline HTML (verdict header, checks, evidence, notebook), the index.

The HTML is self-contained: no script or stylesheet is loaded from the network (nbconvert's
require.js, MathJax, mermaid and widget loaders are dropped; images are inline), so it opens
on an air-gapped jump host. Reports hold evidence from production nodes: files are written
0600 and the report directories 0700.
"""

from __future__ import annotations

import html
import json
import os
import re
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import nbformat

from .display import COLORS
from .verdict import verdict_label

TEMPLATE_DIR = Path(__file__).resolve().parent / "report_template"
_REMOTE_REF = re.compile(
    r"""<(script|link)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//[^>]*>(?:\s*</script>)?""", re.I)


def _badge(status: str, color_of: str | None = None) -> str:
    color = COLORS.get(color_of or status, "#57606a")
    return (f"<span style='background:{color};color:#fff;padding:1px 6px;border-radius:3px;white-space:nowrap'>"
            f"{html.escape(status)}</span>")


def private_dir(path: Path, tighten: bool = True) -> Path:
    """Create ``path`` (and parents) as 0700 directories. An existing one is tightened to 0700 only
    when ``tighten`` (directories the runner owns; never a directory someone merely pointed at)."""
    existed = path.is_dir()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if tighten or not existed:
        os.chmod(path, 0o700)
    return path


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` readable by its owner only (0600), also when it existed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def verdict_text(summary: dict[str, Any]) -> str:
    """"PASS", "DRIFT (3 changes pending)", "FAIL" or "FAIL (interrupted)"."""
    err = summary.get("execution_error")
    interrupted = isinstance(err, dict) and err.get("kind") == "interrupted"
    return verdict_label(str(summary["status"]), int(summary.get("pending") or 0)) + (
        " (interrupted)" if interrupted else "")


def header_html(summary: dict[str, Any]) -> str:
    """Verdict header, checks table and evidence per step (collapsible)."""
    verdict = summary["status"]
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.get("counts", {}).items())) or "no checks"
    tools = ", ".join(f"{k} {v}" for k, v in summary.get("tools", {}).items())
    rows = [
        ("chapter", summary["chapter"]), ("mode", summary.get("mode", "?")),
        ("targets", "; ".join(summary.get("targets") or ["-"])),
        ("parameters", summary.get("params_file", "?")), ("started (UTC)", summary.get("started_utc", "?")),
        ("duration", f"{summary.get('duration_s', 0):.1f} s"), ("exit code", str(summary["exit_code"])),
        ("tools", tools),
    ]
    parts = [f"<div class='runbooks-header'><h1>{html.escape(summary['chapter'])} — "
             f"<span class='runbooks-verdict-{verdict}'>{html.escape(verdict_text(summary))}</span></h1>",
             f"<p>{html.escape(counts)}</p>"]
    if summary.get("mode_does"):
        parts.append(f"<p class='runbooks-mode-does'><b>{html.escape(summary['mode_does'])}</b></p>")
    for notice in summary.get("notices") or []:
        parts.append(f"<p class='runbooks-notice'>{html.escape(notice)}</p>")
    if summary.get("execution_error"):
        err = summary["execution_error"]
        title = err.get("banner") or f"Execution stopped: {err['kind']}"
        parts.append(f"<p style='color:#cf222e'><b>{html.escape(title)}</b>"
                     f"<br><pre>{html.escape(err['message'])}</pre></p>")
    parts.append("<table>" + "".join(f"<tr><th>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
                 + "</table>")
    checks = summary.get("checks", [])
    parts.append(f"<h2>Checks ({len(checks)})</h2><table><tr><th>check</th><th>host</th><th>status</th>"
                 "<th>detail</th></tr>")
    for c in checks:
        parts.append(f"<tr><td>{html.escape(c['check'])}</td><td style='white-space:nowrap'>{html.escape(c['host'])}</td>"
                     f"<td>{_badge(c['status'])}</td><td><pre>{html.escape(c.get('detail', ''))}</pre></td></tr>")
    parts.append("</table>")
    by_step: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
    for rec in summary.get("evidence", []):
        by_step.setdefault(rec.get("step", "run"), []).append(rec)
    parts.append(f"<h2>Evidence ({len(summary.get('evidence', []))} records)</h2>")
    for step, recs in by_step.items():
        bad = sum(1 for r in recs if r["status"] not in ("ok", "info"))
        parts.append(f"<details><summary><b>{html.escape(step)}</b> — {len(recs)} records"
                     f"{f', {bad} not ok' if bad else ''}</summary>")
        for r in recs:
            title = (f"{_badge(r['status'])} <code>{html.escape(r['target'])}</code> "
                     f"<code>{html.escape(r['command'][:200])}</code> "
                     f"(exit {r['exit_code']}, {r['duration_s']} s, {html.escape(r['started_utc'])})")
            body = ""
            if r["command"] and len(r["command"]) > 200:
                body += f"<pre>{html.escape(r['command'])}</pre>"
            if r.get("stdout"):
                body += f"<b>stdout</b><pre>{html.escape(r['stdout'])}</pre>"
            if r.get("stderr"):
                body += f"<b>stderr</b><pre>{html.escape(r['stderr'])}</pre>"
            parts.append(f"<details style='margin-left:1.5em'><summary>{title}</summary>{body}</details>")
        parts.append("</details>")
    parts.append("<h2>Notebook</h2></div>")
    return "\n".join(parts)


def strip_remote_refs(text: str) -> str:
    """Drop any <script src=http...> or <link href=http...> left by a template."""
    return _REMOTE_REF.sub("", text)


def render_html(nb: nbformat.NotebookNode, summary: dict[str, Any]) -> str:
    from nbconvert import HTMLExporter

    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.metadata.pop("widgets", None)  # headless widget state is noise
    exporter = HTMLExporter(template_name="runbooks", extra_template_basedirs=[str(TEMPLATE_DIR)],
                            embed_images=True)
    body, _ = exporter.from_notebook_node(nb, resources={"runbooks_header": header_html(summary)})
    return strip_remote_refs(body)


# ----------------------------------------------------------------------------- index

_INDEX_FIELDS = {"chapter": str, "status": str, "started_utc": str, "mode": str}


def load_summaries(reports_root: Path) -> list[dict[str, Any]]:
    """Every run's JSON summary; an unreadable or malformed one is skipped with a warning."""
    out = []
    for path in sorted(reports_root.glob("*/*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # ValueError covers bad JSON and non-UTF-8 bytes
            print(f"warning: skipping {path}: not a readable JSON report ({type(exc).__name__})", file=sys.stderr)
            continue
        bad = (not isinstance(data, dict)
               or any(not isinstance(data.get(k), t) for k, t in _INDEX_FIELDS.items() if k in ("chapter", "status"))
               or any(k in data and not isinstance(data[k], t) for k, t in _INDEX_FIELDS.items())
               or not isinstance(data.get("targets") or [], list))
        if bad:
            print(f"warning: skipping {path}: not a runbooks report summary", file=sys.stderr)
            continue
        data["_json"] = path
        data["targets"] = [str(t) for t in data.get("targets") or []]
        out.append(data)
    out.sort(key=lambda d: d.get("started_utc", ""), reverse=True)
    return out


def _tighten(json_path: Path) -> None:
    """An earlier run's report files 0600 and its chapter directory 0700 (older versions wrote 0644)."""
    for path in (json_path, json_path.with_suffix(".html"), json_path.with_suffix(".ipynb")):
        if path.is_file() and path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
    if json_path.parent.stat().st_mode & 0o077:
        os.chmod(json_path.parent, 0o700)


def write_index(reports_root: Path) -> Path:
    """reports/index.html: every run, newest first: time, chapter, target, mode, status, link.
    Earlier runs' reports are made private too (:func:`_tighten`)."""
    private_dir(reports_root, tighten=(reports_root / "index.html").exists())
    rows = []
    for s in load_summaries(reports_root):
        _tighten(Path(s["_json"]))
        html_path = Path(s["_json"]).with_suffix(".html")
        link = html_path.relative_to(reports_root).as_posix()
        rows.append(
            f"<tr><td>{html.escape(s.get('started_utc', '?'))}</td><td>{html.escape(s['chapter'])}</td>"
            f"<td>{html.escape('; '.join(s.get('targets') or ['-']))}</td><td>{html.escape(s.get('mode', '?'))}</td>"
            f"<td>{_badge(verdict_text(s), s['status'].lower())}</td><td><a href='{html.escape(link)}'>{html.escape(html_path.name)}</a></td></tr>")
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>k8s-runbooks reports</title>"
            "<style>body{font-family:sans-serif} td,th{border:1px solid #d0d7de;padding:2px 8px;text-align:left}"
            "table{border-collapse:collapse}</style></head><body><h1>k8s-runbooks reports</h1>"
            f"<p>{len(rows)} runs, newest first.</p><table><tr><th>time (UTC)</th><th>chapter</th><th>target</th>"
            "<th>mode</th><th>status</th><th>report</th></tr>" + "".join(rows) + "</table></body></html>")
    index = reports_root / "index.html"
    write_private(index, page)
    return index
