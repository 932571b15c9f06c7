"""etcd-backup against the lab: a real etcd 3.4 with TLS on a podman node, reached over SSH.

Uses its own lab ``etcd`` (2 nodes: the control plane and a second host for copies). The lab is
brought up when it is not running and taken down at the end when this module brought it up.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks_lib.chapters import etcd_backup as eb
from runbooks_lib.chapters.etcd_backup import ship as sh
from runbooks_lib.chapters.etcd_backup import snapshot as sn
from runbooks_lib.chapters.etcd_backup import target as tg
from runbooks_lib.chapters.etcd_backup import throwaway as tw
from runbooks_lib.run import DestructiveRefused, Run

pytestmark = pytest.mark.lab
NAME = "etcd"
PLANTED = "q7w8e9.r1t2y3u4i5o6p7a8"  # a bootstrap token given as a parameter: must appear in no backup file
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


def apply(params: Path, tmp: Path, *overrides: str) -> Run:
    """A run in apply mode (takes snapshots); with confirm, so retention deletes."""
    return start(params, tmp, "mode=apply", f"confirm={NAME}", *overrides)


def runbooks(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(os.sys.executable).with_name("runbooks")), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def etcdctl(run: Run, target: tg.Target, *args: str) -> str:
    res = run.transport(target.node).run(target.client.argv(*args), timeout=60)
    assert res.ok, res.stderr
    return res.stdout


def test_notebook_backup_verified_drill_passes(params: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    res = runbooks("run", "etcd-backup", "-p", str(params), "--out", str(out), "-q", "--mode", "apply",
                   "--set", f"kubeadm.token={PLANTED}")
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
    # secret scan: a secret given as a parameter is in no backup file or sidecar, plain or base64
    forms = [PLANTED.encode(), base64.b64encode(PLANTED.encode())]
    local = params.parent / "local"
    assert any(local.glob("*.json"))
    for f in local.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert not any(x in data for x in forms), f
    run = start(params, tmp_path / "scan")
    s = run.params.etcd_backup
    for host, d in ((f"{NAME}-cp1", s.remote_dir), (f"{NAME}-w1", s.copy_to_dir)):
        grep = run.transport(host).run(["grep", "-rlF", "-e", PLANTED, "-e", forms[1].decode(), d], timeout=60)
        assert grep.exit_code == 1 and not grep.stdout, (host, grep.stdout)


def test_truncated_copy_fails_verification(params: Path, tmp_path: Path) -> None:
    run = start(params, tmp_path)
    target = eb.discover(run)
    assert target is not None
    t = run.transport(target.node)
    s = run.params.etcd_backup
    snap = sn.save(t, target, s, NAME)
    assert sn.verify(t, target, snap.path, s).ok
    bad = snap.path.replace(".db", "-truncated.db")
    t.run(f"head -c 65536 {snap.path} > {bad}", check=True)
    v = sn.verify(t, target, bad, s)
    assert not v.ok and v.rows()[0][2] == "fail"
    assert v.moved_to and "/corrupt/" in v.moved_to
    assert t.run(f"test -f {v.moved_to} && test ! -e {bad}").ok  # moved aside, not deleted


def test_retention_n3_after_five_runs(params: Path, tmp_path: Path) -> None:
    names = []
    for i in range(5):
        run = apply(params, tmp_path / f"r{i}", "etcd_backup.retention.keep=3", "etcd_backup.drill=false")
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
    run = start(params, tmp_path, "etcd_backup.restore.enabled=true", "mode=apply")
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
    run = apply(params, tmp_path, "etcd_backup.drill=false")
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


# ----------------------------------------------------------------------------- plan is read-only (issue 11.4)


def _dir_state(run: Run, host: str, directory: str) -> str:
    """Listing (name, size, mode, mtime) and sha256 of every file under ``directory`` on ``host``."""
    res = run.transport(host).run(f"cd {directory} 2>/dev/null || {{ echo absent; exit 0; }}; "
                                  "find . -printf '%p %s %m %T@\\n' | sort; find . -type f -exec sha256sum {} + | sort",
                                  timeout=60)
    assert res.ok, res.stderr
    return res.stdout


def _local_state(d: Path) -> list[tuple[str, int, int, float, str]]:
    return sorted((str(p.relative_to(d)), p.stat().st_size, p.stat().st_mode, p.stat().st_mtime,
                   sh.sha256_file(p) if p.is_file() else "") for p in d.rglob("*")) if d.exists() else []


def test_plan_leaves_every_backup_directory_byte_identical(params: Path, tmp_path: Path) -> None:
    run = apply(params, tmp_path / "seed", "etcd_backup.drill=false", "etcd_backup.retention.keep=1")
    target = eb.discover(run)
    assert target is not None
    for _ in range(2):  # two snapshots: with keep=1 plan has something it would delete
        assert eb.backup(run, target).verified
        time.sleep(1.1)
    s = run.params.etcd_backup
    t = run.transport(target.node)
    t.run(f"head -c 1000000 /dev/zero > {s.remote_dir}/etcd-snapshot-{NAME}-20250101T000000Z.db.part", check=True)
    local = Path(str(eb.chapter.local_dir(run)))
    before = (_dir_state(run, target.node, s.remote_dir), _dir_state(run, f"{NAME}-w1", s.copy_to_dir),
              _local_state(local))
    out = tmp_path / "reports"
    res = runbooks("run", "etcd-backup", "-p", str(params), "--out", str(out), "-q",
                   "--set", "etcd_backup.retention.keep=1")
    after = (_dir_state(run, target.node, s.remote_dir), _dir_state(run, f"{NAME}-w1", s.copy_to_dir),
             _local_state(local))
    assert res.returncode == 0, res.stdout + res.stderr
    assert after == before  # listing + hashes, on the node, the copy host and the runner
    summary = json.loads(next((out / "etcd-backup").glob("*.json")).read_text())
    checks = [(c["check"], c["status"], c["detail"]) for c in summary["checks"]]
    assert ("snapshot", "drift") in [(c, st) for c, st, _ in checks]
    assert any(c == "retention" and st == "drift" and "would delete" in d for c, st, d in checks)
    assert any(c == "interrupted saves cleaned" and st == "drift" and ".part" in d for c, st, d in checks)
    assert summary["status"] == "DRIFT" if "status" in summary else True
    t.run(f"rm -f {s.remote_dir}/etcd-snapshot-{NAME}-20250101T000000Z.db.part", check=True)


def test_plan_on_a_fresh_node_is_drift_and_creates_nothing(params: Path, tmp_path: Path) -> None:
    fresh = "/var/backups/etcd-never-created"
    out = tmp_path / "reports"
    res = runbooks("run", "etcd-backup", "-p", str(params), "--out", str(out), "-q", "--set",
                   f"etcd_backup.remote_dir={fresh}", "--set", f"etcd_backup.local_dir={tmp_path / 'none'}",
                   "--set", f"etcd_backup.copy_to_dir={fresh}-copies", "--detailed-exitcode")
    assert res.returncode == 4, res.stdout + res.stderr  # DRIFT, not FAIL
    summary = json.loads(next((out / "etcd-backup").glob("*.json")).read_text())
    assert any(c["check"] == "snapshot" and c["status"] == "drift" and "apply would take a snapshot" in c["detail"]
               for c in summary["checks"])
    run = start(params, tmp_path / "probe")
    assert not run.transport(f"{NAME}-cp1").run(f"test -e {fresh}").ok
    assert not run.transport(f"{NAME}-w1").run(f"test -e {fresh}-copies").ok
    assert not (tmp_path / "none").exists()


def test_remote_dir_tmp_is_refused_before_anything_is_touched(params: Path, tmp_path: Path) -> None:
    """Issue 18.7: remote_dir=/tmp ran chmod 0700 on the node's /tmp, even in plan mode."""
    run = start(params, tmp_path / "probe")
    t = run.transport(f"{NAME}-cp1")
    mode = t.run("stat -c %a /tmp").stdout.strip()
    res = runbooks("run", "etcd-backup", "-p", str(params), "--out", str(tmp_path / "reports"), "-q",
                   "--set", "etcd_backup.remote_dir=/tmp")
    assert res.returncode == 2 and "system directory" in res.stdout + res.stderr
    assert t.run("stat -c %a /tmp").stdout.strip() == mode == "1777"


# ----------------------------------------------------------------------------- restore latest (issue 11.1-3)


def test_restore_latest_rolls_back_to_the_snapshot_taken_before_the_run(params: Path, tmp_path: Path) -> None:
    """K1 -> backup S1 -> K2 -> restore latest (confirm): K2 gone, K1 there, S1 kept everywhere (even with
    keep=1), and the pre-restore snapshot holds K2 (restored into a throwaway etcd to prove it)."""
    run = apply(params, tmp_path / "s1", "etcd_backup.drill=false")
    target = eb.discover(run)
    assert target is not None
    etcdctl(run, target, "put", "/runbooks-test/k1", "one")
    s1 = eb.backup(run, target)
    assert s1.verified and s1.snapshot is not None
    time.sleep(1.1)
    etcdctl(run, target, "put", "/runbooks-test/k2", "two")
    out = tmp_path / "reports"
    res = runbooks("run", "etcd-backup", "-p", str(params), "--out", str(out), "-q", "--mode", "apply",
                   "--set", f"confirm={NAME}", "--set", "etcd_backup.restore.enabled=true",
                   "--set", "etcd_backup.retention.keep=1", "--set", "etcd_backup.drill=false")
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json.loads(next((out / "etcd-backup").glob("*.json")).read_text())
    checks = {c["check"]: c for c in summary["checks"]}
    pinned = checks["restore: snapshot pinned"]["detail"]
    assert pinned.startswith(s1.snapshot.name) and "revision" in pinned and "sha256" in pinned
    order = [c["check"] for c in summary["checks"]]
    assert order.index("restore: snapshot pinned") < order.index("pre-restore snapshot saved") < order.index(
        "restored: revision")
    run2 = start(params, tmp_path / "after")
    target2 = eb.discover(run2)
    assert target2 is not None
    assert "one" in etcdctl(run2, target2, "get", "/runbooks-test/k1")
    assert etcdctl(run2, target2, "get", "/runbooks-test/k2").strip() == ""
    s = run2.params.etcd_backup
    t = run2.transport(target2.node)
    assert t.run(f"test -f {s.remote_dir}/{s1.snapshot.name}").ok  # S1 kept on the node ...
    assert (Path(str(eb.chapter.local_dir(run2))) / s1.snapshot.name).is_file()  # ... and on the runner
    pre = checks["pre-restore snapshot saved"]["detail"].split(" in ")[0]
    assert pre.endswith("-pre-restore.db") and t.run(f"test -f {pre}").ok
    with tw.throwaway_etcd(t, target2, pre, s) as th:
        assert th.client is not None, th.rows
        got = t.run(th.client.argv("get", "/runbooks-test/k2", "--print-value-only"), timeout=60)
    assert got.stdout.strip() == "two"
    assert th.rows[-1][2] == "pass", th.rows


# ----------------------------------------------------------------------------- the drill's etcd (issue 11.3b)


def test_throwaway_etcd_needs_a_client_certificate_and_really_stops(params: Path, tmp_path: Path) -> None:
    run = apply(params, tmp_path, "etcd_backup.drill=false")
    target = eb.discover(run)
    assert target is not None
    res = eb.backup(run, target)
    assert res.snapshot is not None
    t = run.transport(target.node)
    s = run.params.etcd_backup
    with tw.throwaway_etcd(t, target, res.snapshot.path, s) as th:
        assert th.client is not None, th.rows
        url = th.client.endpoint
        assert url.startswith("https://127.0.0.1:")
        pids = th.rows[-1][3].rpartition("pids ")[2].rstrip(")").split()
        assert len(pids) == 2 and t.run(f"kill -0 {' '.join(pids)}").ok
        plain = t.run(f"curl -s -m 5 -X POST -d '{{\"key\": \"L3JlZ2lzdHJ5\", \"range_end\": \"AA==\"}}' "
                      f"{url.replace('https', 'http')}/v3/kv/range", timeout=30)
        assert "registry" not in plain.stdout.lower()  # no plain http
        nocert = t.run(["env", "ETCDCTL_API=3", "etcdctl", f"--endpoints={url}", f"--cacert={th.client.cacert}",
                        "--dial-timeout=3s", "get", "/registry", "--prefix", "--keys-only"], timeout=30)
        assert not nocert.ok and "/registry" not in nocert.stdout  # TLS without a client certificate: refused
    assert th.rows[-1][2] == "pass" and "no longer running" in th.rows[-1][3], th.rows
    for pid in pids:  # gone by pid, not just the directory
        assert not t.run(f"test -e /proc/{pid} && ! grep -qs '^[0-9]* (.*) Z' /proc/{pid}/stat").ok
    assert t.run(f"ss -ltnH | grep -q ':{url.rsplit(':', 1)[1]} '").exit_code == 1


# ----------------------------------------------------------------------------- interrupted saves (issue 18.4)


def _stop_etcd(run: Run, target: tg.Target) -> None:
    run.transport(target.node).run("systemctl kill -s STOP etcd", check=True, timeout=60)


def _cont_etcd(run: Run, target: tg.Target) -> None:
    run.transport(target.node).run("systemctl kill -s CONT etcd", check=True, timeout=60)


def _leftovers(run: Run, target: tg.Target, directory: str) -> str:
    res = run.transport(target.node).run(
        f"ls -A {directory} | grep -e '\\.part$' -e '\\.save$'; pgrep -af 'etcdctl.*snapshot sav[e]'; "
        "ls -d /tmp/runbooks-etcd.* 2>/dev/null; true", timeout=60)
    return res.stdout.strip()


def test_ctrl_c_during_a_save_leaves_nothing_on_the_node(params: Path, tmp_path: Path) -> None:
    import _thread
    import threading

    run = apply(params, tmp_path, "etcd_backup.timeouts.dial_s=30")
    target = eb.discover(run)
    assert target is not None
    s = run.params.etcd_backup
    d = f"{s.remote_dir}/interrupt"
    s = s.model_copy(update={"remote_dir": d})
    t = run.transport(target.node)
    _stop_etcd(run, target)  # etcdctl opens NAME.part and waits for the frozen etcd
    timer = threading.Timer(3.0, _thread.interrupt_main)
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            sn.save(t, target, s, NAME)
    finally:
        timer.cancel()
        _cont_etcd(run, target)
    time.sleep(1)
    assert _leftovers(run, target, d) == ""


def test_dropped_ssh_channel_during_a_save_leaves_nothing_on_the_node(lab: object, params: Path,
                                                                      tmp_path: Path) -> None:
    from runbooks_lib.chapters.etcd_backup.etcdctl import save_script

    run = apply(params, tmp_path, "etcd_backup.timeouts.dial_s=30")
    target = eb.discover(run)
    assert target is not None
    d = f"{run.params.etcd_backup.remote_dir}/dropped"
    path = f"{d}/etcd-snapshot-{NAME}-20250101T000000Z.db"
    script = save_script(path, target.client.argv("snapshot", "save", path, timeout_s=60), 60,
                         target.status_argv(path))
    host = next(h for h in run.params.hosts if h.name == target.node)
    _stop_etcd(run, target)
    try:
        ssh = subprocess.Popen(["ssh", "-i", str(host.key), "-o", f"UserKnownHostsFile={lab.known_hosts}",  # type: ignore[attr-defined]
                                "-o", "BatchMode=yes", "-p", str(host.port), f"{host.user}@{host.address}",
                                "sudo -n -- sh -c " + shlex.quote(script)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not run.transport(target.node).run(f"test -e {path}.part").ok and time.monotonic() < deadline:
            time.sleep(0.2)
        assert run.transport(target.node).run(f"test -e {path}.part").ok
        ssh.kill()  # the runner's end of the connection is gone (kernel killed, network dropped)
        ssh.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _leftovers(run, target, d) and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        _cont_etcd(run, target)
    assert _leftovers(run, target, d) == ""


def test_a_staging_copy_left_by_a_dropped_connection_is_removed(params: Path, tmp_path: Path) -> None:
    """Issue 18.4: a staging copy in the node's /tmp (the SSH user's, older than a copy can take) is removed by
    the next copy; a fresh one (another run copying now) is left alone."""
    run = apply(params, tmp_path, "etcd_backup.drill=false")
    target = eb.discover(run)
    assert target is not None
    t = run.transport(target.node)
    t.run("mkdir -p /tmp/runbooks-etcd.stale1 /tmp/runbooks-etcd.fresh1 && head -c 100000 /dev/zero > "
          "/tmp/runbooks-etcd.stale1/x.db && touch -d '2 days ago' /tmp/runbooks-etcd.stale1", sudo=False, check=True)
    try:
        assert eb.backup(run, target).verified
        assert not t.run("test -e /tmp/runbooks-etcd.stale1", sudo=False).ok
        assert t.run("test -d /tmp/runbooks-etcd.fresh1", sudo=False).ok
    finally:
        t.run("rm -rf /tmp/runbooks-etcd.stale1 /tmp/runbooks-etcd.fresh1", sudo=False)
