"""Chapter 03's plots as an operator reads them (issue 12 item 5): the legend beside the axes, never
over the data; published reference points unconnected, in their own marker, labelled with their source."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from runbooks_lib.chapters.kube_proxy_modes import plots
from runbooks_lib.chapters.kube_proxy_modes.benchmark import BenchmarkResult

FX = Path(__file__).resolve().parent / "fixtures"


def frame() -> pd.DataFrame:
    doc = json.loads(next(FX.rglob("bench-n10000-debian12.json")).read_text())
    small = json.loads(json.dumps(doc))
    small["n"] = 100
    return BenchmarkResult(host="vm", run_id="t", documents=[small, doc]).frame()


@pytest.mark.parametrize("plot", [plots.plot_latency, plots.plot_programming])
def test_legend_off_the_data_and_references_distinct(plot: Callable[..., Figure]) -> None:
    fig = plot(frame(), host="vm")
    FigureCanvasAgg(fig).draw()
    ax = fig.axes[0]
    legend, axes_box = ax.get_legend(), ax.get_window_extent()
    assert legend is not None and legend.get_window_extent().x0 >= axes_box.x1  # right of the axes
    lines = [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]
    published = [ln for ln in lines if "published" in ln.get_label()]
    measured = [ln for ln in lines if ln not in published]
    assert published and measured
    for ln in published:
        assert ln.get_linestyle() == "None", ln.get_label()          # points, never a series line
        assert ln.get_marker() not in {m.get_marker() for m in measured}
        assert ln.get_markerfacecolor() == "white"
        assert "k8s blog 2025" in ln.get_label() or "PR #126013" in ln.get_label()
    assert not ax.texts                                                # nothing written over the data
    note = fig.get_supxlabel()                                         # the full source, under the plot
    assert "published reference points" in note and ("NFTables mode for kube-proxy" in note or "126013" in note)
