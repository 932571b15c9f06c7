"""Display: static HTML headless, ipywidgets when a frontend (JupyterLab) is attached."""

from __future__ import annotations

import os

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from runbooks_lib.runner import ensure_kernel

CODE = """
import pandas as pd
from runbooks_lib import display
display.table(pd.DataFrame([{"check": "swap off", "host": "cp1", "status": "fail"},
                            {"check": "swap off", "host": "w1", "status": "pass"}]), "swap")
"""


def _execute(env: dict[str, str]) -> list[dict]:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CODE)])
    saved = {k: os.environ.get(k) for k in ("JPY_SESSION_NAME", "RUNBOOKS_HEADLESS")}
    for k in saved:
        os.environ.pop(k, None)
    os.environ.update(env)
    try:
        NotebookClient(nb, kernel_name=ensure_kernel(), timeout=60).execute()
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None)
            if v is not None:
                os.environ[k] = v
    return nb.cells[0].outputs


@pytest.mark.slow
def test_headless_is_static_html() -> None:
    outputs = _execute({})
    mimes = {m for o in outputs for m in o.get("data", {})}
    assert "application/vnd.jupyter.widget-view+json" not in mimes
    html = "".join(o["data"].get("text/html", "") for o in outputs if "data" in o)
    assert "swap off" in html and "#cf222e" in html  # the fail badge colour


@pytest.mark.slow
def test_interactive_gets_a_status_filter_widget() -> None:
    outputs = _execute({"JPY_SESSION_NAME": "01-system-init.ipynb"})
    mimes = {m for o in outputs for m in o.get("data", {})}
    assert "application/vnd.jupyter.widget-view+json" in mimes


PANEL = """
from runbooks_lib import display
from runbooks_lib.run import Run
run = Run.start("panel-test", {params!r}, [], {run_dir!r})
display.header(run)
calls = []
panel = display.panel(run, {{"say hello": lambda: calls.append((run.params.mode, list(run.params.only_hosts)))}})
print("panel:", type(panel).__name__)
if panel is not None:
    box = panel.box
    file_pick = box.children[0]
    print("offered:", [f.rsplit("/", 1)[-1] for f in file_pick.options])
    mode, confirm, _, button = box.children[1].children[1].children
    mode.value = "apply"
    button.click()
    print("unconfirmed calls:", calls, run.params.mode)
    confirm.value = "not-the-cluster"
    button.click()
    print("wrong-name calls:", calls, run.params.mode)
    confirm.value = "test"
    button.click()
    print("calls:", calls)
"""


def _run_panel(src: str, env: dict[str, str]) -> list[dict]:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src)])
    saved = os.environ.pop("RUNBOOKS_HEADLESS", None)
    os.environ.update(env)
    try:
        NotebookClient(nb, kernel_name=ensure_kernel(), timeout=60).execute()
    finally:
        os.environ.pop("JPY_SESSION_NAME", None)
        if saved is not None:
            os.environ["RUNBOOKS_HEADLESS"] = saved
    return nb.cells[0].outputs


@pytest.mark.slow
def test_panel_apply_needs_the_cluster_name_and_header_follows(tmp_path, fixtures) -> None:  # type: ignore[no-untyped-def]
    src = PANEL.format(params=str(fixtures / "params" / "local.yaml"), run_dir=str(tmp_path))
    outputs = _run_panel(src, {"JPY_SESSION_NAME": "x.ipynb"})
    text = "".join(o.get("text", "") for o in outputs)
    assert "unconfirmed calls: [] plan" in text, text  # apply without the cluster name typed: refused
    assert "wrong-name calls: [] plan" in text, text
    assert "calls: [('apply', [])]" in text, text
    offered = text.split("offered:", 1)[1].splitlines()[0]
    assert "lab.yaml" in offered and "local.yaml" in offered and "example-" not in offered
    # the header, shown once, was re-rendered in place with the live mode and what it does
    headers = [o["data"]["text/html"] for o in outputs if "runbooks-run-header" in o.get("data", {}).get("text/html", "")]
    assert len(headers) == 1, headers
    assert "apply (confirmed)" in headers[0] and "plan" not in headers[0].split("mode</th>")[1][:60]


@pytest.mark.slow
def test_panel_is_nothing_headless(tmp_path, fixtures) -> None:  # type: ignore[no-untyped-def]
    src = PANEL.format(params=str(fixtures / "params" / "local.yaml"), run_dir=str(tmp_path))
    text = "".join(o.get("text", "") for o in _run_panel(src, {}))
    assert "panel: NoneType" in text, text


ONCE = """
from runbooks_lib import display
from runbooks_lib.run import Run
run = Run.start("panel-test", {params!r}, [], {run_dir!r})
display.panel(run, {{"say hello": lambda: None}})
"""


@pytest.mark.slow
def test_panel_as_a_cells_last_expression_is_shown_once(tmp_path, fixtures) -> None:  # type: ignore[no-untyped-def]
    src = ONCE.format(params=str(fixtures / "params" / "local.yaml"), run_dir=str(tmp_path))
    outputs = _run_panel(src, {"JPY_SESSION_NAME": "x.ipynb"})
    views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 1, outputs  # before: shown by panel() and again as the cell's value
    assert not any(o.get("output_type") == "execute_result" for o in outputs)


def test_panel_errors_are_one_line_and_values_tables() -> None:
    from dataclasses import dataclass

    from runbooks_lib import display

    exc = RuntimeError("etcd not found on cp1\n  Traceback-like detail\n  more")
    assert display.one_line(exc) == "RuntimeError: etcd not found on cp1"

    @dataclass
    class Target:
        node: str
        client_tls: bool

    html = display.styled(pd.DataFrame({"setting": ["node", "client_tls"], "value": ["cp1", True]}), "-")
    assert ">cp1<" in html and ">yes<" in html and "Target(" not in html
    assert display.cell_text(Target("cp1", True)) == "node: cp1; client_tls: yes"


def test_a_named_index_is_shown_as_the_first_column() -> None:
    """A check × node matrix keeps its row labels (chapter 06's prerequisites table showed bare statuses)."""
    import pandas as pd

    from runbooks_lib.display import styled

    matrix = pd.DataFrame({"n1": {"iscsi": "pass", "hostpath": "info"}}).rename_axis("check")
    html_text = styled(matrix, status_col="")
    assert "check" in html_text.split("</thead>")[0] and "iscsi" in html_text and "hostpath" in html_text
    plain = styled(pd.DataFrame({"a": [1, 2]}).iloc[1:], status_col="")   # an unnamed index stays hidden
    assert "index" not in plain.split("</thead>")[0]
