"""The main job (`scripts/main.sh` = `runbooks run-all`): every built chapter, reports, index.

On a fresh lab the plan finds work for apply (system-init: packages, sysctl, ...; etcd-backup: no
snapshot yet), which is DRIFT, not failure: exit 0, and 4 with ``--detailed-exitcode``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks_lib.chapters import CHAPTERS
from runbooks_lib.cli import main
from runbooks_lib.lab import lab
from runbooks_lib.lab.engine import STATE_ROOT
from runbooks_lib.params import PROJECT_ROOT

pytestmark = pytest.mark.lab

#: each built chapter's verdict on a fresh lab in plan mode
FRESH_LAB = {"system-init": "DRIFT", "kubeadm": "DRIFT", "kube-proxy-modes": "PASS", "calico-ips": "PASS",
             "metrics-server": "PASS", "openebs-storage": "PASS", "etcd-backup": "DRIFT"}


LAB = "runall"  # this module's own lab: run-all brings it up, as the main job does on a fresh clone


def _lab_params(tmp_path: Path) -> Path:
    """parameters/lab.yaml (the main job's default) pointed at this module's lab, which is not up yet."""
    text = (PROJECT_ROOT / "parameters" / "lab.yaml").read_text()
    assert "../.lab/lab/" in text and "lab-cp1" in text
    text = text.replace("../.lab/lab/", f"{STATE_ROOT / LAB}/").replace("lab-cp1", f"{LAB}-cp1")
    (tmp_path / "lab.yaml").write_text(text)
    return tmp_path / "lab.yaml"


@pytest.fixture
def fresh_lab() -> Iterator[str]:
    if lab.is_up(LAB) or lab.state_dir(LAB).exists():
        lab.down(LAB)  # never a lab somebody left up: this test is about bringing it up
    try:
        yield LAB
    finally:
        if not os.environ.get("RUNBOOKS_KEEP_LAB"):
            lab.down(LAB)


def test_run_all_brings_the_lab_up_and_runs_every_chapter(fresh_lab: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A fresh clone: the lab's inventory does not exist until `lab up`. `run` refuses with the way out and
    brings nothing up; `run-all` (the main job) brings the lab up itself, then runs every built chapter."""
    params = _lab_params(tmp_path)
    out = tmp_path / "reports"
    assert main(["run", "kubeadm", "-p", str(params), "--out", str(out), "-q"]) == 2
    refused = capsys.readouterr().err
    assert "inventory file not found" in refused and f"runbooks lab up --name {LAB}" in refused
    assert "nothing was contacted" in refused and not lab.state_dir(LAB).exists() and not out.exists()
    assert main(["run-all", "-p", str(params), "--no-lab", "--out", str(out), "-q"]) == 2
    assert not lab.state_dir(LAB).exists()
    code = main(["run-all", "-p", str(params), "--out", str(out), "-q", "--detailed-exitcode"])
    printed = capsys.readouterr()
    assert f"bringing up the lab '{LAB}' (its inventory does not exist yet)" in printed.err
    assert lab.is_up(LAB)
    built = [ch.name for ch in CHAPTERS if ch.built]
    verdicts = {}
    for name in built:
        reports = sorted((out / name).glob("*.json"))
        assert len(reports) == 1, f"{name}: {reports}"
        data = json.loads(reports[0].read_text())
        assert data["mode"] == "plan" and any(LAB in t for t in data["targets"])
        assert reports[0].with_suffix(".html").exists()
        verdicts[name] = data["status"]
        assert f"report: {reports[0].with_suffix('.html')}" in printed.out
        assert data["execution_error"] is None, (name, data["execution_error"])
    assert verdicts == {k: v for k, v in FRESH_LAB.items() if k in built}, verdicts
    pending = json.loads(sorted((out / "system-init").glob("*.json"))[0].read_text())["pending"]
    assert pending > 0 and f"system-init: DRIFT ({pending} changes pending)" in printed.out
    assert code == 4, printed.err  # DRIFT with --detailed-exitcode; 0 without (tests/test_runner.py)
    index = (out / "index.html").read_text()
    assert all(name in index for name in built)
    assert f"index: {out / 'index.html'}" in printed.out
    for ch in CHAPTERS:
        if not ch.built:
            assert f"skip {ch.name}: not built yet" in printed.err
