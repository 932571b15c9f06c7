"""Plots of the benchmark (matplotlib Figure objects; a notebook shows them inline)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .reference import reference_frame

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

COLORS = {"iptables": "#cf222e", "nftables": "#1a7f37", "ipvs": "#8250df", "floor (no rules)": "#6e7781"}


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame["status"] == "ok")].sort_values("n")


def plot_latency(frame: pd.DataFrame, host: str = "", reference: bool = True) -> Figure:
    """New-connection latency vs N per mode (p50 line, p90–p99 band), log x; reference points."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), layout="constrained")
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
        for mode, group in ref.groupby("mode"):
            ax.plot(group["n"], group["value"], linestyle=":", marker="s", markerfacecolor="none",
                    color=COLORS.get(str(mode)), label=f"{mode} p50 (reference: k8s blog 2025)")
    ax.set_xscale("log")
    ax.set_xlabel("Services (N), log scale")
    ax.set_ylabel("connect() latency, µs")
    ax.set_title(f"New TCP connection to the last-programmed Service{' — ' + host if host else ''}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    return fig


def plot_programming(frame: pd.DataFrame, host: str = "", reference: bool = True) -> Figure:
    """Full programming time and one-service incremental time vs N, log-log."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.5), layout="constrained")
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
        ax.plot(ref["n"], ref["value"], linestyle="none", marker="s", markerfacecolor="none",
                color=COLORS["nftables"], label="nftables add 1 Service (reference: PR #126013)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Services (N), log scale")
    ax.set_ylabel("seconds, log scale")
    ax.set_title(f"Rule programming time{' — ' + host if host else ''}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
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
