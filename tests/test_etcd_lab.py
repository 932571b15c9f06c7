"""etcd-backup against the lab: a real etcd 3.4 with TLS on a podman node, reached over SSH.

Uses its own lab ``etcd`` (2 nodes: the control plane and a second host for copies). The lab is
brought up when it is not running and taken down at the end when this module brought it up.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks_lib.chapters import etcd_backup as eb
from runbooks_lib.chapters.etcd_backup import node as n
from runbooks_lib.run import DestructiveRefused, Run

pytestmark = pytest.mark.lab
NAME = "etcd"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lab() -> Iterator[object]:
    if os.geteuid() != 0 or not shutil.which("podman"):
        if os.environ.get("RUNBOOKS_REQUIRE_LAB"):
            pytest.fail("RUNBOOKS_REQUIRE_LAB is set but the lab cannot run here")
        pytest.skip("the lab needs root and podman")
    from runbooks_lib.lab import down, is_up, up

    started = not is_up(NAME)
    state = up(NAME, nodes=2)
    yield state
    if started:
        down(NAME)


@pytest.fixture(scope="module")
def params(lab: object, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("etcdlab")
    st = lab
    f = d / "etcdlab.yaml"
    f.write_text(f"cluster_name: {NAME}\ninventory: {st.inventory}\n"  # type: ignore[attr-defined]
                 f"ssh:\n  known_hosts: {st.known_hosts}\n  connect_timeout: 5\n  command_timeout: 120\n"  # type: ignore[attr-defined]
                 f"etcd_backup:\n  local_dir: {d / 'local'}\n  copy_to_host: {NAME}-w1\n"
                 f"  remote_dir: /var/backups/etcd-test\n  copy_to_dir: /var/backups/etcd-test-copies\n")
    return f


def start(params: Path, tmp: Path, *overrides: str) -> Run:
    return Run.start("etcd-backup", str(params), list(overrides), str(tmp))


def etcdctl(run: Run, target: n.Target, *args: str) -> str:
    res = run.transport(target.node).run(target.client.argv(*args), timeout=60)
    assert res.ok, res.stderr
    return res.stdout


def test_notebook_backup_verified_drill_passes(params: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    res = subprocess.run([str(Path(os.sys.executable).with_name("runbooks")), "run", "etcd-backup", "-p", str(params),
                          "--out", str(out), "-q"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json.loads(next((out / "etcd-backup").glob("*.json")).read_text())
    fig = summary["figures"]
    for key in ("hash", "revision", "total_keys", "keys", "size_bytes", "sha256", "save_s", "verify_s", "ship_s",
                "drill_s"):
        assert key in fig, key
    assert fig["verified"] is True and fig["drill"].startswith("passed") and fig["keys"] >= 320
    assert fig["drill_revision"] == fig["revision"] and fig["drill_keys"] == fig["keys"]
    assert fig["digests"] == "stream"  # hashed while written; status + key count ran in the save's command
    checks = {c["check"]: c["status"] for c in summary["checks"]}
    assert checks["restore drill: revision matches"] == "pass"
    assert checks["copy sha256 matches"] == "pass"
    html = next((out / "etcd-backup").glob("*.html")).read_text()
    assert fig["sha256"] in html and fig["hash"] in html


def test_truncated_copy_fails_verification(params: Path, tmp_path: Path) -> None:
    run = start(params, tmp_path)
    target = eb.discover(run)
    assert target is not None
    t = run.transport(target.node)
    s = run.params.etcd_backup
    snap = n.save(t, target, s, NAME)
    assert n.verify(t, target, snap.path, s).ok
    bad = snap.path.replace(".db", "-truncated.db")
    t.run(f"head -c 65536 {snap.path} > {bad}", check=True)
    v = n.verify(t, target, bad, s)
    assert not v.ok and v.rows()[0][2] == "fail"
    assert v.moved_to and "/corrupt/" in v.moved_to
    assert t.run(f"test -f {v.moved_to} && test ! -e {bad}").ok  # moved aside, not deleted


def test_retention_n3_after_five_runs(params: Path, tmp_path: Path) -> None:
    names = []
    for i in range(5):
        run = start(params, tmp_path / f"r{i}", "etcd_backup.retention.keep=3", "etcd_backup.drill=false")
        target = eb.discover(run)
        assert target is not None
        result = eb.backup(run, target)
        assert result.verified and result.snapshot is not None
        names.append(result.snapshot.name)
        retained = eb.retain(run, result)
        time.sleep(1.1)
    assert len(set(names)) == 5
    for r in retained:
        kept = sorted(x.name for x in r.plan.keep)
        assert set(names[-3:]) <= set(kept), r.location
        assert not set(names[:2]) & set(kept), r.location
    ls = run.transport(target.node).run(f"ls {run.params.etcd_backup.remote_dir}").stdout.split()
    ours = [x for x in ls if x.startswith(f"etcd-snapshot-{NAME}-") and x.endswith(".db")]
    assert sorted(ours)[-3:] == sorted(names[-3:]) and len(ours) == 3


def test_unreachable_etcd_is_named_and_exit_3(params: Path, tmp_path: Path) -> None:
    run = start(params, tmp_path)
    target = eb.discover(run)
    assert target is not None
    t = run.transport(target.node)
    t.run("systemctl stop etcd", check=True, timeout=120)
    try:
        out = tmp_path / "reports"
        res = subprocess.run([str(Path(os.sys.executable).with_name("runbooks")), "run", "etcd-backup", "-p",
                              str(params), "--out", str(out), "-q"], capture_output=True, text=True, timeout=600)
        assert res.returncode == 3, res.stdout + res.stderr
        summary = json.loads(next((out / "etcd-backup").glob("*.json")).read_text())
        bad = [c for c in summary["checks"] if c["status"] == "unreachable"]
        assert bad and "nothing listens on 127.0.0.1:2379" in bad[0]["detail"]
        html = next((out / "etcd-backup").glob("*.html")).read_text()  # the failed run still has its report
        assert "nothing listens on 127.0.0.1:2379" in html
    finally:
        t.run("systemctl start etcd", check=True, timeout=120)


def test_restore_without_confirm_is_refused_and_changes_nothing(params: Path, tmp_path: Path) -> None:
    run = start(params, tmp_path, "etcd_backup.restore.enabled=true")
    target = eb.discover(run)
    assert target is not None
    t = run.transport(target.node)
    assert eb.backup(run, target).verified
    unit_before = t.read_file("/etc/systemd/system/etcd.service")
    dirs_before = t.run("ls -d /var/lib/etcd*").stdout
    etcdctl(run, target, "put", "/runbooks-test/unconfirmed", "still-here")
    plan = eb.plan_restore(run, target)
    assert [s.what.split(" ")[0] for s in plan.steps][:2] == ["restore", "stop"]
    with pytest.raises(DestructiveRefused):
        eb.restore(run, target, plan)
    assert t.read_file("/etc/systemd/system/etcd.service") == unit_before
    assert t.run("ls -d /var/lib/etcd*").stdout == dirs_before
    assert "still-here" in etcdctl(run, target, "get", "/runbooks-test/unconfirmed")


def test_restore_with_confirm(params: Path, tmp_path: Path) -> None:
    run = start(params, tmp_path, "etcd_backup.drill=false")
    target = eb.discover(run)
    assert target is not None
    etcdctl(run, target, "put", "/runbooks-test/before", "b")
    result = eb.backup(run, target)
    assert result.verified
    etcdctl(run, target, "put", "/runbooks-test/after", "a")
    live = target.config.data_dir if target.config else ""
    run2 = start(params, tmp_path / "apply", "mode=apply", f"confirm={NAME}", "etcd_backup.restore.enabled=true")
    target2 = eb.discover(run2)
    assert target2 is not None
    plan = eb.restore(run2, target2)
    failed = [c for c in run2.checks if c.status not in ("pass", "changed")]
    assert not failed, failed
    assert plan.new_dir != live and plan.new_dir.startswith(live.split("-restore-")[0])
    t = run2.transport(target2.node)
    assert f"--data-dir={plan.new_dir}" in (t.read_file("/etc/systemd/system/etcd.service") or "")
    assert t.run(f"stat -c %a {plan.new_dir}").stdout.strip() == "700"
    assert "/runbooks-test/before" in etcdctl(run2, target2, "get", "/runbooks-test/before")
    assert etcdctl(run2, target2, "get", "/runbooks-test/after").strip() == ""
    assert json.loads(etcdctl(run2, target2, "endpoint", "health", "-w", "json"))[0]["health"] is True
    assert t.run(f"test -d {live}/member").ok  # the old data dir is untouched
