"""The chapter report's own part: verdict header, recap, key figures, check × host matrix, checks
needing attention first, evidence per step and host (anchors from every check to its evidence).

Script-free: the status filter is radio buttons and CSS (``report_template/runbooks``), like
the "show code" checkbox.
"""

from __future__ import annotations

import html
import re
from collections import OrderedDict
from typing import Any

from .display import attention_rows, badge, cell_text, detail_html
from .report_figures import key_figures
from .verdict import ATTENTION, recap, recap_line, verdict_label

#: statuses the default filter hides (shown with "all" or their own filter)
QUIET = ("pass", "info", "n/a", "n/a in lab")
#: output lines shown before "full output" is folded away
EXCERPT_LINES = 30


def slug(text: str) -> str:
    """An id/class-safe token: ``n/a in lab`` -> ``n-a-in-lab``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def verdict_text(summary: dict[str, Any]) -> str:
    """"PASS", "DRIFT (3 changes pending)", "FAIL" or "FAIL (interrupted)"."""
    err = summary.get("execution_error")
    interrupted = isinstance(err, dict) and err.get("kind") == "interrupted"
    return verdict_label(str(summary["status"]), int(summary.get("pending") or 0)) + (
        " (interrupted)" if interrupted else "")


def page_title(summary: dict[str, Any]) -> str:
    """The browser tab: ``system-init DRIFT (34 changes pending) · lab · 2026-12-01 01:09 UTC``."""
    when = str(summary.get("started_utc", ""))[:16].replace("T", " ")
    parts = [f"{summary['chapter']} {verdict_text(summary)}", str(summary.get("cluster_name") or ""),
             f"{when} UTC" if when else ""]
    return " · ".join(p for p in parts if p)


class EvidenceIndex:
    """Anchors of the evidence blocks: one per step, one per (step, target) inside it."""

    def __init__(self, evidence: list[dict[str, Any]]) -> None:
        self.by_step: OrderedDict[str, OrderedDict[str, list[dict[str, Any]]]] = OrderedDict()
        for rec in evidence:
            self.by_step.setdefault(str(rec.get("step", "run")), OrderedDict()).setdefault(
                str(rec.get("target", "-")), []).append(rec)
        self.step_id = {s: f"ev-{i}-{slug(s)}" for i, s in enumerate(self.by_step)}

    def block_id(self, step: str, target: str) -> str:
        return f"{self.step_id[step]}--{slug(target)}"

    def anchor_for(self, check: dict[str, Any]) -> str | None:
        """The evidence that decided ``check``: its step's block for its host; else its step; else
        the only step holding records for its host; else that host's first block."""
        step, host = str(check.get("step") or ""), str(check.get("host", ""))
        if step in self.by_step:
            return self.block_id(step, host) if host in self.by_step[step] else self.step_id[step]
        steps = [s for s, targets in self.by_step.items() if host in targets]
        return self.block_id(steps[0], host) if steps else None


def _host_link(host: str, anchor: str | None) -> str:
    name = html.escape(host)
    return f"<a href='#{anchor}'>{name}</a>" if anchor else name


def _unreachable(checks: list[dict[str, Any]]) -> str:
    rows = [c for c in checks if c["status"] == "unreachable"]
    if not rows:
        return ""
    items = "".join(f"<li><b>{html.escape(c['host'])}</b>: {html.escape(c.get('detail') or c['check'])}</li>"
                    for c in rows)
    return f"<div class='runbooks-unreachable'><b>Unreachable ({len(rows)})</b><ul>{items}</ul></div>"


def _recap(checks: list[dict[str, Any]]) -> str:
    per_host = recap(checks)
    if not per_host:
        return "<p>no checks recorded</p>"
    width = max(len(h) for h in per_host)
    lines = []
    for host, counts in per_host.items():
        line = html.escape(recap_line(host, counts, width))
        for status, word in (("fail", "failed"), ("drift", "drift"), ("unreachable", "unreachable"),
                             ("error", "error"), ("warn", "warn")):
            if counts.get(status):
                line = line.replace(f" {word}={counts[status]}",
                                    f" <span class='runbooks-st-{slug(status)}'>{word}={counts[status]}</span>")
        lines.append(line)
    return "<pre class='runbooks-recap'>" + "\n".join(lines) + "</pre>"


def _filter_inputs(checks: list[dict[str, Any]]) -> str:
    present = [s for s in ATTENTION if any(c["status"] == s for c in checks)]
    n_attn = sum(1 for c in checks if c["status"] not in QUIET)
    # nothing needs attention: show every check (an empty table helps no one)
    opts = [("attention", f"needs attention ({n_attn})", n_attn > 0), ("all", f"all ({len(checks)})", n_attn == 0)]
    opts += [(slug(s), f"{s} ({sum(1 for c in checks if c['status'] == s)})", False) for s in present]
    radios = "".join(
        f"<input type='radio' name='runbooks-filter' id='runbooks-f-{key}' class='runbooks-f'"
        f"{' checked' if checked else ''}><label for='runbooks-f-{key}'>{html.escape(text)}</label> "
        for key, text, checked in opts)
    return f"{radios}<span class='runbooks-f-legend'>show checks</span>"


def _matrix(checks: list[dict[str, Any]], ev: EvidenceIndex) -> str:
    hosts = list(recap(checks))
    rows: OrderedDict[str, dict[str, dict[str, Any]]] = OrderedDict()
    for c in checks:
        rows.setdefault(c["check"], {})[c["host"]] = c
    if len(hosts) < 2:
        return ""
    head = "<th>check</th>" + "".join(f"<th>{html.escape(h)}</th>" for h in hosts)
    body = []
    for check, cells in rows.items():
        statuses = {slug(c["status"]) for c in cells.values()}
        quiet = " runbooks-quiet" if all(c["status"] in QUIET for c in cells.values()) else ""
        tds = []
        for h in hosts:
            cell = cells.get(h)
            if cell is None:
                tds.append("<td></td>")
                continue
            anchor = ev.anchor_for(cell)
            mark = badge(cell["status"])
            tip = html.escape(cell.get("detail", ""), quote=True)
            tds.append(f"<td title='{tip}'>" + (f"<a href='#{anchor}'>{mark}</a>" if anchor else mark) + "</td>")
        body.append(f"<tr class='runbooks-row{quiet}' data-status='{' '.join(sorted(statuses))}'>"
                    f"<td>{html.escape(check)}</td>{''.join(tds)}</tr>")
    return (f"<h2>Checks × hosts</h2><table class='runbooks-matrix'><tr>{head}</tr>{''.join(body)}</table>")


def _checks_table(checks: list[dict[str, Any]], ev: EvidenceIndex) -> str:
    """Every check once, identical (status, check, detail) merged across hosts; attention first."""
    attn = attention_rows(checks)
    quiet_rows: OrderedDict[tuple[str, str, str], list[str]] = OrderedDict()
    for c in checks:
        if c["status"] in QUIET:
            quiet_rows.setdefault((c["status"], c["check"], c.get("detail", "")), []).append(c["host"])
    rows = [(r["status"], r["check"], r["hosts"].split(", "), r["detail"]) for r in attn]
    rows += [(s, ch, hosts, d) for (s, ch, d), hosts in quiet_rows.items()]
    by_key = {(c["status"], c["check"], c["host"]): c for c in checks}
    out = []
    for i, (status, check, hosts, detail) in enumerate(rows):
        links = ", ".join(_host_link(h, ev.anchor_for(by_key[(status, check, h)])) for h in hosts)
        quiet = " runbooks-quiet" if status in QUIET else ""
        out.append(f"<tr id='chk-{i}' class='runbooks-row{quiet}' data-status='{slug(status)}'>"
                   f"<td>{badge(status)}</td><td>{html.escape(check)}</td><td>{links}</td>"
                   f"<td>{detail_html(detail)}</td></tr>")
    n_quiet = sum(1 for r in rows if r[0] in QUIET)
    note = (f"<p class='runbooks-quiet-note'>{n_quiet} passing / informational rows hidden: "
            "choose “all” or a status above.</p>") if n_quiet else ""
    return ("<h2>Checks</h2><table class='runbooks-checks'><tr><th>status</th><th>check</th>"
            "<th>hosts (→ evidence)</th><th>detail</th></tr>" + "".join(out) + "</table>" + note)


def _output(label: str, text: str) -> str:
    lines = text.splitlines()
    if len(lines) <= EXCERPT_LINES:
        return f"<b>{label}</b><pre>{html.escape(text)}</pre>"
    head = "\n".join(lines[:EXCERPT_LINES])
    return (f"<b>{label}</b> (first {EXCERPT_LINES} of {len(lines)} lines)<pre>{html.escape(head)}</pre>"
            f"<details><summary>full {label} ({len(lines)} lines)</summary><pre>{html.escape(text)}</pre></details>")


def _result(rec: dict[str, Any]) -> str:
    """``exit 0`` for a command, ``HTTP 200`` for an API call, nothing for a note."""
    code = rec.get("exit_code")
    if rec.get("kind") == "note":
        return ""
    if code is None:
        return str(rec.get("status", ""))
    return f"HTTP {code}" if rec.get("kind") == "api" else f"exit {code}"


def _record(rec: dict[str, Any]) -> str:
    command = str(rec.get("command", ""))
    short = command if len(command) <= 160 else command[:157] + "…"
    facts = ", ".join(x for x in (_result(rec), f"{cell_text(rec.get('duration_s'), 'duration_s')} s",
                                   str(rec.get("started_utc", ""))[11:23]) if x and x != " s")
    title = f"{badge(str(rec['status']))} <code>{html.escape(short)}</code> <small>({html.escape(facts)})</small>"
    body = f"<pre class='runbooks-cmd'>$ {html.escape(command)}</pre>"
    if rec.get("stdout"):
        body += _output("stdout", str(rec["stdout"]))
    if rec.get("stderr"):
        body += _output("stderr", str(rec["stderr"]))
    return f"<details class='runbooks-rec'><summary>{title}</summary>{body}</details>"


def _evidence(ev: EvidenceIndex, total: int) -> str:
    parts = [f"<h2>Evidence ({total} records)</h2><p class='runbooks-help'>Per step and host; each check "
             "links here. A record shows the command as run on the host, its result and an output excerpt.</p>"]
    for step, targets in ev.by_step.items():
        n = sum(len(r) for r in targets.values())
        bad = sum(1 for recs in targets.values() for r in recs if r["status"] not in ("ok", "info"))
        parts.append(f"<details id='{ev.step_id[step]}' class='runbooks-step'><summary><b>{html.escape(step)}</b>"
                     f" — {n} record{'s' if n != 1 else ''}{f', {bad} not ok' if bad else ''}</summary>")
        for target, recs in targets.items():
            bad_t = sum(1 for r in recs if r["status"] not in ("ok", "info"))
            parts.append(f"<details id='{ev.block_id(step, target)}' class='runbooks-target'><summary>"
                         f"<code>{html.escape(target)}</code> — {len(recs)} record{'s' if len(recs) != 1 else ''}"
                         f"{f', {bad_t} not ok' if bad_t else ''}</summary>"
                         + "".join(_record(r) for r in recs) + "</details>")
        parts.append("</details>")
    return "\n".join(parts)


def _run_table(summary: dict[str, Any]) -> str:
    tools = ", ".join(f"{k} {v}" for k, v in (summary.get("tools") or {}).items())
    rows = [
        ("cluster", summary.get("cluster_name") or "?"), ("mode", summary.get("mode", "?")),
        ("targets", "; ".join(summary.get("targets") or ["-"])),
        ("parameters", summary.get("params_file", "?")), ("started (UTC)", summary.get("started_utc", "?")),
        ("duration", f"{cell_text(float(summary.get('duration_s') or 0), 'duration_s')} s"),
        ("exit code", str(summary.get("exit_code", "?"))), ("tools", tools),
    ]
    return ("<table class='runbooks-run'>"
            + "".join(f"<tr><th>{k}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows) + "</table>")


def _figures_box(summary: dict[str, Any]) -> str:
    figs = key_figures(str(summary["chapter"]), summary.get("figures") or {})
    if not figs:
        return ""
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in figs)
    return f"<div class='runbooks-figures'><b>Key figures</b><table>{rows}</table></div>"


def header_html(summary: dict[str, Any]) -> str:
    """Everything above the notebook: verdict, recap, key figures, matrix, checks, evidence."""
    checks: list[dict[str, Any]] = list(summary.get("checks") or [])
    evidence: list[dict[str, Any]] = list(summary.get("evidence") or [])
    ev = EvidenceIndex(evidence)
    counts = ", ".join(f"{n} {s}" for s, n in sorted((summary.get("counts") or {}).items(),
                       key=lambda kv: ATTENTION.index(kv[0]) if kv[0] in ATTENTION else 99)) or "no checks"
    verdict = str(summary["status"])
    parts = [f"<div class='runbooks-header'><h1>{html.escape(summary['chapter'])} — "
             f"<span class='runbooks-verdict-{verdict}'>{html.escape(verdict_text(summary))}</span></h1>",
             f"<p class='runbooks-counts'>{html.escape(counts)}</p>"]
    if summary.get("mode_does"):
        parts.append(f"<p class='runbooks-mode-does'><b>{html.escape(summary['mode_does'])}</b></p>")
    for notice in summary.get("notices") or []:
        parts.append(f"<p class='runbooks-notice'>{html.escape(notice)}</p>")
    if summary.get("execution_error"):
        err = summary["execution_error"]
        title = err.get("banner") or f"Execution stopped: {err['kind']}"
        parts.append(f"<div class='runbooks-error'><b>{html.escape(title)}</b>"
                     f"<pre>{html.escape(err['message'])}</pre></div>")
    parts.append(_unreachable(checks))
    parts.append("<div class='runbooks-top'><div><h2>Recap</h2>" + _recap(checks) + "</div>"
                 + _figures_box(summary) + "<div><h2>Run</h2>" + _run_table(summary) + "</div></div>")
    if checks:
        parts.append(_filter_inputs(checks))
        parts.append("<div class='runbooks-filtered'>" + _matrix(checks, ev) + _checks_table(checks, ev) + "</div>")
    parts.append(_evidence(ev, len(evidence)))
    parts.append("<h2>Notebook</h2></div>")
    return "\n".join(parts)
