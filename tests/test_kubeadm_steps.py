"""Chapter 02 records its evidence and checks under named steps (config, survey, preflight, pki, ha,
actions, verify), so each check in the report links to the evidence block that decided it: a preflight
or PKI check to its node's survey block (the facts it was judged on), a node check from the API to the
verify step's API calls. On its own 2-node lab `kstep`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
from lab_support import own_lab, params_file

from runbooks_lib.chapters import kubeadm
from runbooks_lib.report_page import EvidenceIndex
from runbooks_lib.run import Run

pytestmark = [pytest.mark.lab, pytest.mark.slow]
LAB = "kstep"


@pytest.fixture(scope="module")
def lab_params(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The `kstep` lab (brought up here unless it is up) and a parameter file for it; taken down if started."""
    with own_lab(LAB, nodes=2) as state:
        yield params_file(state, tmp_path_factory.mktemp(LAB) / f"{LAB}.yaml")


def test_each_check_links_to_the_evidence_of_its_step(lab_params: Path, tmp_path: Path) -> None:
    run = Run.start("kubeadm", str(lab_params), [], str(tmp_path / "run"))
    kubeadm.plan(run)
    cp, w1 = f"{LAB}-cp1", f"{LAB}-w1"
    steps = {(c.check, c.host): c.step for c in run.checks}
    assert "run" not in set(steps.values()), sorted({k for k, v in steps.items() if v == "run"})
    assert steps[("config.schema", "runner")] == "config"
    assert steps[("preflight.Port-6443", cp)] == "preflight" and steps[("pki.expiry", cp)] == "pki"
    assert steps[("cluster.existing", w1)] == "survey"
    assert {c.step for c in run.checks if c.check.startswith("apply.")} == {"actions"}
    records = [asdict(r) for r in run.recorder.records]
    assert {r["step"] for r in records if r["kind"] == "api"} == {"verify"}
    gathers = {r["target"] for r in records if r["step"] == "survey" and r["command"].startswith("gather facts")}
    assert gathers == {cp, w1}
    ev = EvidenceIndex(records)
    for c in run.checks:
        anchor = ev.anchor_for(asdict(c))
        if (c.step in ("preflight", "pki") or c.check == "cluster.existing") and c.host in gathers:
            # judged on the node's facts: the node's own survey block, not a whole-run block
            assert anchor == ev.block_id("survey", c.host), (c.check, c.host, anchor)
        elif c.step == "verify" and c.host != "runner":
            assert anchor in (ev.step_id["verify"], ev.block_id("verify", c.host)), (c.check, c.host, anchor)
