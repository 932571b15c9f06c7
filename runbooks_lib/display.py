"""What a notebook shows: the header, tables coloured by status, the verdict, the widget panel.

Interactive (JupyterLab), tables get a status filter and the header a small ipywidgets panel.
Headless (papermill: no frontend), everything is static HTML, so the report carries no
widget state.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .verdict import COLORS as VERDICT_COLORS
from .verdict import status_color

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .run import Run

#: status colours live with the verdict (:mod:`.verdict`); kept here for callers of ``display.COLORS``
COLORS = VERDICT_COLORS

#: column-name suffixes and the unit a header shows for them
_UNITS = (("_us", "µs"), ("_ms", "ms"), ("_s", "s"), ("_bytes", "bytes"), ("_mib", "MiB"), ("_pct", "%"),
          ("_days", "days"))


def headless() -> bool:
    """True under papermill/nbval/nbconvert (no interactive frontend to show widgets)."""
    if os.environ.get("RUNBOOKS_HEADLESS") or os.environ.get("PAPERMILL_EXECUTION"):
        return True
    try:
        from IPython import get_ipython

        ip = get_ipython()
    except ImportError:
        return True
    if ip is None or type(ip).__name__ != "ZMQInteractiveShell":
        return True
    # papermill and nbclient start kernels that no frontend watches; jupyter-server sets this
    return not os.environ.get("JPY_SESSION_NAME")


def _show(obj: Any) -> None:
    try:
        from IPython.display import HTML, display
    except ImportError:  # plain python
        print(obj)
        return
    display(HTML(obj) if isinstance(obj, str) else obj)


def badge(status: str) -> str:
    return (f'<span style="background:{status_color(status)};color:#fff;padding:1px 6px;border-radius:3px;'
            f'font-size:90%;white-space:nowrap">{html.escape(status)}</span>')


def column_title(name: object) -> str:
    """A header in words with its unit: ``p50_us`` -> ``p50 (µs)``, ``save_s`` -> ``save (s)``."""
    text = str(name)
    if " " in text or not text:
        return text
    for suffix, unit in _UNITS:
        if text.endswith(suffix) and len(text) > len(suffix):
            return f"{text[: -len(suffix)].replace('_', ' ')} ({unit})"
    return text.replace("_", " ")


def _number(v: float, column: str = "") -> str:
    if v != v:  # NaN
        return ""
    if column.endswith("_bytes") or column in ("bytes", "size"):
        return human_bytes(v)
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    if column.endswith("_s") or column in ("duration", "seconds"):
        return f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def human_bytes(n: float) -> str:
    """``12345678`` -> ``11.8 MiB``."""
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def cell_text(value: Any, column: str = "") -> str:
    """A value as a person reads it: no ``nan``/``None``, integers as integers, durations rounded,
    yes/no for booleans, ``key: value`` for mappings, no Python reprs."""
    import dataclasses
    import math

    if value is None:
        return ""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "yes" if value else "no"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {cell_text(v, str(k))}" for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(cell_text(v, column) for v in value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "" if math.isnan(value) else _number(value, column)
    if hasattr(value, "item") and callable(value.item) and type(value).__module__ == "numpy":
        return cell_text(value.item(), column)
    if type(value).__name__ in ("NAType", "NaTType"):
        return ""
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def looks_like_diff(text: str) -> bool:
    """A unified diff (``@@`` hunks, or ``---``/``+++`` headers with +/- lines)."""
    lines = text.splitlines()
    return any(ln.startswith("@@") for ln in lines) or (
        any(ln.startswith("--- ") for ln in lines) and any(ln.startswith("+++ ") for ln in lines))


def diff_html(text: str) -> str:
    """A diff in monospace, added lines green, removed red, hunks blue."""
    out = []
    for ln in text.splitlines():
        cls = ("runbooks-diff-hunk" if ln.startswith("@@") else "runbooks-diff-file"
               if ln.startswith(("+++", "---")) else "runbooks-diff-add" if ln.startswith("+")
               else "runbooks-diff-del" if ln.startswith("-") else "")
        color = {"runbooks-diff-add": "color:#1a7f37;background:#dafbe1",
                 "runbooks-diff-del": "color:#cf222e;background:#ffebe9",
                 "runbooks-diff-hunk": "color:#0969da", "runbooks-diff-file": "font-weight:bold"}.get(cls, "")
        out.append(f"<span class='{cls}' style='{color}'>{html.escape(ln)}</span>" if cls else html.escape(ln))
    return ("<pre class='runbooks-diff' style='font-family:monospace;white-space:pre-wrap;margin:0'>"
            + "\n".join(out) + "</pre>")


def detail_html(text: str) -> str:
    """A check's detail: a diff coloured, anything else as wrapped text."""
    if looks_like_diff(text):
        return diff_html(text)
    return f"<span style='white-space:pre-wrap'>{html.escape(text)}</span>"


_CELL = "text-align:left;vertical-align:top;white-space:pre-wrap;overflow-wrap:anywhere;max-width:48em"


def styled(df: pd.DataFrame, status_col: str = "status") -> str:
    """A DataFrame as an HTML table a person reads: coloured status badges, headers in words with
    units, :func:`cell_text` values (text escaped), diffs coloured, long text wrapped."""
    if df.empty:
        return "<p><em>(no rows)</em></p>"
    if df.index.name is not None:  # a named index (a matrix's row labels) is a column a person must see
        df = df.reset_index()
    cols = list(df.columns)
    head = "".join(f"<th style='text-align:left'>{html.escape(column_title(c))}</th>" for c in cols)
    rows = []
    for values in df.itertuples(index=False, name=None):
        cells = []
        for c, raw in zip(cols, values, strict=True):
            v = cell_text(raw, str(c))
            if c == status_col:
                cells.append(f"<td style='vertical-align:top'>{badge(v) if v else ''}</td>")
            else:
                cells.append(f"<td style='{_CELL}'>{detail_html(v)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<table class='runbooks-table' style='border-collapse:collapse'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


#: headless, tables longer than this are folded (``<details>``) with their row and status counts
FOLD_ROWS = 20


def _row_counts(df: pd.DataFrame, status_col: str) -> str:
    text = f"{len(df)} rows"
    if status_col in df.columns:
        counts = df[status_col].astype(str).value_counts()
        text += ": " + ", ".join(f"{n} {s}" for s, n in counts.items())
    return text


def table(df: pd.DataFrame, title: str | None = None, status_col: str = "status") -> None:
    """Show a result table; interactive, with a status filter. Headless (the report), a table of
    more than :data:`FOLD_ROWS` rows is folded under a summary line with its status counts."""
    if headless() or status_col not in df.columns or df.empty:
        if len(df) > FOLD_ROWS:  # a report shows long tables folded, with their status counts
            _show(f"<details><summary><b>{html.escape(title or 'table')}</b> — {_row_counts(df, status_col)}"
                  f"</summary>{styled(df, status_col)}</details>")
            return
        if title:
            _show(f"<h4>{html.escape(title)}</h4>")
        _show(styled(df, status_col))
        return
    if title:
        _show(f"<h4>{html.escape(title)}</h4>")
    import ipywidgets as w

    statuses = ["all", *sorted(df[status_col].astype(str).unique())]
    pick = w.Dropdown(options=statuses, description="status")
    out = w.Output()

    def render(_: Any = None) -> None:
        out.clear_output()
        shown = df if pick.value == "all" else df[df[status_col].astype(str) == pick.value]
        with out:
            _show(styled(shown, status_col))

    pick.observe(render, names="value")
    render()
    _show(w.VBox([pick, out]))


def _header_html(run: Run) -> str:
    from .chapters import mode_does

    p = run.params
    mode = p.mode + (" (confirmed)" if p.confirmed else "")
    rows = [("chapter", run.chapter), ("mode", mode), ("this mode", mode_does(run.chapter, p.mode) or "-"),
            ("parameters", p.source), ("cluster", p.cluster_name), ("targets", "; ".join(run.targets) or "-")]
    body = "".join(f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>"
                   f"{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table class='runbooks-run-header'>{body}</table>"


def header(run: Run) -> None:
    """The run header: chapter, mode and what it does here, targets, parameter file.
    Re-rendered in place (:func:`refresh_header`) when the panel switches parameters or mode."""
    try:
        from IPython.display import HTML, display
    except ImportError:  # plain python
        print(_header_html(run))
        return
    run.header_handle = display(HTML(_header_html(run)), display_id=True)


def refresh_header(run: Run) -> None:
    """Show the run's current parameters in the header shown by :func:`header`."""
    if run.header_handle is not None:
        from IPython.display import HTML

        run.header_handle.update(HTML(_header_html(run)))


def param_files(current: str) -> list[str]:
    """Parameter files the panel offers: parameters/*.yaml without the example-* templates."""
    from .params import DEFAULT_PARAMS

    files = {str(f) for f in DEFAULT_PARAMS.parent.glob("*.yaml")} | {current}
    return sorted(f for f in files if not Path(f).name.startswith("example-"))


class Panel:
    """The interactive panel, already shown once by :func:`panel`. Its own display is nothing, so a
    notebook cell ending in ``display.panel(...)`` does not show the widgets (and every output) twice."""

    def __init__(self, box: Any) -> None:
        self.box = box

    def _ipython_display_(self) -> None:
        return None


def one_line(exc: BaseException) -> str:
    """An error as one line: ``ExcType: first line of the message``."""
    first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def show_value(value: Any) -> None:
    """What a panel step returned: a table (DataFrame, dataclass, mapping), else its text."""
    import dataclasses

    import pandas as pd

    if value is None:
        return
    if isinstance(value, pd.DataFrame):
        _show(styled(value, status_col="status" if "status" in value.columns else "-"))
        return
    summary = getattr(value, "summary", None)
    if callable(summary) and not isinstance(value, type) and isinstance(named := summary(), dict):
        value = named  # a result that names its own settings as a mapping (etcd-backup's Target)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        _show(styled(pd.DataFrame({"setting": list(value), "value": list(value.values())}), status_col="-"))
        return
    _show(f"<pre>{html.escape(cell_text(value))}</pre>")


def panel(run: Run, steps: dict[str, Callable[[], Any]]) -> Panel | None:
    """Interactive only: pick the parameter file, hosts and mode, and re-run a step.

    Apply needs the cluster name typed in (it becomes ``confirm``, the same rule as headless);
    example parameter files are not offered. A step's error is one line in the panel (the full
    traceback stays in the evidence recorder's step), and what it returns is shown as a table.
    Shown once; returns a :class:`Panel` whose own display is nothing. Headless (papermill,
    nbval): nothing, so reports carry no widget state."""
    if headless():
        return None
    import ipywidgets as w

    from .params import ParamsError, load_params

    files = param_files(run.params.source)
    file_pick = w.Dropdown(options=files, value=run.params.source if run.params.source in files else None,
                           description="parameters")
    hosts = [h.name for h in run.params.hosts]
    host_pick = w.SelectMultiple(options=hosts, value=tuple(run.params.only_hosts or hosts),
                                 description="hosts")
    mode_pick = w.ToggleButtons(options=["plan", "apply"], value=run.params.mode, description="mode")
    confirm = w.Text(value="", placeholder="type the cluster name to apply", description="confirm")
    step_pick = w.Dropdown(options=list(steps), description="step")
    go = w.Button(description="re-run step")
    out = w.Output()

    def rerun(_: Any) -> None:
        out.clear_output()
        with out:
            if not file_pick.value:
                _show("<pre>pick a parameter file</pre>")
                return
            extra = [f"mode={mode_pick.value}"]
            if mode_pick.value == "apply":
                extra.append(f"confirm={confirm.value.strip()}")
            try:
                params = load_params(file_pick.value, [*run.overrides, *extra])
            except ParamsError as exc:
                _show(f"<pre>invalid parameters: {html.escape(str(exc))}</pre>")
                return
            if params.mode == "apply" and not params.confirmed:
                _show("<pre>apply refused: type the cluster name (cluster_name in "
                      f"{html.escape(Path(params.source).name)}) into confirm</pre>")
                return
            known = {h.name for h in params.hosts}
            params.only_hosts = [h for h in host_pick.value if h in known]
            run.use_params(params)
            refresh_header(run)
            try:
                with run.recorder.in_step(step_pick.value):
                    value = steps[step_pick.value]()
            except Exception as exc:  # noqa: BLE001 - a panel step's failure is a message, not a traceback
                run.recorder.note(f"panel step {step_pick.value!r} failed: {one_line(exc)}")
                _show(f"<pre style='color:#cf222e'>{html.escape(step_pick.value)} failed: "
                      f"{html.escape(one_line(exc))}</pre>")
                return
            show_value(value)

    go.on_click(rerun)
    box = w.VBox([file_pick, w.HBox([host_pick, w.VBox([mode_pick, confirm, step_pick, go])]), out])
    _show(box)
    return Panel(box)


def show_verdict(run: Run) -> None:
    """The summary every run ends with: PASS, DRIFT (n changes pending) or FAIL, one recap line per
    host, and the checks that need attention (identical ones merged, naming their hosts); passes
    are counted, not listed again."""
    from .verdict import recap, recap_line, verdict_for, verdict_label

    checks = [c.__dict__ for c in run.checks]
    verdict = verdict_for(run.checks)
    failed = sum(1 for c in run.checks if c.failed)
    pending = sum(1 for c in run.checks if c.drift)
    per_host = recap(checks)
    width = max((len(h) for h in per_host), default=0)
    lines = "\n".join(recap_line(h, n, width) for h, n in per_host.items())
    _show(f"<h3>Verdict: <span style='color:{status_color(verdict)}'>{verdict_label(verdict, pending)}</span> — "
          f"{len(checks)} checks, {failed} failed, {pending} pending</h3>"
          f"<pre class='runbooks-recap'>{html.escape(lines)}</pre>")
    rows = attention_rows(checks)
    if rows:
        import pandas as pd

        _show(styled(pd.DataFrame(rows, columns=["status", "check", "hosts", "detail"])))


def attention_rows(checks: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Checks not passing, worst first; identical (check, status, detail) on several hosts are one
    row naming the hosts (one copy of a diff, with the hosts it applies to)."""
    from .verdict import ATTENTION

    quiet = {"pass", "info", "n/a", "n/a in lab"}
    merged: dict[tuple[str, str, str], list[str]] = {}
    for c in checks:
        if c["status"] not in quiet:
            merged.setdefault((c["status"], c["check"], c.get("detail", "")), []).append(c["host"])
    order = {s: i for i, s in enumerate(ATTENTION)}
    keys = sorted(merged, key=lambda k: order.get(k[0], len(order)))
    return [{"status": s, "check": ch, "hosts": ", ".join(merged[(s, ch, d)]), "detail": d} for s, ch, d in keys]
