"""Chapter 06 on its own 2-node lab `oebs`: the fresh-lab plan verdict, the node prerequisites read
for real over SSH, and the fio trials run for real on both nodes at once (fio installed by apply
where missing), leaving nothing behind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_support import own_lab, params_file

from runbooks_lib.chapters.openebs_storage import chapter
from runbooks_lib.cli import main
from runbooks_lib.run import Run
from runbooks_lib.verdict import verdict_for

pytestmark = [pytest.mark.lab, pytest.mark.slow]
LAB = "oebs"


@pytest.fixture(scope="module")
def lab_params(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The `oebs` lab (brought up here unless it is up) and a parameter file for it; taken down if started."""
    with own_lab(LAB, nodes=2) as state:
        yield params_file(state, tmp_path_factory.mktemp(LAB) / f"{LAB}.yaml")


def test_fresh_lab_plan_is_pass_and_changes_nothing(lab_params: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    assert main(["run", "openebs-storage", "-p", str(lab_params), "--out", str(out), "-q"]) == 0
    run = Run.start("openebs-storage", str(lab_params), [], str(tmp_path / "run"))
    c = chapter.connect(run)
    chapter.detect_release(run, c, run.params.openebs_storage)
    chapter.node_prereqs(run, run.params.openebs_storage)
    chapter.fio_trials(run, run.params.openebs_storage)
    assert verdict_for(run.checks) == "PASS", [x for x in run.checks if x.failed]
    got = {(x.check, x.host): x.status for x in run.checks}
    for host in (f"{LAB}-cp1", f"{LAB}-w1"):
        assert got[("hostpath.free", host)] == "pass" and got[("iscsi", host)] == "info"
        assert got[("disks.raw", host)] == "info"
    assert got[("trial.fio", f"{LAB}-cp1, {LAB}-w1")] == "info"       # plan: said, not run


def test_cstor_legacy_prereqs_on_lab_nodes(lab_params: Path, tmp_path: Path) -> None:
    run = Run.start("openebs-storage", str(lab_params), ["openebs_storage.engine=cstor-legacy"], str(tmp_path / "r"))
    chapter.node_prereqs(run, run.params.openebs_storage)
    got = {(x.check, x.host): x.status for x in run.checks}
    assert got[("iscsi_tcp", f"{LAB}-w1")] == "n/a in lab"      # proven lab node: modules are the host's
    assert got[("iscsi", f"{LAB}-w1")] in ("drift", "n/a in lab")  # not installed / installed, cannot run
    assert got[("disks.raw", f"{LAB}-w1")] == "fail"            # a container has no raw disk


def test_cstor_legacy_apply_installs_the_initiator_once(lab_params: Path, tmp_path: Path) -> None:
    """open-iscsi is installed for real; iscsid cannot start in a container (the host kernel's iSCSI
    netlink): n/a in lab, with the journal in the install check. A second apply changes nothing."""
    w1 = f"{LAB}-w1"
    over = ["mode=apply", "openebs_storage.engine=cstor-legacy", f"only_hosts=[{w1}]"]
    run = Run.start("openebs-storage", str(lab_params), over, str(tmp_path / "a1"))
    purge = run.transport(w1).run("DEBIAN_FRONTEND=noninteractive apt-get -qq purge -y open-iscsi >/dev/null 2>&1; "
                                  "command -v iscsiadm || echo gone", sudo=True, timeout=120)
    assert purge.stdout.strip() == "gone"
    chapter.node_prereqs(run, run.params.openebs_storage)
    got = {(x.check, x.host): x for x in run.checks}
    install = got[("iscsi.install", w1)]
    if install.status == "fail" and "install failed" in install.detail:
        pytest.skip(f"open-iscsi could not be installed in the lab node: {install.detail[-200:]}")
    assert install.status == "changed" and "initiator installed" in install.detail
    assert got[("iscsi", w1)].status == "n/a in lab" and "host kernel" in got[("iscsi", w1)].detail
    again = Run.start("openebs-storage", str(lab_params), over, str(tmp_path / "a2"))
    chapter.node_prereqs(again, again.params.openebs_storage)
    assert not [x for x in again.checks if x.check == "iscsi.install"]


def test_fio_runs_for_real_on_both_nodes_in_parallel(lab_params: Path, tmp_path: Path) -> None:
    w1 = f"{LAB}-w1"
    run = Run.start("openebs-storage", str(lab_params), ["mode=apply"], str(tmp_path / "a"))
    removed = run.transport(w1).run("DEBIAN_FRONTEND=noninteractive apt-get -qq remove -y fio >/dev/null 2>&1; "
                                    "command -v fio || echo gone", sudo=True, timeout=120)
    assert removed.stdout.strip() == "gone"   # apply has to install it again
    t0 = time.monotonic()
    frame = chapter.fio_trials(run, run.params.openebs_storage)
    took = time.monotonic() - t0
    got = {(x.check, x.host): x for x in run.checks}
    if got[("trial.fio", w1)].status != "pass" and "installing fio failed" in got[("trial.fio", w1)].detail:
        pytest.skip(f"fio could not be installed in the lab node: {got[('trial.fio', w1)].detail[-200:]}")
    for host in (f"{LAB}-cp1", w1):
        assert got[("trial.fio", host)].status == "pass", got[("trial.fio", host)].detail
        assert got[("trial.fio.cleanup", host)].status == "pass"
        jobs = run.figures["fio"][host]["jobs"]
        assert jobs["randread_4k"]["iops"] > 0 and jobs["randread_4k"]["p99_ms"] >= jobs["randread_4k"]["p50_ms"]
        assert jobs["fdatasync_2300"]["sync_p99_ms"] > 0
    assert run.figures["fio"][w1]["installed"].startswith("fio (apt-get)")
    assert set(frame["host"]) == {f"{LAB}-cp1", w1} and len(frame) == 10
    assert took < 180 + 120  # jobs ≤ 3 min for the nodes at once, plus the package install on w1
