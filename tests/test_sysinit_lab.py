"""system-init against a fresh 3-node lab named `sysinit` (real nodes over SSH)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks_lib.chapters import system_init
from runbooks_lib.cli import main
from runbooks_lib.run import Run
from runbooks_lib.verdict import verdict_for

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


def test_fresh_lab_plan_is_drift_with_the_changes_and_exits_0(lab_params: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    run = start(lab_params, tmp_path / "run")
    result = system_init.plan(run)
    assert result.non_compliant() == []
    drifting = set(result.drifting())
    for host in result.nodes:
        for check in ("sysctl.persisted", "modules.persisted", "crictl.config", "containerd.config", "hosts"):
            assert (check, host) in drifting
    assert any("net.ipv4.ip_forward = 1" in c.diff for c in result.nodes["sysinit-w1"].planned)
    assert verdict_for(run.checks) == "DRIFT" and run.exit_code == 0
    assert {c.status for c in run.checks if c.check == "host.lab"} == {"pass"}     # proven lab nodes
    assert run.figures["na_in_lab"]["checks"] > 0
    assert run.figures["na_in_lab"]["lab_nodes"] == sorted(result.nodes)
    assert result.wall_s < 20
    code = main(["run", "system-init", "-p", str(lab_params), "--out", str(tmp_path / "reports"), "-q"])
    assert code == 0
    assert "system-init: DRIFT" in capsys.readouterr().out
    assert main(["run", "system-init", "-p", str(lab_params), "--out", str(tmp_path / "reports"), "-q",
                 "--detailed-exitcode"]) == 4


def test_apply_without_confirm_leaves_destructive_changes_as_drift(lab_params: Path, tmp_path: Path) -> None:
    run = start(lab_params, tmp_path / "run", "mode=apply")
    result = system_init.apply(run)
    assert result.non_compliant() == []
    for host, nr in result.nodes.items():
        assert {"hosts", "swap.masked", "containerd.config"} <= nr.withheld
        assert result.status("hosts", host) == "drift" and result.status("sysctl.persisted", host) == "pass"
        hosts_fd = next(fd for fd in nr.findings if fd.check == "hosts")
        assert hosts_fd.detail.startswith("needs confirm=sysinit: not applied")
        assert not any(a.change.destructive for a in nr.applied)
    t = run.transport("sysinit-w1")
    assert "runbooks k8s nodes" not in t.run("cat /etc/hosts", check=True).stdout
    assert t.run("systemctl is-enabled swap.target").stdout.strip() != "masked"
    assert verdict_for(run.checks) == "DRIFT"


def test_apply_with_confirm_converges_everything_compliant_or_na_in_lab(lab_params: Path, tmp_path: Path) -> None:
    run = start(lab_params, tmp_path / "run", "mode=apply", "confirm=sysinit")
    result = system_init.apply(run)
    statuses = {c.status for c in run.checks}
    assert result.non_compliant() == [] and result.drifting() == []
    assert statuses <= {"pass", "warn", "n/a", "n/a in lab", "changed", "info"}
    assert all(nr.applied for nr in result.nodes.values())
    assert run.exit_code == 0 and verdict_for(run.checks) == "PASS"
    # host-global state was not touched: reported n/a in lab, never pass
    assert {result.status("sysctl.runtime", h) for h in result.nodes} == {"n/a in lab"}
    assert {result.status("kube.packages", h) for h in result.nodes} == {"n/a in lab"}


def test_second_apply_reports_no_changes_on_every_node(lab_params: Path, tmp_path: Path) -> None:
    run = start(lab_params, tmp_path / "run", "mode=apply", "confirm=sysinit")
    result = system_init.apply(run)
    assert [nr.applied for nr in result.nodes.values()] == [[], [], []]
    changes = [c for c in run.checks if c.check == "changes"]
    assert [(c.status, c.detail) for c in changes] == [("info", "no changes")] * 3
    code = main(["run", "system-init", "-p", str(lab_params), "--out", str(tmp_path / "reports"), "-q",
                 "--detailed-exitcode"])
    assert code == 0


def test_breaking_one_setting_flags_exactly_that_node_and_check(lab_params: Path, tmp_path: Path) -> None:
    run = start(lab_params, tmp_path / "run")
    t = run.transport("sysinit-w2")
    t.run("sed -i 's/^net.ipv4.ip_forward = 1$/net.ipv4.ip_forward = 0/' /etc/sysctl.d/99-kubernetes.conf",
          check=True)
    result = system_init.plan(run)
    assert result.drifting() == [("sysctl.persisted", "sysinit-w2")] and result.non_compliant() == []
    diff = result.nodes["sysinit-w2"].planned[0].diff
    assert "-net.ipv4.ip_forward = 0\n+net.ipv4.ip_forward = 1" in diff
    # and apply puts it back (not destructive: no confirm needed)
    fix = system_init.apply(start(lab_params, tmp_path / "fix", "mode=apply"))
    assert fix.non_compliant() == [] and fix.drifting() == []
    assert [len(n.applied) for n in fix.nodes.values()] == [0, 0, 1]


def test_a_lab_flag_the_facts_do_not_prove_is_an_error_naming_the_host(lab_params: Path, tmp_path: Path) -> None:
    """As if the lab's inventory were copied onto a production node: without the marker (and the other
    proofs) the flag gives no relaxation, and the host is named in an error."""
    run = start(lab_params, tmp_path / "run")
    t = run.transport("sysinit-w2")
    t.run("mv /etc/runbooks-lab /etc/runbooks-lab.moved", check=True)
    try:
        result = system_init.plan(run)
    finally:
        t.run("mv /etc/runbooks-lab.moved /etc/runbooks-lab", check=True)
    lab_check = next(c for c in run.checks if c.check == "host.lab" and c.host == "sysinit-w2")
    assert lab_check.status == "error" and "sysinit-w2 is flagged lab" in lab_check.detail
    assert "no lab marker /etc/runbooks-lab" in lab_check.detail
    assert not result.nodes["sysinit-w2"].lab and result.nodes["sysinit-w1"].lab
    w2 = {fd.check: fd.status for fd in result.nodes["sysinit-w2"].findings}
    assert "n/a in lab" not in w2.values()
    assert w2["sysctl.runtime"] == "drift" and w2["kube.packages"] == "drift"
    assert verdict_for(run.checks) == "FAIL" and run.exit_code == 1
