"""The `kubectl top nodes` bar plot: CPU and memory used as a share of each node's allocatable."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure


def plot_usage(top: pd.DataFrame) -> Figure:
    """Bars per node: cpu_% and memory_% of allocatable (from metrics.top_nodes)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.5), layout="constrained")
    ax = fig.add_subplot()
    x = range(len(top))
    ax.bar([i - 0.2 for i in x], top["cpu_%"].fillna(0), width=0.4, label="CPU % of allocatable")
    ax.bar([i + 0.2 for i in x], top["memory_%"].fillna(0), width=0.4, label="memory % of allocatable")
    ax.set_xticks(list(x), list(top["node"]))
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of allocatable")
    ax.set_title("Usage vs allocatable (Metrics API, as kubectl top nodes)")
    ax.legend()
    return fig
