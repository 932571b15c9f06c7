"""system-init against a fresh 3-node lab named `sysinit` (real nodes over SSH)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks_lib.chapters import system_init
from runbooks_lib.cli import main
from runbooks_lib.run import Run

pytestmark = [pytest.mark.lab, pytest.mark.slow]
LAB = "sysinit"


@pytest.fixture(scope="module")
def lab_params(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh lab (down, then up) and a parameter file for it; the lab is taken down afterwards."""
    from runbooks_lib.lab import lab

    lab.down(LAB)
    state = lab.up(LAB, nodes=3)
    cp = state.control_plane.ip
    path = tmp_path_factory.mktemp("sysinit") / "sysinit.yaml"
    path.write_text(f"cluster_name: {LAB}\ninventory: {state.inventory}\n"
                    f"ssh: {{known_hosts: {state.known_hosts}}}\n"
                    f"system_init: {{ntp_servers: [{cp}]}}\n")
    yield path
    if not os.environ.get("RUNBOOKS_KEEP_LAB"):
        lab.down(LAB)


def start(params: Path, tmp: Path, *overrides: str) -> Run:
    return Run.start("system-init", str(params), list(overrides), str(tmp))


def test_fresh_lab_plan_lists_non_compliances_and_exits_1(lab_params: Path, tmp_path: Path) -> None:
    run = start(lab_params, tmp_path / "run")
    result = system_init.plan(run)
    bad = set(result.non_compliant())
    for host in result.nodes:
        for check in ("sysctl.persisted", "modules.persisted", "crictl.config", "containerd.config"):
            assert (check, host) in bad
    assert "ip_forward" in result.nodes["sysinit-w1"].planned[3].diff or any(
        "net.ipv4.ip_forward = 1" in c.diff for c in result.nodes["sysinit-w1"].planned)
    assert run.exit_code == 1
    assert result.wall_s < 20
    code = main(["run", "system-init", "-p", str(lab_params), "--out", str(tmp_path / "reports"), "-q"])
    assert code == 1


def test_apply_converges_everything_compliant_or_na_in_lab(lab_params: Path, tmp_path: Path) -> None:
    run = start(lab_params, tmp_path / "run", "mode=apply")
    result = system_init.apply(run)
    statuses = {c.status for c in run.checks}
    assert result.non_compliant() == []
    assert statuses <= {"pass", "warn", "n/a", "n/a in lab", "changed", "info"}
    assert all(nr.applied for nr in result.nodes.values())
    assert run.exit_code == 0
    # host-global state was not touched: reported n/a in lab, never pass
    assert {result.status("sysctl.runtime", h) for h in result.nodes} == {"n/a in lab"}
    assert {result.status("kube.packages", h) for h in result.nodes} == {"n/a in lab"}


def test_second_apply_reports_no_changes_on_every_node(lab_params: Path, tmp_path: Path) -> None:
    run = start(lab_params, tmp_path / "run", "mode=apply")
    result = system_init.apply(run)
    assert [nr.applied for nr in result.nodes.values()] == [[], [], []]
    changes = [c for c in run.checks if c.check == "changes"]
    assert [(c.status, c.detail) for c in changes] == [("info", "no changes")] * 3
    code = main(["run", "system-init", "-p", str(lab_params), "--out", str(tmp_path / "reports"), "-q"])
    assert code == 0


def test_breaking_one_setting_flags_exactly_that_node_and_check(lab_params: Path, tmp_path: Path) -> None:
    run = start(lab_params, tmp_path / "run")
    t = run.transport("sysinit-w2")
    t.run("sed -i 's/^net.ipv4.ip_forward = 1$/net.ipv4.ip_forward = 0/' /etc/sysctl.d/99-kubernetes.conf",
          check=True)
    result = system_init.plan(run)
    assert result.non_compliant() == [("sysctl.persisted", "sysinit-w2")]
    diff = result.nodes["sysinit-w2"].planned[0].diff
    assert "-net.ipv4.ip_forward = 0\n+net.ipv4.ip_forward = 1" in diff
    # and apply puts it back
    fix = system_init.apply(start(lab_params, tmp_path / "fix", "mode=apply"))
    assert fix.non_compliant() == [] and [len(n.applied) for n in fix.nodes.values()] == [0, 0, 1]
