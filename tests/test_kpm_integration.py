"""The benchmark for real on this machine (LocalTransport, network namespaces), small grid.

Needs root and iproute2; the kernel features are real: rules load into namespaces created by the
test, connections go to listeners in them, IPVS is reported unavailable where the kernel lacks it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runbooks_lib.chapters.kube_proxy_modes import benchmark as bm
from runbooks_lib.chapters.kube_proxy_modes import facts
from runbooks_lib.chapters.kube_proxy_modes.settings import Settings
from runbooks_lib.transport import LocalTransport

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2"),
]


def _kernel_has_ipvs() -> bool:
    return Path("/proc/net/ip_vs").exists()


def test_small_grid_shape_ipvs_and_nothing_left_behind() -> None:
    settings = Settings(grid=[10, 100, 1000], connections=300, point_time_limit_s=20, per_n_timeout_s=120)
    seen: list[int] = []
    result = bm.run_benchmark(LocalTransport("local"), settings, progress=lambda n, _doc: seen.append(n))
    assert result.errors == []
    assert seen == [10, 100, 1000, -1]  # one call per N (rules), then the interleaved latency pass
    frame = result.frame()
    assert list(frame.columns) == facts.ROW_COLUMNS
    assert len(frame) == 3 * 4  # floor + 3 modes per N
    for mode in ("iptables", "nftables", "floor (no rules)"):
        rows = frame[frame["mode"] == mode]
        assert list(rows["status"]) == ["ok"] * 3, rows[["n", "status", "detail"]]
        assert (rows["connections"] >= 300).all() and (rows["errors"] == 0).all()
        assert (rows["p50_us"] > 0).all() and (rows["p99_us"] >= rows["p50_us"]).all()
    rules = frame[frame["mode"] == "iptables"].set_index("n")["rules"]
    assert rules[1000] > rules[100] > rules[10]
    ipvs = frame[frame["mode"] == "ipvs"]
    if _kernel_has_ipvs():
        assert set(ipvs["status"]) <= {"ok", "unavailable"}
    else:
        assert list(ipvs["status"]) == ["unavailable"] * 3
        assert ipvs["detail"].str.contains("kernel has no IPVS").all()
    assert result.leftovers == []
    # latency came from one interleaved pass over all points after the rules of every N were loaded
    assert result.probe["order"][0] == "floor" and len(result.probe["order"]) == 1 + 2 * 3
    for doc in result.documents:
        assert doc["latency_pass"]["rounds"] == settings.probe_rounds and "kept" in doc
        for mode in ("iptables", "nftables"):
            assert len(doc["modes"][mode]["latency"]["rounds_p50_us"]) == settings.probe_rounds
    env = result.environment()
    assert "nf_tables" in env["tools"]["iptables"] or "legacy" in env["tools"]["iptables"]


def _start(run_id: str, n: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-", "--run-id", run_id, "--n", str(n), "--connections", "20000",
         "--point-time-limit", "60", "--modes", "nftables,iptables", *extra],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)


def _wait_for_netns(prefix: str, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
        names = [n for n in facts.parse_netns_list(out) if n.startswith(prefix)]
        if len([n for n in names if "-c" in n]) >= 1:
            return names
        time.sleep(0.05)
    raise AssertionError(f"no namespaces of {prefix} appeared within {timeout}s")


def test_sigterm_mid_run_cleans_up() -> None:
    """Interrupted, a per-N run removes everything, also the namespaces it was to keep for the probe."""
    run_id = bm.new_run_id()
    proc = _start(run_id, 3000, "--slot", "3")
    assert proc.stdin is not None
    proc.stdin.write(bm.node_source())
    proc.stdin.close()
    names = _wait_for_netns(f"kpm-{run_id}")
    assert any(n.endswith("-ep0") for n in names)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert bm.leftovers(LocalTransport("local"), run_id) == []


def test_killed_program_is_cleaned_by_prefix() -> None:
    run_id = bm.new_run_id()
    proc = _start(run_id, 2000)
    assert proc.stdin is not None
    proc.stdin.write(bm.node_source())
    proc.stdin.close()
    _wait_for_netns(f"kpm-{run_id}")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    transport = LocalTransport("local")
    before = bm.leftovers(transport, run_id)
    assert any(item.startswith("netns kpm-") for item in before), before
    out = bm.cleanup(transport, run_id)
    assert out["cleanup"]["netns_left"] == []
    assert bm.leftovers(transport, run_id) == []


def test_per_n_runs_keep_their_namespaces_for_the_probe_which_removes_everything() -> None:
    run_id = bm.new_run_id()
    t = LocalTransport("local")
    s = Settings(grid=[10, 100], connections=100, modes=["nftables", "iptables"], probe_rounds=2)
    try:
        for slot, n in enumerate(s.grid):
            res = bm._node_run(t, [*bm.node_args(run_id, n, s), "--slot", str(slot)], 120, "test")
            assert res.ok, res.stderr
            doc = facts.parse_bench_output(res.stdout)
            # a per-N run only loads and times the rules: no latency of its own (no median-round path), no floor
            assert "floor" not in doc and "floor_runs" not in doc
            for mode in ("nftables", "iptables"):
                entry = doc["modes"][mode]
                assert entry["status"] == "ok" and "latency" not in entry and entry["incremental_s"] > 0
                assert entry["timed"]["incremental_processes"] == 1
        names = set(facts.parse_netns_list(t.run("ip netns list").stdout))
        clients = {f"kpm-{run_id}-c{m}{n}" for m in ("nft", "ipt") for n in (10, 100)}
        assert clients <= names
        assert not t.run(f"grep -lx kpm-{run_id} /proc/[0-9]*/comm").stdout.strip()  # no listener waits
        # one /30 per client namespace on the endpoint side: distinct, so replies find their way back
        addrs = t.run(f"ip -n kpm-{run_id}-ep0 -4 -o addr show").stdout
        nets = [ln.split()[3] for ln in addrs.splitlines() if ln.split()[1] != "lo"]
        assert len(nets) == 4 and len(set(nets)) == 4, addrs
        result = bm.BenchmarkResult("local", run_id, documents=[{"n": n, "modes": {
            "nftables": {"status": "ok"}, "iptables": {"status": "ok"}}} for n in s.grid])
        bm.probe_latency(t, run_id, s, result)
        assert result.errors == []
        assert set(result.probe["results"]) == {"floor"} | {f"{m}/{n}" for m in ("nftables", "iptables")
                                                           for n in (10, 100)}
        for doc in result.documents:
            for entry in doc["modes"].values():
                assert entry["status"] == "ok" and entry["latency"]["count"] >= 100
                assert entry["latency"]["errors"] == 0
        assert bm.leftovers(t, run_id) == []
    finally:
        bm.cleanup(t, run_id)
