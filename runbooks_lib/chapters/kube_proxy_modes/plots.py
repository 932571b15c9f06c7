"""Plots of the benchmark (matplotlib Figure objects; a notebook shows them inline).

Measured series are lines with filled markers; published reference figures are unconnected hollow
diamonds, their source named in the legend and in full under the plot. The legend sits
right of the axes, never over the data."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .reference import BLOG, PR_126013, reference_frame

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

COLORS = {"iptables": "#cf222e", "nftables": "#1a7f37", "ipvs": "#8250df", "floor (no rules)": "#6e7781"}
#: short names of the reference sources, written beside their points
SHORT = {BLOG: "k8s blog 2025", PR_126013: "PR #126013"}
#: the marker of a published reference point (unconnected, hollow: never read as a measured series)
REFERENCE_MARKER = "D"


def _reference(ax: Axes, n: pd.Series, values: pd.Series, mode: str, source: str, what: str) -> None:
    """Published points for ``mode``: unconnected hollow diamonds edged in the mode's colour, the
    source named in the legend (short) and under the plot (in full, see :func:`_sources`)."""
    ax.plot(n, values, color=COLORS.get(mode, "#24292f"),
            label=f"{mode} {what} — published ({SHORT.get(source, source)})",
            linestyle="none", marker=REFERENCE_MARKER, markersize=7, markerfacecolor="white",
            markeredgewidth=1.6, zorder=5)


def _sources(fig: Figure, sources: list[str]) -> None:
    """The full sources of the reference points, in a line under the axes (never on the data)."""
    if sources:
        fig.supxlabel("◇ published reference points: " + "; ".join(sorted(set(sources))), fontsize=7,
                      fontstyle="italic", color="#57606a")


def _legend_outside(ax: Axes) -> None:
    """The legend right of the axes (constrained layout makes room), never over the data."""
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame["status"] == "ok")].sort_values("n")


def plot_latency(frame: pd.DataFrame, host: str = "", reference: bool = True) -> Figure:
    """New-connection latency vs N per mode (p50 line, p90–p99 band), log x; reference points."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ok = _ok(frame)
    for mode, group in ok.groupby("mode", sort=False):
        color = COLORS.get(str(mode), None)
        style = "--" if mode == "floor (no rules)" else "-"
        ax.plot(group["n"], group["p50_us"], style, marker="o", color=color, label=f"{mode} p50 (measured)")
        if mode != "floor (no rules)":
            ax.fill_between(group["n"], group["p90_us"], group["p99_us"], color=color, alpha=0.12,
                            label=f"{mode} p90–p99")
    if reference:
        ref = reference_frame()
        ref = ref[ref["metric"] == "first-packet p50"]
        for (mode, source), group in ref.groupby(["mode", "source"]):
            _reference(ax, group["n"], group["value"], str(mode), str(source), "p50")
        _sources(fig, list(ref["source"]))
    ax.set_xscale("log")
    ax.set_xlabel("Services (N), log scale")
    ax.set_ylabel("connect() latency, µs")
    ax.set_title(f"New TCP connection to the last-programmed Service{' — ' + host if host else ''}")
    ax.grid(True, which="both", alpha=0.3)
    _legend_outside(ax)
    return fig


def plot_programming(frame: pd.DataFrame, host: str = "", reference: bool = True) -> Figure:
    """Full programming time and one-service incremental time vs N, log-log."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ok = _ok(frame)
    ok = ok[ok["program_s"].notna()]
    for mode, group in ok.groupby("mode", sort=False):
        color = COLORS.get(str(mode))
        ax.plot(group["n"], group["program_s"], "-", marker="o", color=color, label=f"{mode}: full load")
        procs = group["incremental_procs"].max() if "incremental_procs" in group else None
        extra = f" ({int(procs)} processes; the others 1)" if procs and procs > 1 else ""
        ax.plot(group["n"], group["incremental_s"], "--", marker="^", color=color,
                label=f"{mode}: add 1 Service{extra}")
    if reference:
        ref = reference_frame()
        ref = ref[ref["unit"] == "s"]
        for (mode, source), group in ref.groupby(["mode", "source"]):
            _reference(ax, group["n"], group["value"], str(mode), str(source), "add 1 Service")
        _sources(fig, list(ref["source"]))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Services (N), log scale")
    ax.set_ylabel("seconds, log scale")
    ax.set_title(f"Rule programming time{' — ' + host if host else ''}")
    ax.grid(True, which="both", alpha=0.3)
    _legend_outside(ax)
    return fig


def show(fig: Figure, dpi: int = 110) -> None:
    """Embed ``fig`` as a PNG in the notebook output (no pyplot state, works headless)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    try:
        from IPython.display import Image, display
    except ImportError:  # plain python
        print(f"[figure: {fig.axes[0].get_title() if fig.axes else ''}]")
        return
    display(Image(data=buf.getvalue(), format="png"))
