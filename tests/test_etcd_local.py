"""The backup steps for real against an etcd with client TLS on 127.0.0.1 (LocalTransport): save, verify,
drill, backup locations and retention, interrupted saves.

Each module run starts its own etcd 3.4 (certs made with cryptography, free loopback ports, a
temp dir) and always stops it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks_lib.chapters.etcd_backup import retention as r
from runbooks_lib.chapters.etcd_backup import ship as sh
from runbooks_lib.chapters.etcd_backup import snapshot as sn
from runbooks_lib.chapters.etcd_backup import store
from runbooks_lib.chapters.etcd_backup import target as tg
from runbooks_lib.chapters.etcd_backup import throwaway as tw
from runbooks_lib.chapters.etcd_backup.etcdctl import save_script, save_state_dir
from runbooks_lib.evidence import Recorder
from runbooks_lib.lab.localetcd import LocalEtcd, free_port
from runbooks_lib.transport import LocalTransport

pytestmark = pytest.mark.skipif(not (shutil.which("etcd") and shutil.which("etcdctl")),
                                reason="etcd/etcdctl not installed")
FAST = {"timeouts": {"dial_s": 1, "command_s": 2}}


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEtcd]:
    e = LocalEtcd(tmp_path_factory.mktemp("etcd")).start()
    try:
        for i in range(50):
            assert e.ctl("put", f"/registry/configmaps/default/cm-{i}", "x" * 200).returncode == 0
        yield e
    finally:
        e.stop()


@pytest.fixture
def t() -> LocalTransport:
    return LocalTransport("local", recorder=Recorder())


def _backup(t: LocalTransport, e: LocalEtcd, s: object, when: dt.datetime | None = None) -> tuple:
    target = tg.discover(t, s)  # type: ignore[arg-type]
    pf = tg.preflight(t, target, s, space_dir=s.remote_dir)  # type: ignore[arg-type, attr-defined]
    assert pf.free_bytes and pf.free_bytes > 0
    snap = sn.save(t, target, s, "local", when)  # type: ignore[arg-type]
    v = sn.verify(t, target, snap.path, s, count_source_keys=True, known=snap.stream,  # type: ignore[arg-type]
                 inline=snap.inline)
    return target, snap, v


def test_backup_verify_drill(etcd: LocalEtcd, t: LocalTransport) -> None:
    s = etcd.settings()
    target, snap, v = _backup(t, etcd, s)
    assert target.discovered_from == "parameters" and target.status_tool == "etcdctl"
    assert v.ok, v.problems
    assert v.status is not None and v.status.revision >= 51 and v.integrity == "ok"
    assert v.size == Path(snap.path).stat().st_size and v.sha256 == sh.sha256_file(Path(snap.path))
    keys = v.source_keys
    assert keys == 50 == sn.source_keys_at(t, target, v.status.revision, s)
    d = tw.drill(t, target, snap.path, v.status, s, keys)
    assert d.ok, d.rows
    assert d.figures["drill_revision"] == v.status.revision and d.figures["drill_keys"] == 50
    assert not list(Path("/var/tmp").glob("runbooks-etcd-drill.*/data"))  # cleaned up
    c = sh.ship_local(t, snap.path, v.sha256, etcd.root / "local", s, sn.sidecar(snap, v))
    assert c.ok and (etcd.root / "local" / snap.name).stat().st_mode & 0o777 == 0o600


def test_truncated_and_corrupted_snapshots_fail_and_are_moved_aside(etcd: LocalEtcd, t: LocalTransport) -> None:
    s = etcd.settings(remote_dir=str(etcd.root / "bad"))
    target, snap, v = _backup(t, etcd, s)
    assert v.ok
    data = Path(snap.path).read_bytes()
    trunc = Path(snap.path).with_name("etcd-snapshot-local-20200101T000000Z.db")
    trunc.write_bytes(data[: len(data) // 2])
    vt = sn.verify(t, target, str(trunc), s)
    assert not vt.ok and vt.integrity == "missing"
    assert vt.moved_to and Path(vt.moved_to).exists() and not trunc.exists()  # moved, not deleted
    assert "/corrupt/" in vt.moved_to
    corrupt = Path(snap.path).with_name("etcd-snapshot-local-20200101T000001Z.db")
    buf = bytearray(data)
    buf[len(buf) // 3: len(buf) // 3 + 16] = b"\xff" * 16
    corrupt.write_bytes(bytes(buf))
    vc = sn.verify(t, target, str(corrupt), s)
    assert not vc.ok and vc.integrity == "mismatch" and vc.rows()[0][2] == "fail"


def test_streamed_hash_is_the_finished_files_and_a_bad_trailer_is_still_caught(etcd: LocalEtcd,
                                                                              t: LocalTransport) -> None:
    s = etcd.settings(remote_dir=str(etcd.root / "stream"))
    target, snap, v = _backup(t, etcd, s)
    st, p = snap.stream, Path(snap.path)
    assert st is not None, snap.stream_note
    data = p.read_bytes()
    assert not p.with_name(p.name + ".part").exists()
    assert (st.size, st.inode) == (len(data), p.stat().st_ino)
    assert st.sha256 == hashlib.sha256(data).hexdigest() == sh.sha256_file(p)
    assert st.body_sha256 == hashlib.sha256(data[:-32]).hexdigest() == st.trailer == data[-32:].hex()
    assert v.ok and v.digests == "stream" and v.integrity == "ok" and v.sha256 == st.sha256, v.problems
    # what the save ran on the finished file (status, key count) is what a full re-read finds
    assert snap.inline is not None and snap.inline.status_rc == 0 and snap.inline.when == "while etcdctl fsyncs"
    vr = sn.verify(t, target, snap.path, s, move_aside=False, count_source_keys=True)
    assert vr.ok and vr.digests == "read" and (vr.status, vr.sha256, vr.size) == (v.status, v.sha256, v.size)
    assert vr.source_keys == v.source_keys == 50
    # the same file rewritten in place (same size and inode, new trailer): the streamed digests no
    # longer describe it, so verify reads it again and etcd's integrity hash catches it
    buf = bytearray(data)
    buf[-1] ^= 0xFF
    with p.open("r+b") as fh:
        fh.write(bytes(buf))
    assert p.stat().st_ino == st.inode and p.stat().st_size == st.size
    vb = sn.verify(t, target, snap.path, s, move_aside=False, known=st)
    assert not vb.ok and vb.digests == "read" and vb.integrity == "mismatch"
    assert vb.sha256 == hashlib.sha256(bytes(buf)).hexdigest()
    # a copy with a corrupted trailer (full read, no stream hash for it)
    copy = p.with_name("etcd-snapshot-local-20200101T000002Z.db")
    copy.write_bytes(data[:-32] + bytes(32))
    vc = sn.verify(t, target, str(copy), s, known=st)
    assert not vc.ok and vc.digests == "read" and vc.integrity == "mismatch" and vc.moved_to


def test_inline_key_count_is_taken_at_the_snapshots_revision(etcd: LocalEtcd, t: LocalTransport) -> None:
    """The save counts keys at the current revision; when etcd moved on before that count, verify
    counts again with --rev=<the snapshot's revision>."""
    from runbooks_lib.chapters.etcd_backup.etcdctl import InlineChecks, parse_count

    s = etcd.settings(remote_dir=str(etcd.root / "inline"))
    target = tg.discover(t, s)
    snap = sn.save(t, target, s, "local")
    assert snap.inline is not None and snap.inline.count_json and parse_count(snap.inline.count_json)[0] == 50
    assert etcd.ctl("put", "/runbooks-test/after-the-snapshot", "x").returncode == 0
    try:
        later = etcd.ctl("get", "", "--prefix", "--keys-only", "--limit=1", "-w", "json").stdout
        assert parse_count(later)[0] == 51  # what the save's count would say had the write come first
        moved_on = InlineChecks(snap.inline.status_rc, snap.inline.status_text, later)
        v = sn.verify(t, target, snap.path, s, count_source_keys=True, known=snap.stream, inline=moved_on)
        assert v.ok and v.status is not None and v.digests == "stream"
        assert v.source_keys == 50 and parse_count(later)[1] > v.status.revision
    finally:
        assert etcd.ctl("del", "/runbooks-test/after-the-snapshot").returncode == 0


def test_an_existing_snapshot_name_is_never_overwritten(etcd: LocalEtcd, t: LocalTransport) -> None:
    s = etcd.settings(remote_dir=str(etcd.root / "names"))
    target = tg.discover(t, s)
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    first = sn.save(t, target, s, "local", when)
    before = sh.sha256_file(Path(first.path))
    second = sn.save(t, target, s, "local", when)
    Path(second.path.replace("-2.db", "-3.db.part")).write_bytes(b"another run writing")
    fourth = sn.save(t, target, s, "local", when)
    assert [first.name, second.name, fourth.name] == [
        "etcd-snapshot-local-20260102T030405Z.db", "etcd-snapshot-local-20260102T030405Z-2.db",
        "etcd-snapshot-local-20260102T030405Z-4.db"]
    assert sh.sha256_file(Path(first.path)) == before
    assert Path(second.path.replace("-2.db", "-3.db.part")).read_bytes() == b"another run writing"


def test_preflight_reads_free_space_and_creates_the_directory_0700(etcd: LocalEtcd, t: LocalTransport) -> None:
    d = etcd.root / "pf" / "new"
    s = etcd.settings(remote_dir=str(d))
    pf = tg.preflight(t, tg.discover(t, s), s, space_dir=str(d))  # plan: reads the nearest parent, creates nothing
    assert not (etcd.root / "pf").exists()
    assert pf.free_bytes is not None and abs(pf.free_bytes - shutil.disk_usage(etcd.root).free) < 1 << 26
    pf = tg.preflight(t, tg.discover(t, s), s, space_dir=str(d), create=True)
    assert d.is_dir() and d.stat().st_mode & 0o777 == 0o700
    assert pf.free_bytes is not None and abs(pf.free_bytes - shutil.disk_usage(d).free) < 1 << 26
    assert pf.status.db_size > 0


def test_an_existing_directory_keeps_its_mode(etcd: LocalEtcd, t: LocalTransport, tmp_path: Path) -> None:
    """Issue 18.7: only directories the chapter creates are chmod'ed (remote_dir=/tmp made the node's /tmp 0700)."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o1777)
    s = etcd.settings(remote_dir=str(shared))
    tg.preflight(t, tg.discover(t, s), s, space_dir=str(shared), create=True)
    tg.free_bytes(t, str(shared), create=True)
    _backup(t, etcd, s)
    assert shared.stat().st_mode & 0o7777 == 0o1777
    local = tmp_path / "runner"
    local.mkdir()
    local.chmod(0o755)
    assert "0755" in (sh.ensure_local_dir(local) or "")
    assert local.stat().st_mode & 0o777 == 0o755
    new = tmp_path / "runner-new" / "copies"
    assert sh.ensure_local_dir(new) is None and new.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(("change", "cause", "status"), [
    ({"cacert": "OTHER_CA"}, "wrong_ca", "fail"),
    ({"cert": "/nonexistent/healthcheck-client.crt"}, "cert_file_missing", "fail"),
    ({"endpoint": "http://"}, "http_on_tls", "fail"),
    ({"endpoint": "PEER"}, "not_client_port", "fail"),
    ({"endpoint": "METRICS"}, "not_tls_port", "fail"),
    ({"endpoint": "CLOSED"}, "refused", "unreachable"),
])
def test_failures_are_named(etcd: LocalEtcd, t: LocalTransport, tmp_path: Path, change: dict[str, str], cause: str,
                            status: str) -> None:
    from runbooks_lib.lab import certs

    kw: dict[str, object] = dict(FAST)
    for k, v in change.items():
        if v == "OTHER_CA":
            certs.write_pki(certs.etcd_pki("other", "127.0.0.1"), tmp_path / "other")
            v = str(tmp_path / "other" / "etcd" / "ca.crt")
        elif v == "http://":
            v = etcd.endpoint.replace("https://", "http://")
        elif v == "PEER":
            v = f"https://127.0.0.1:{etcd.peer_port}"
        elif v == "METRICS":
            v = f"https://127.0.0.1:{etcd.metrics_port}"
        elif v == "CLOSED":
            v = f"https://127.0.0.1:{free_port()}"
        kw[k] = v
    s = etcd.settings(**kw)
    target = tg.discover(t, s)
    with pytest.raises(tg.EtcdError) as exc:
        tg.preflight(t, target, s)
    assert (exc.value.diagnosis.cause, exc.value.diagnosis.status) == (cause, status), str(exc.value)


def test_snapshot_save_failure_is_named_too(etcd: LocalEtcd, t: LocalTransport, tmp_path: Path) -> None:
    s = etcd.settings(**FAST, cert=etcd.ca("server.crt"), key=etcd.ca("peer.key"), remote_dir=str(tmp_path))
    target = tg.discover(t, s)
    with pytest.raises(tg.EtcdError) as exc:
        sn.save(t, target, s, "local")
    assert exc.value.diagnosis.cause == "key_mismatch"
    assert not list(tmp_path.glob("*.part"))


def test_retention_n3_after_five_runs_keeps_the_three_newest(etcd: LocalEtcd, t: LocalTransport) -> None:
    s = etcd.settings(remote_dir=str(etcd.root / "ret"), retention={"policy": "count", "keep": 3})
    base = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=10)
    names = []
    for i in range(5):
        _, snap, v = _backup(t, etcd, s, base + dt.timedelta(minutes=i))
        assert v.ok
        sn.write_sidecar(t, snap.path, sn.sidecar(snap, v))
        names.append(snap.name)
    loc = store.NodeDir(t, s.remote_dir, s)
    looked = store.review(loc, s, dt.datetime.now(dt.UTC))  # plan: nothing deleted
    assert sorted(x.name for x in looked.plan.delete) == sorted(names[:2]) and not looked.deleted
    assert len([p for p in Path(s.remote_dir).iterdir() if r.snapshot_time(p.name)]) == 5
    kept = store.review(loc, s, dt.datetime.now(dt.UTC), delete=True)
    assert sorted(kept.deleted) == sorted(names[:2])
    left = sorted(p.name for p in Path(s.remote_dir).iterdir() if r.snapshot_time(p.name))
    assert left == sorted(names[2:])
    assert not (Path(s.remote_dir) / f"{names[0]}.json").exists()


def test_space_check_refuses_when_disk_is_full(t: LocalTransport, tmp_path: Path) -> None:
    free = tg.free_bytes(t, str(tmp_path / "b"))
    assert free == shutil.disk_usage(tmp_path).free or abs(free - shutil.disk_usage(tmp_path).free) < 1 << 24
    rows = tg.space_rows(free * 2, {"node:/b": free})
    assert rows[0][2] == "fail" and "disk full" in rows[0][3]
    assert tg.space_rows(1, {"node:/b": free})[0][2] == "pass"


def test_gzip_copy(etcd: LocalEtcd, t: LocalTransport) -> None:
    s = etcd.settings(remote_dir=str(etcd.root / "gz"))
    _, snap, v = _backup(t, etcd, s)
    gz, sha, _ = sh.compress(t, snap.path, s)
    assert gz.endswith(".db.gz") and sha == sh.sha256_file(Path(gz))
    assert r.snapshot_time(Path(gz).name) is not None
    assert os.system(f"gzip -t {gz}") == 0


# ----------------------------------------------------------------------------- backup locations (store)
# retention re-checks what it keeps, never deletes protected snapshots, reports and cleans interrupted
# saves; an interrupted save (SIGTERM, or the runner's channel closing) leaves no .part behind

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _snapshots(t: LocalTransport, e: LocalEtcd, s: object, count: int) -> list[str]:
    """``count`` verified snapshots with sidecars, one minute apart (oldest first)."""
    target = tg.discover(t, s)  # type: ignore[arg-type]
    names = []
    for i in range(count):
        snap = sn.save(t, target, s, "local", NOW - dt.timedelta(minutes=count - i))  # type: ignore[arg-type]
        v = sn.verify(t, target, snap.path, s, known=snap.stream, inline=snap.inline)  # type: ignore[arg-type]
        assert v.ok, v.problems
        sn.write_sidecar(t, snap.path, sn.sidecar(snap, v))
        names.append(snap.name)
    return names


def _flip(path: Path, offset: int) -> None:
    """Corrupt one byte in place (size unchanged): what bit rot or a bad disk does after the sidecar was written."""
    with path.open("r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([b[0] ^ 0xFF]))


def test_retention_rechecks_kept_snapshots_before_deleting(etcd: LocalEtcd, t: LocalTransport) -> None:
    """Issue 11.3a: a snapshot corrupted after its sidecar said verified is not kept as good while good ones go."""
    d = etcd.root / "recheck"
    s = etcd.settings(remote_dir=str(d), retention={"policy": "count", "keep": 3})
    names = _snapshots(t, etcd, s, 5)
    _flip(d / names[4], 4096)  # the newest: same size, other bytes
    (d / names[3]).write_bytes((d / names[3]).read_bytes()[:-100])  # the next one: truncated
    target = tg.discover(t, s)
    loc = store.NodeDir(t, str(d), s, target.status_argv)
    plan = store.review(loc, s, NOW)
    assert set(plan.bad) == {names[4], names[3]}
    assert "sha256" in plan.bad[names[4]] and "size" in plan.bad[names[3]]
    assert [x.name for x in plan.plan.keep] == [names[2], names[1], names[0]]
    assert not plan.plan.delete and not plan.deleted and (d / names[4]).exists()  # plan touches nothing
    assert plan.checked[names[2]] == "full"
    done = store.review(loc, s, NOW, delete=True, tidy=True)
    assert not done.deleted and set(done.moved) == {names[3], names[4]}
    assert all("/corrupt/" in p and Path(p).exists() for p in done.moved.values())  # moved aside, never deleted
    left = sorted(p.name for p in d.iterdir() if p.name.endswith(".db"))
    assert left == sorted(names[:3])


def test_full_check_of_the_newest_catches_a_bad_integrity_hash(etcd: LocalEtcd, t: LocalTransport) -> None:
    d = etcd.root / "integrity"
    s = etcd.settings(remote_dir=str(d), retention={"policy": "count", "keep": 1})
    names = _snapshots(t, etcd, s, 2)
    side = d / f"{names[1]}.json"
    _flip(d / names[1], 100)
    meta = json.loads(side.read_text())
    meta["sha256"] = sh.sha256_file(d / names[1])  # a sidecar rewritten to match: only etcd's own hash tells
    side.write_text(json.dumps(meta))
    r = store.review(store.NodeDir(t, str(d), s), s, NOW)
    assert "integrity" in r.bad[names[1]] and [x.name for x in r.plan.keep] == [names[0]]
    local = store.review(store.LocalDir(d), s, NOW)
    assert "integrity" in local.bad[names[1]]


def test_protected_snapshots_are_never_deleted(etcd: LocalEtcd, t: LocalTransport) -> None:
    """Issue 11.2: the snapshot pinned for a restore and the pre-restore one stay whatever the count."""
    d = etcd.root / "protect"
    s = etcd.settings(remote_dir=str(d), retention={"policy": "count", "keep": 1})
    names = _snapshots(t, etcd, s, 4)
    r = store.review(store.NodeDir(t, str(d), s), s, NOW, {names[0]: "pinned for this run's restore"}, delete=True)
    assert sorted(r.deleted) == sorted(names[1:3])
    assert (d / names[0]).exists() and "pinned" in r.plan.reasons[names[0]]


def test_interrupted_save_leftovers_reported_then_cleaned(etcd: LocalEtcd, t: LocalTransport) -> None:
    d = etcd.root / "parts"
    s = etcd.settings(remote_dir=str(d))
    names = _snapshots(t, etcd, s, 1)
    stale = d / "etcd-snapshot-local-20250101T000000Z.db.part"
    stale.write_bytes(b"x" * 4096)
    (d / ".etcd-snapshot-local-20250101T000000Z.db.save").mkdir()
    live = d / "etcd-snapshot-local-20250101T000001Z.db.part"  # a save running now (its shell is alive)
    live.write_bytes(b"y")
    state = d / ".etcd-snapshot-local-20250101T000001Z.db.save"
    state.mkdir()
    (state / "sh").write_text(str(os.getpid()))
    loc = store.NodeDir(t, str(d), s)
    r = store.review(loc, s, NOW)
    assert sorted(lo.name for lo in r.leftovers) == [".etcd-snapshot-local-20250101T000000Z.db.save", stale.name]
    assert stale.exists() and not r.removed
    r = store.review(loc, s, NOW, tidy=True)
    assert not stale.exists() and not (d / ".etcd-snapshot-local-20250101T000000Z.db.save").exists()
    assert live.exists() and state.exists() and (d / names[0]).exists()


def _hung_save(etcd: LocalEtcd, d: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """A save whose etcd does not answer (SIGSTOP): etcdctl holds NAME.part open and waits."""
    s = etcd.settings(remote_dir=str(d), timeouts={"dial_s": 30})
    target = tg.discover(LocalTransport("local", recorder=Recorder()), s)
    path = d / "etcd-snapshot-local-20250101T000000Z.db"
    argv = target.client.argv("snapshot", "save", str(path), timeout_s=60)
    assert etcd.proc is not None
    os.kill(etcd.proc.pid, signal.SIGSTOP)
    proc = subprocess.Popen(["sh", "-c", save_script(str(path), argv, 60, target.status_argv(str(path)))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 10
    while not Path(f"{path}.part").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Path(f"{path}.part").exists() and Path(save_state_dir(str(path))).is_dir()
    return proc, path


def _etcdctl_gone(path: Path) -> bool:
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if str(path).encode() in (p / "cmdline").read_bytes():
                    return False
            except OSError:
                continue
    return True


@pytest.mark.parametrize("how", ["SIGTERM", "channel closed"])
def test_interrupted_save_leaves_nothing(etcd: LocalEtcd, tmp_path: Path, how: str) -> None:
    """Issue 18.4: SIGTERM (systemd stop, timeout, the transport's kill) or the runner's channel dropping
    mid-save: etcdctl is stopped and neither NAME.part nor the save's state dir is left."""
    proc, path = _hung_save(etcd, tmp_path / how.replace(" ", "-"))
    try:
        if how == "SIGTERM":
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            assert proc.stdout is not None
            proc.stdout.close()  # the reader of the command's stdout is gone, as when sshd drops the channel
        rc = proc.wait(timeout=15)
    finally:
        assert etcd.proc is not None
        os.kill(etcd.proc.pid, signal.SIGCONT)
    assert rc == (143 if how == "SIGTERM" else 6)
    deadline = time.monotonic() + 5
    while not _etcdctl_gone(path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"{path}.part").exists() and not Path(save_state_dir(str(path))).exists()
    assert not path.exists() and _etcdctl_gone(path)


def test_a_save_stopped_mid_write_waits_for_etcdctl_before_removing_its_state(tmp_path: Path) -> None:
    """An etcdctl that takes a moment to exit after TERM (it still flushes) is waited for (5 s at most)
    before the save's shell removes NAME.part and the state dir: its waiting subshell writes the exit code
    into the state dir as it dies, and removing the dir under that write left it behind (seen in CI)."""
    path = tmp_path / "etcd-snapshot-slow-20250101T000000Z.db"
    slow = tmp_path / "slow-etcdctl.sh"
    slow.write_text('trap \'sleep 0.5; echo exited > "$0.exited"; exit 143\' TERM\n'
                    ': > "$1.part"\nwhile :; do sleep 0.05; done\n')
    proc = subprocess.Popen(["sh", "-c", save_script(str(path), ["sh", str(slow), str(path)], 60)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not Path(f"{path}.part").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert Path(f"{path}.part").exists()
        assert proc.stdout is not None
        proc.stdout.close()  # the runner's channel is gone: the hasher exits 6, the shell cleans up
        assert proc.wait(timeout=15) == 6
        assert Path(f"{slow}.exited").exists()  # etcdctl had exited when the shell did
        assert not Path(f"{path}.part").exists() and not Path(save_state_dir(str(path))).exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
