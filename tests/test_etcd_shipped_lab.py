"""Chapter 07 records where the verified snapshot was copied (``shipped_to``: the runner's directory
and the other host), the report's key figures box shows it, and this run's snapshot is a point of the
trend. On its own 2-node lab ``ebship`` (control plane + a second host for the copy)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks_lib.chapters import etcd_backup as eb
from runbooks_lib.report_figures import key_figures
from runbooks_lib.run import Run

pytestmark = [pytest.mark.lab, pytest.mark.slow]
NAME = "ebship"


@pytest.fixture(scope="module")
def params(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if os.geteuid() != 0 or not shutil.which("podman"):
        pytest.skip("the lab needs root and podman")
    from runbooks_lib.lab import down, is_up, up

    started = not is_up(NAME)
    st = up(NAME, nodes=2)
    d = tmp_path_factory.mktemp("ebship")
    f = d / "ebship.yaml"
    f.write_text(f"cluster_name: {NAME}\ninventory: {st.inventory}\nssh:\n  known_hosts: {st.known_hosts}\n"
                 f"etcd_backup:\n  local_dir: {d / 'local'}\n  copy_to_host: {NAME}-w1\n"
                 f"  remote_dir: /var/backups/etcd-ship\n  copy_to_dir: /var/backups/etcd-ship-copies\n"
                 "  drill: false\n")
    yield f
    if started:
        down(NAME)


def test_shipped_to_names_every_verified_copy(params: Path, tmp_path: Path) -> None:
    run = Run.start("etcd-backup", str(params), ["mode=apply"], str(tmp_path / "run"))
    run.reports_dir = tmp_path / "reports"
    target = eb.discover(run)
    assert target is not None
    result = eb.backup(run, target)
    assert result.verified and result.copies and all(c.ok for c in result.copies)
    eb.record_figures(run, result)
    local = params.parent / "local"
    shipped = run.figures["shipped_to"]
    assert len(shipped) == 2, shipped
    assert shipped[0].startswith(f"local:{local}/") and shipped[0].endswith(Path(result.shipped or "").name)
    assert shipped[1].startswith(f"{NAME}-w1:/var/backups/etcd-ship-copies/")
    box = dict(key_figures("etcd-backup", run.figures))
    assert box["shipped to"] == ", ".join(shipped)
    hist = eb.history(run)
    assert list(hist["status"]) == ["this run"] and hist.iloc[0]["keys"] == run.figures["keys"]
