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
    assert seen == [10, 100, 1000]
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
    env = result.environment()
    assert "nf_tables" in env["tools"]["iptables"] or "legacy" in env["tools"]["iptables"]


def _start(run_id: str, n: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-", "--run-id", run_id, "--n", str(n), "--connections", "20000",
         "--point-time-limit", "60", "--modes", "nftables,iptables"],
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
    run_id = bm.new_run_id()
    proc = _start(run_id, 3000)
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
