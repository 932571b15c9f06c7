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
from pathlib import Path
from typing import Any

import nbformat

from .display import badge, diff_html, looks_like_diff
from .report_page import header_html, page_title, slug, verdict_text
from .verdict import ATTENTION

__all__ = ["header_html", "page_title", "private_dir", "render_html", "verdict_text", "write_index", "write_private"]

TEMPLATE_DIR = Path(__file__).resolve().parent / "report_template"
_REMOTE_REF = re.compile(
    r"""<(script|link)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//[^>]*>(?:\s*</script>)?""", re.I)


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


def strip_remote_refs(text: str) -> str:
    """Drop any <script src=http...> or <link href=http...> left by a template."""
    return _REMOTE_REF.sub("", text)


def render_html(nb: nbformat.NotebookNode, summary: dict[str, Any]) -> str:
    from nbconvert import HTMLExporter

    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.metadata.pop("widgets", None)  # headless widget state is noise
    nb.metadata["title"] = page_title(summary)  # the tab: chapter, verdict, cluster, UTC time
    for cell in nb.cells:  # a bare number left as a cell's value (a return code) is not a result
        cell["outputs"] = [_colour_diff(o) for o in cell.get("outputs", []) if not _stray_result(o)]
    exporter = HTMLExporter(template_name="runbooks", extra_template_basedirs=[str(TEMPLATE_DIR)],
                            embed_images=True)
    body, _ = exporter.from_notebook_node(nb, resources={"runbooks_header": header_html(summary)})
    return strip_remote_refs(body)


_PRE = re.compile(r"\A\s*<pre[^>]*>(.*)</pre>\s*\Z", re.S)


def _colour_diff(output: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """An output that is a diff (printed text, or one ``<pre>``) shown with +/- colours."""
    if output.get("output_type") == "stream":
        text = str(output.get("text", ""))
        if looks_like_diff(text):
            return nbformat.v4.new_output("display_data", {"text/html": diff_html(text)})
        return output
    data = output.get("data") or {}
    found = _PRE.match(str(data.get("text/html", ""))) if "text/html" in data else None
    if found and "<" not in found.group(1) and looks_like_diff(html.unescape(found.group(1))):
        data["text/html"] = diff_html(html.unescape(found.group(1)))
    return output


def _stray_result(output: dict[str, Any]) -> bool:
    """``Out[n]: 0``: an execute_result that is only a bare integer."""
    data = output.get("data") or {}
    return (output.get("output_type") == "execute_result" and set(data) == {"text/plain"}
            and re.fullmatch(r"-?\d+", str(data["text/plain"]).strip()) is not None)


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


#: runs listed on index.html itself; older ones are on per-month pages (index-YYYY-MM.html)
INDEX_RUNS = 100
_INDEX_CSS = (
    "body{font-family:sans-serif;margin:1em 2em} td,th{border:1px solid #d0d7de;padding:2px 8px;text-align:left;"
    "vertical-align:top} table{border-collapse:collapse;margin:.5em 0} .runbooks-f{margin-left:.8em}"
    " label{margin-right:.3em} .runbooks-filters{margin:.3em 0} td:first-child{white-space:nowrap}")


def _index_row(s: dict[str, Any], root: Path) -> str:
    html_path = Path(s["_json"]).with_suffix(".html")
    link = html_path.relative_to(root).as_posix()
    found = {k: n for k, n in (s.get("counts") or {}).items() if isinstance(n, int)}
    counts = ", ".join(f"{found[k]} {k}" for k in sorted(found, key=lambda k: ATTENTION.index(k)
                                                          if k in ATTENTION else len(ATTENTION)))
    duration = s.get("duration_s")
    cells = [html.escape(str(s.get("started_utc", "?"))[:19].replace("T", " ")), html.escape(s["chapter"]),
             html.escape(str(s.get("cluster_name") or "-")), html.escape(str(s.get("mode", "?"))),
             badge(verdict_text(s)), html.escape(counts),
             f"{duration:.0f} s" if isinstance(duration, (int, float)) else "?",
             html.escape(str(s.get("exit_code", "?"))), html.escape(Path(str(s.get("params_file") or "?")).name),
             f"<a href='{html.escape(link)}'>{html.escape(html_path.name)}</a>"]
    return (f"<tr data-chapter='{slug(s['chapter'])}' data-verdict='{slug(s['status'])}'>"
            + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")


_RUN_HEAD = ("<tr><th>time (UTC)</th><th>chapter</th><th>cluster</th><th>mode</th><th>verdict</th><th>checks</th>"
             "<th>duration</th><th>exit code</th><th>parameter file</th><th>report</th></tr>")


def _filters(runs: list[dict[str, Any]]) -> tuple[str, str]:
    """CSS-only filters by chapter and by verdict (radio buttons before the table): (inputs, css)."""
    chapters = sorted({slug(s["chapter"]) for s in runs})
    verdicts = [v for v in ("fail", "drift", "pass") if any(slug(s["status"]) == v for s in runs)]
    inputs, css = [], []
    for group, values in (("chapter", chapters), ("verdict", verdicts)):
        radios = [f"<input type='radio' name='f-{group}' id='f-{group}-all' class='runbooks-f' checked>"
                  f"<label for='f-{group}-all'>all</label>"]
        for v in values:
            radios.append(f"<input type='radio' name='f-{group}' id='f-{group}-{v}' class='runbooks-f'>"
                          f"<label for='f-{group}-{v}'>{html.escape(v.upper() if group == 'verdict' else v)}</label>")
            css.append(f"#f-{group}-{v}:checked ~ table.runbooks-runs tr[data-{group}]:not([data-{group}='{v}'])"
                       "{display:none}")
        inputs.append(f"<b>{group}</b>{''.join(radios)}<br>")
    return "".join(inputs), "".join(css)


def _page(title: str, body: str, css: str = "") -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_INDEX_CSS}{css}</style></head><body>{body}</body></html>")


def _runs_section(runs: list[dict[str, Any]], root: Path, heading: str) -> tuple[str, str]:
    inputs, css = _filters(runs)
    rows = "".join(_index_row(s, root) for s in runs)
    return (f"<h2>{html.escape(heading)}</h2><div class='runbooks-filters'>{inputs}"
            f"<table class='runbooks-runs'>{_RUN_HEAD}{rows}</table></div>"), css


def write_index(reports_root: Path) -> Path:
    """reports/index.html: the latest run per chapter and cluster on top, then the newest
    :data:`INDEX_RUNS` runs (filter by chapter and verdict without scripts); older runs on
    per-month pages ``index-YYYY-MM.html``. Earlier runs' reports are made private too (:func:`_tighten`)."""
    private_dir(reports_root, tighten=(reports_root / "index.html").exists())
    runs = load_summaries(reports_root)
    for s in runs:
        _tighten(Path(s["_json"]))
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for s in runs:  # newest first: the first seen is the latest
        latest.setdefault((s["chapter"], str(s.get("cluster_name") or "-")), s)
    summary_rows = "".join(_index_row(s, reports_root) for _, s in sorted(latest.items()))
    body = [f"<h1>k8s-runbooks reports</h1><p>{len(runs)} runs, newest first.</p>",
            f"<h2>Latest per chapter and cluster</h2><table>{_RUN_HEAD}{summary_rows}</table>"]
    section, css = _runs_section(runs[:INDEX_RUNS], reports_root,
                                 f"Runs ({min(len(runs), INDEX_RUNS)} newest)")
    body.append(section)
    older = runs[INDEX_RUNS:]
    months: dict[str, list[dict[str, Any]]] = {}
    for s in older:
        months.setdefault(str(s.get("started_utc", ""))[:7] or "unknown", []).append(s)
    if months:
        body.append("<h2>Older runs by month</h2><p>" + " · ".join(
            f"<a href='index-{m}.html'>{html.escape(m)}</a> ({len(r)})" for m, r in months.items()) + "</p>")
    for month, month_runs in months.items():
        sec, mcss = _runs_section(month_runs, reports_root, f"Runs in {month}")
        write_private(reports_root / f"index-{month}.html",
                      _page(f"k8s-runbooks reports {month}", "<p><a href='index.html'>latest</a></p>" + sec, mcss))
    index = reports_root / "index.html"
    write_private(index, _page("k8s-runbooks reports", "".join(body), css))
    return index
