"""Chapter 07's trend plot and discover panel as an operator reads them (issue 12 items 5 and 11):
the history includes this run's snapshot, on a labelled UTC time axis, marked apart from earlier runs,
the legend off the data; discover's result shows as a setting/value table."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pytest

from runbooks_lib import display
from runbooks_lib.chapters.etcd_backup import chapter
from runbooks_lib.chapters.etcd_backup.etcdctl import Client
from runbooks_lib.chapters.etcd_backup.target import Target
from runbooks_lib.run import Run

matplotlib.use("Agg")


def earlier(root: Path, n: int = 3) -> None:
    for i in range(n):
        (root / f"2025010{i + 1}T020000Z_p.json").write_text(json.dumps({
            "chapter": "etcd-backup", "status": "PASS", "started_utc": f"2025-01-0{i + 1}T02:00:00Z",
            "figures": {"size_bytes": 1e6 * (i + 1), "keys": 100 + i, "revision": 10 + i, "save_s": 1.0,
                        "verify_s": 0.5, "ship_s": 0.5}}))


def this_run(tmp_path: Path, snapshot: bool = True) -> Run:
    """A run (nothing contacted: hosts inline, no lab) with earlier runs' reports beside it."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "known_hosts").write_text("")
    params = tmp_path / "prod.yaml"
    params.write_text("cluster_name: prod\nssh:\n  known_hosts: known_hosts\nhosts:\n"
                      "  - {name: cp1, address: 192.0.2.10, roles: [control-plane, etcd]}\n")
    run = Run.start("etcd-backup", str(params), [], str(tmp_path / "run"))
    run.reports_dir = tmp_path / "reports"
    run.reports_dir.mkdir()
    earlier(run.reports_dir)
    if snapshot:
        for key, value in {"size_bytes": 4.5e6, "keys": 420, "revision": 77, "save_s": 0.8, "verify_s": 0.2,
                           "ship_s": 0.3}.items():
            run.figure(key, value)
    return run


def test_history_includes_this_runs_snapshot(tmp_path: Path) -> None:
    run = this_run(tmp_path)
    df = chapter.history(run)
    assert list(df["status"]) == ["PASS", "PASS", "PASS", "this run"]
    assert df.iloc[-1]["keys"] == 420 and df.iloc[-1]["size_mb"] == 4.5 and df.iloc[-1]["duration_s"] == 1.3
    # a plan run took no snapshot: no point of its own
    assert "this run" not in set(chapter.history(this_run(tmp_path / "plan", snapshot=False))["status"])


def test_trend_plot_has_utc_time_axes_this_run_marked_and_legend_off_the_data(tmp_path: Path) -> None:
    fig = chapter.plot_history(chapter.history(this_run(tmp_path)))
    assert fig is not None and len(fig.axes) == 3
    fig.canvas.draw()
    for ax in fig.axes:
        assert ax.get_xlabel() == "run start (UTC), from 2025-01-01 02:00" and ax.get_ylabel()
        assert ax.get_legend() is None                               # no legend over the data
        marked = [ln for ln in ax.get_lines() if ln.get_label() == "this run"]
        assert len(marked) == 1 and marked[0].get_marker() == "*" and len(marked[0].get_xdata()) == 1
        # the current run is inside the axis range (the time axis reaches it)
        x = matplotlib.dates.date2num(marked[0].get_xdata()[0])
        assert ax.get_xlim()[0] <= x <= ax.get_xlim()[1]
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["runs", "this run"]
    assert legend.get_window_extent().y1 <= min(ax.get_window_extent().y0 for ax in fig.axes)


def test_discover_result_shows_as_a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    target = Target("cp1", Client("/usr/local/bin/etcdctl", "https://10.0.0.1:2379", "/pki/ca.crt",
                                  "/pki/client.crt", "/pki/client.key"),
                    None, "manifest:/etc/kubernetes/manifests/etcd.yaml", {"etcdctl": "/usr/local/bin/etcdctl"})
    shown: list[str] = []
    monkeypatch.setattr(display, "_show", shown.append)
    display.show_value(target)
    (page,) = shown
    assert "<table" in page and "Target(" not in page and "Client(" not in page
    for setting, value in (("endpoint", "https://10.0.0.1:2379"), ("cacert", "/pki/ca.crt"),
                           ("status tool", "etcdctl")):
        assert f">{setting}<" in page.replace("_", " ") and value in page, setting
