"""What a notebook shows: the header, tables coloured by status, the verdict, the widget panel.

Interactive (JupyterLab), tables get a status filter and the header a small ipywidgets panel.
Headless (papermill: no frontend), everything is static HTML, so the report carries no
widget state.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
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


def header(run: Run) -> None:
    """The run header: chapter, mode, targets, parameter file."""
    p = run.params
    mode = p.mode + (" (confirmed)" if p.confirmed else "")
    rows = [("chapter", run.chapter), ("mode", mode), ("parameters", p.source),
            ("cluster", p.cluster_name), ("targets", "; ".join(run.targets) or "-")]
    body = "".join(f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>"
                   f"{html.escape(v)}</td></tr>" for k, v in rows)
    _show(f"<table>{body}</table>")


def panel(run: Run, steps: dict[str, Callable[[], Any]]) -> Any:
    """Interactive only: pick the parameter file, hosts and mode, and re-run a step.
    Headless (papermill, nbval): nothing, so reports carry no widget state."""
    if headless():
        return None
    import ipywidgets as w

    from .params import DEFAULT_PARAMS, ParamsError, load_params

    files = sorted({str(f) for f in DEFAULT_PARAMS.parent.glob("*.yaml")} | {run.params.source})
    file_pick = w.Dropdown(options=files, value=run.params.source, description="parameters")
    hosts = [h.name for h in run.params.hosts]
    host_pick = w.SelectMultiple(options=hosts, value=tuple(run.params.only_hosts or hosts),
                                 description="hosts")
    mode_pick = w.ToggleButtons(options=["plan", "apply"], value=run.params.mode, description="mode")
    step_pick = w.Dropdown(options=list(steps), description="step")
    go = w.Button(description="re-run step")
    out = w.Output()

    def rerun(_: Any) -> None:
        out.clear_output()
        with out:
            try:
                params = load_params(file_pick.value, [*run.overrides, f"mode={mode_pick.value}"])
            except ParamsError as exc:
                _show(f"<pre>invalid parameters: {html.escape(str(exc))}</pre>")
                return
            known = {h.name for h in params.hosts}
            params.only_hosts = [h for h in host_pick.value if h in known]
            run.use_params(params)
            with run.recorder.in_step(step_pick.value):
                steps[step_pick.value]()

    go.on_click(rerun)
    box = w.VBox([file_pick, w.HBox([host_pick, w.VBox([mode_pick, step_pick, go])]), out])
    _show(box)
    return box


def show_verdict(run: Run) -> None:
    """The summary table every run ends with."""
    df = run.checks_frame()
    failed = int(df["status"].isin(["fail", "error", "unreachable"]).sum()) if not df.empty else 0
    verdict = "FAIL" if failed else "PASS"
    color = COLORS["fail"] if failed else COLORS["pass"]
    _show(f"<h3>Verdict: <span style='color:{color}'>{verdict}</span> — {len(df)} checks, "
          f"{failed} failed</h3>")
    _show(styled(df))
