"""Chapter 03 against a fresh 2-node lab named `kpm` (real nodes over SSH, its API double): plan sends
no benchmark, apply benchmarks the proven lab node, a lab-flagged node whose facts do not prove it
is refused."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks_lib.chapters.kube_proxy_modes import chapter
from runbooks_lib.run import Run
from runbooks_lib.verdict import verdict_for

pytestmark = [pytest.mark.lab, pytest.mark.slow]
LAB = "kpm"
SMALL = ["kube_proxy_modes.grid=[10,100]", "kube_proxy_modes.connections=100", "kube_proxy_modes.probe_rounds=2"]


@pytest.fixture(scope="module")
def lab_params(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh lab (down, then up) and a parameter file for it; the lab is taken down afterwards."""
    from runbooks_lib.lab import lab

    lab.down(LAB)
    state = lab.up(LAB, nodes=2)
    path = tmp_path_factory.mktemp("kpm") / "kpm.yaml"
    path.write_text(f"cluster_name: {LAB}\ninventory: {state.inventory}\nssh: {{known_hosts: {state.known_hosts}}}\n"
                    f"kube: {{kubeconfig: {state.kubeconfig}}}\n")
    yield path
    if not os.environ.get("RUNBOOKS_KEEP_LAB"):
        lab.down(LAB)


def _part_a(params: Path, tmp: Path, *overrides: str) -> Run:
    run = Run.start("kube-proxy-modes", str(params), [*SMALL, *overrides], str(tmp))
    chapter.dataplane_benchmark(run, run.params.kube_proxy_modes, progress=None)
    return run


def _bench_commands(run: Run) -> list[str]:
    return [r.command for r in run.recorder.records if r.kind == "command" and "node_bench.py" in r.command]


def test_plan_sends_nothing_and_apply_benchmarks_the_proven_lab_node(lab_params: Path, tmp_path: Path) -> None:
    plan = _part_a(lab_params, tmp_path / "plan")
    assert [r for r in plan.recorder.records if r.kind == "command"] == []
    check = next(c for c in plan.checks if c.check == "kube-proxy benchmark")
    assert (check.host, check.status) == (f"{LAB}-cp1", "info") and "grid N=10, 100" in check.detail
    assert verdict_for(plan.checks) == "PASS"

    run = _part_a(lab_params, tmp_path / "apply", "mode=apply")
    statuses = {c.check: (c.host, c.status) for c in run.checks}
    assert statuses["kube-proxy benchmark ran"] == (f"{LAB}-cp1", "pass")
    assert statuses["kube-proxy benchmark: iptables"][1] == statuses["kube-proxy benchmark: nftables"][1] == "pass"
    assert statuses["kube-proxy benchmark: ipvs"][1] in ("pass", "n/a")
    assert statuses["benchmark left nothing behind"][1] == "pass"
    assert _bench_commands(run) and verdict_for(run.checks) == "PASS"


def test_a_lab_flagged_node_without_the_lab_marker_is_not_benchmarked(lab_params: Path, tmp_path: Path) -> None:
    probe = Run.start("kube-proxy-modes", str(lab_params), [], str(tmp_path / "probe"))
    node = probe.transport(f"{LAB}-cp1")
    assert node.run("mv /etc/runbooks-lab /etc/runbooks-lab.away", sudo=True, timeout=30).ok
    try:
        run = _part_a(lab_params, tmp_path / "apply", "mode=apply")
    finally:
        assert node.run("mv /etc/runbooks-lab.away /etc/runbooks-lab", sudo=True, timeout=30).ok
    check = next(c for c in run.checks if c.check == "kube-proxy benchmark host")
    assert (check.host, check.status) == (f"{LAB}-cp1", "error")
    assert "flagged lab but its facts do not prove it: no lab marker /etc/runbooks-lab" in check.detail
    assert _bench_commands(run) == [] and run.exit_code == 1
