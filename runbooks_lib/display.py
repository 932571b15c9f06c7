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

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .run import Run

COLORS = {
    "pass": "#1a7f37", "ok": "#1a7f37", "changed": "#0969da", "warn": "#9a6700",
    "fail": "#cf222e", "error": "#cf222e", "unreachable": "#8250df", "timeout": "#cf222e",
    "drift": "#bc4c00", "n/a": "#6e7781", "n/a in lab": "#6e7781", "info": "#57606a", "failed": "#cf222e",
    "missing": "#9a6700", "unavailable": "#6e7781", "differs": "#cf222e",
}


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
    color = COLORS.get(status, "#57606a")
    return (f'<span style="background:{color};color:#fff;padding:1px 6px;border-radius:3px;'
            f'font-size:90%">{html.escape(status)}</span>')


def styled(df: pd.DataFrame, status_col: str = "status") -> str:
    """A DataFrame as an HTML table with coloured status badges (text escaped)."""
    if df.empty:
        return "<p><em>(no rows)</em></p>"
    cols = list(df.columns)
    head = "".join(f"<th style='text-align:left'>{html.escape(str(c))}</th>" for c in cols)
    rows = []
    for _, row in df.iterrows():
        cells = []
        for c in cols:
            v = "" if row[c] is None else str(row[c])
            cells.append(badge(v) if c == status_col else
                         f"<td style='text-align:left;white-space:pre-wrap'>{html.escape(v)}</td>")
            if c == status_col:
                cells[-1] = f"<td>{cells[-1]}</td>"
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table class='runbooks-table'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def table(df: pd.DataFrame, title: str | None = None, status_col: str = "status") -> None:
    """Show a result table; interactive, with a status filter."""
    if title:
        _show(f"<h4>{html.escape(title)}</h4>")
    if headless() or status_col not in df.columns or df.empty:
        _show(styled(df, status_col))
        return
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


def panel(run: Run, steps: dict[str, Callable[[], Any]]) -> Any:
    """Interactive only: pick the parameter file, hosts and mode, and re-run a step.

    Apply needs the cluster name typed in (it becomes ``confirm``, the same rule as headless);
    example parameter files are not offered. Headless (papermill, nbval): nothing, so reports
    carry no widget state."""
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
            with run.recorder.in_step(step_pick.value):
                steps[step_pick.value]()

    go.on_click(rerun)
    box = w.VBox([file_pick, w.HBox([host_pick, w.VBox([mode_pick, confirm, step_pick, go])]), out])
    _show(box)
    return box


def show_verdict(run: Run) -> None:
    """The summary every run ends with: PASS, DRIFT (n changes pending) or FAIL, and the checks."""
    from .verdict import verdict_for, verdict_label

    df = run.checks_frame()
    verdict = verdict_for(run.checks)
    failed = sum(1 for c in run.checks if c.failed)
    pending = sum(1 for c in run.checks if c.drift)
    color = COLORS[verdict.lower()]
    _show(f"<h3>Verdict: <span style='color:{color}'>{verdict_label(verdict, pending)}</span> — {len(df)} checks, "
          f"{failed} failed, {pending} pending</h3>")
    _show(styled(df))
