"""Chapter notebooks keep the conventions the runner relies on."""

from __future__ import annotations

import nbformat
import papermill as pm
import pytest

from runbooks_lib.chapters import CHAPTERS

BUILT = [ch for ch in CHAPTERS if ch.built]


def test_some_chapters_are_built() -> None:
    assert {"system-init", "kube-proxy-modes", "etcd-backup"} <= {ch.name for ch in BUILT}


@pytest.mark.parametrize("chapter", BUILT, ids=lambda c: c.name)
def test_parameters_cell_is_understood_by_papermill(chapter) -> None:  # type: ignore[no-untyped-def]
    """papermill must see all three parameters; a line it cannot parse is silently not injected."""
    found = pm.inspect_notebook(str(chapter.notebook))
    assert {"params_file", "overrides", "run_dir"} <= set(found), found
    assert found["overrides"]["default"] == "[]"
    assert found["params_file"]["default"] == "None" and found["run_dir"]["default"] == "None"


@pytest.mark.parametrize("chapter", BUILT, ids=lambda c: c.name)
def test_notebook_shape(chapter) -> None:  # type: ignore[no-untyped-def]
    nb = nbformat.read(str(chapter.notebook), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert any(f'Run.start("{chapter.name}"' in c.source for c in code), "Run.start with the chapter name"
    assert code[-1].source.strip() == "run.finish()", "the verdict is the last cell"
    assert "raises-exception" in code[-1].metadata.get("tags", [])
    assert nb.cells[0].cell_type == "markdown"
