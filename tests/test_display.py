"""Display: static HTML headless, ipywidgets when a frontend (JupyterLab) is attached."""

from __future__ import annotations

import os

import nbformat
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
calls = []
box = display.panel(run, {{"say hello": lambda: calls.append((run.params.mode, list(run.params.only_hosts)))}})
print("panel:", type(box).__name__)
if box is not None:
    mode = box.children[1].children[1].children[0]
    button = box.children[1].children[1].children[2]
    mode.value = "apply"
    button.click()
    print("calls:", calls)
"""


@pytest.mark.slow
def test_panel_reruns_a_step_with_the_chosen_mode(tmp_path, fixtures) -> None:  # type: ignore[no-untyped-def]
    src = PANEL.format(params=str(fixtures / "params" / "local.yaml"), run_dir=str(tmp_path))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src)])
    for env, expected in (({"JPY_SESSION_NAME": "x.ipynb"}, "calls: [('apply', [])]"), ({}, "panel: NoneType")):
        saved = os.environ.pop("RUNBOOKS_HEADLESS", None)
        os.environ.update(env)
        try:
            NotebookClient(nb, kernel_name=ensure_kernel(), timeout=60).execute()
        finally:
            os.environ.pop("JPY_SESSION_NAME", None)
            if saved is not None:
                os.environ["RUNBOOKS_HEADLESS"] = saved
        text = "".join(o.get("text", "") for o in nb.cells[0].outputs)
        assert expected in text, text
