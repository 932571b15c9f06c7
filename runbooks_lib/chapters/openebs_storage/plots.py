"""Storage trial plots (matplotlib Figures; ``kube_proxy_modes.plots.show`` embeds them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .fio import FDATASYNC_P99_MS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure


def plot_latency(frame: pd.DataFrame, where: str = "node-level, hostpath filesystem") -> Figure:
    """p50 and p99 completion latency per job and host (log scale), fdatasync p99 against 10 ms."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.2), layout="constrained")
    ax = fig.add_subplot()
    jobs = list(dict.fromkeys(frame["job"]))
    hosts = list(dict.fromkeys(frame["host"]))
    width = 0.8 / max(1, len(hosts))
    for i, host in enumerate(hosts):
        rows = frame[frame["host"] == host].set_index("job").reindex(jobs)
        x = [j + i * width for j in range(len(jobs))]
        p99 = rows["sync_p99_ms"].fillna(rows["p99_ms"])
        ax.bar(x, p99, width * 0.9, alpha=0.35, label=f"{host} p99 (fdatasync: sync p99)")
        ax.plot(x, rows["p50_ms"], "o", label=f"{host} p50")
    ax.axhline(FDATASYNC_P99_MS, color="#cf222e", linestyle=":", label="etcd fdatasync p99 guideline (10 ms)")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(jobs))], jobs, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("latency, ms (log)")
    ax.set_title(f"fio latency per job — {where}")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return fig
