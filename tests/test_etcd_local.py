"""The backup steps for real against an etcd with client TLS on 127.0.0.1 (LocalTransport).

Each module run starts its own etcd 3.4 (certs made with cryptography, free loopback ports, a
temp dir) and always stops it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks_lib.chapters.etcd_backup import node as n
from runbooks_lib.chapters.etcd_backup import retention as r
from runbooks_lib.chapters.etcd_backup.localetcd import LocalEtcd, free_port
from runbooks_lib.evidence import Recorder
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
    target = n.discover(t, s)  # type: ignore[arg-type]
    pf = n.preflight(t, target, s, space_dir=s.remote_dir)  # type: ignore[arg-type, attr-defined]
    assert pf.free_bytes and pf.free_bytes > 0
    snap = n.save(t, target, s, "local", when)  # type: ignore[arg-type]
    v = n.verify(t, target, snap.path, s, count_source_keys=True, known=snap.stream,  # type: ignore[arg-type]
                 inline=snap.inline)
    return target, snap, v


def test_backup_verify_drill(etcd: LocalEtcd, t: LocalTransport) -> None:
    s = etcd.settings()
    target, snap, v = _backup(t, etcd, s)
    assert target.discovered_from == "parameters" and target.status_tool == "etcdctl"
    assert v.ok, v.problems
    assert v.status is not None and v.status.revision >= 51 and v.integrity == "ok"
    assert v.size == Path(snap.path).stat().st_size and v.sha256 == n.sha256_file(Path(snap.path))
    keys = v.source_keys
    assert keys == 50 == n.source_keys_at(t, target, v.status.revision, s)
    d = n.drill(t, target, snap.path, v.status, s, keys)
    assert d.ok, d.rows
    assert d.figures["drill_revision"] == v.status.revision and d.figures["drill_keys"] == 50
    assert not list(Path("/var/tmp").glob("runbooks-etcd-drill.*/data"))  # cleaned up
    c = n.ship_local(t, snap.path, v.sha256, etcd.root / "local", s, n.sidecar(snap, v))
    assert c.ok and (etcd.root / "local" / snap.name).stat().st_mode & 0o777 == 0o600


def test_truncated_and_corrupted_snapshots_fail_and_are_moved_aside(etcd: LocalEtcd, t: LocalTransport) -> None:
    s = etcd.settings(remote_dir=str(etcd.root / "bad"))
    target, snap, v = _backup(t, etcd, s)
    assert v.ok
    data = Path(snap.path).read_bytes()
    trunc = Path(snap.path).with_name("etcd-snapshot-local-20200101T000000Z.db")
    trunc.write_bytes(data[: len(data) // 2])
    vt = n.verify(t, target, str(trunc), s)
    assert not vt.ok and vt.integrity == "missing"
    assert vt.moved_to and Path(vt.moved_to).exists() and not trunc.exists()  # moved, not deleted
    assert "/corrupt/" in vt.moved_to
    corrupt = Path(snap.path).with_name("etcd-snapshot-local-20200101T000001Z.db")
    buf = bytearray(data)
    buf[len(buf) // 3: len(buf) // 3 + 16] = b"\xff" * 16
    corrupt.write_bytes(bytes(buf))
    vc = n.verify(t, target, str(corrupt), s)
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
    assert st.sha256 == hashlib.sha256(data).hexdigest() == n.sha256_file(p)
    assert st.body_sha256 == hashlib.sha256(data[:-32]).hexdigest() == st.trailer == data[-32:].hex()
    assert v.ok and v.digests == "stream" and v.integrity == "ok" and v.sha256 == st.sha256, v.problems
    # what the save ran on the finished file (status, key count) is what a full re-read finds
    assert snap.inline is not None and snap.inline.status_rc == 0 and snap.inline.when == "while etcdctl fsyncs"
    vr = n.verify(t, target, snap.path, s, move_aside=False, count_source_keys=True)
    assert vr.ok and vr.digests == "read" and (vr.status, vr.sha256, vr.size) == (v.status, v.sha256, v.size)
    assert vr.source_keys == v.source_keys == 50
    # the same file rewritten in place (same size and inode, new trailer): the streamed digests no
    # longer describe it, so verify reads it again and etcd's integrity hash catches it
    buf = bytearray(data)
    buf[-1] ^= 0xFF
    with p.open("r+b") as fh:
        fh.write(bytes(buf))
    assert p.stat().st_ino == st.inode and p.stat().st_size == st.size
    vb = n.verify(t, target, snap.path, s, move_aside=False, known=st)
    assert not vb.ok and vb.digests == "read" and vb.integrity == "mismatch"
    assert vb.sha256 == hashlib.sha256(bytes(buf)).hexdigest()
    # a copy with a corrupted trailer (full read, no stream hash for it)
    copy = p.with_name("etcd-snapshot-local-20200101T000002Z.db")
    copy.write_bytes(data[:-32] + bytes(32))
    vc = n.verify(t, target, str(copy), s, known=st)
    assert not vc.ok and vc.digests == "read" and vc.integrity == "mismatch" and vc.moved_to


def test_inline_key_count_is_taken_at_the_snapshots_revision(etcd: LocalEtcd, t: LocalTransport) -> None:
    """The save counts keys at the current revision; when etcd moved on before that count, verify
    counts again with --rev=<the snapshot's revision>."""
    from runbooks_lib.chapters.etcd_backup.etcdctl import InlineChecks, parse_count

    s = etcd.settings(remote_dir=str(etcd.root / "inline"))
    target = n.discover(t, s)
    snap = n.save(t, target, s, "local")
    assert snap.inline is not None and snap.inline.count_json and parse_count(snap.inline.count_json)[0] == 50
    assert etcd.ctl("put", "/runbooks-test/after-the-snapshot", "x").returncode == 0
    try:
        later = etcd.ctl("get", "", "--prefix", "--keys-only", "--limit=1", "-w", "json").stdout
        assert parse_count(later)[0] == 51  # what the save's count would say had the write come first
        moved_on = InlineChecks(snap.inline.status_rc, snap.inline.status_text, later)
        v = n.verify(t, target, snap.path, s, count_source_keys=True, known=snap.stream, inline=moved_on)
        assert v.ok and v.status is not None and v.digests == "stream"
        assert v.source_keys == 50 and parse_count(later)[1] > v.status.revision
    finally:
        assert etcd.ctl("del", "/runbooks-test/after-the-snapshot").returncode == 0


def test_an_existing_snapshot_name_is_never_overwritten(etcd: LocalEtcd, t: LocalTransport) -> None:
    s = etcd.settings(remote_dir=str(etcd.root / "names"))
    target = n.discover(t, s)
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    first = n.save(t, target, s, "local", when)
    before = n.sha256_file(Path(first.path))
    second = n.save(t, target, s, "local", when)
    Path(second.path.replace("-2.db", "-3.db.part")).write_bytes(b"another run writing")
    fourth = n.save(t, target, s, "local", when)
    assert [first.name, second.name, fourth.name] == [
        "etcd-snapshot-local-20260102T030405Z.db", "etcd-snapshot-local-20260102T030405Z-2.db",
        "etcd-snapshot-local-20260102T030405Z-4.db"]
    assert n.sha256_file(Path(first.path)) == before
    assert Path(second.path.replace("-2.db", "-3.db.part")).read_bytes() == b"another run writing"


def test_preflight_reads_free_space_and_creates_the_directory_0700(etcd: LocalEtcd, t: LocalTransport) -> None:
    d = etcd.root / "pf" / "new"
    s = etcd.settings(remote_dir=str(d))
    pf = n.preflight(t, n.discover(t, s), s, space_dir=str(d))
    assert d.is_dir() and d.stat().st_mode & 0o777 == 0o700
    assert pf.free_bytes is not None and abs(pf.free_bytes - shutil.disk_usage(d).free) < 1 << 26
    assert pf.status.db_size > 0


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
    target = n.discover(t, s)
    with pytest.raises(n.EtcdError) as exc:
        n.preflight(t, target, s)
    assert (exc.value.diagnosis.cause, exc.value.diagnosis.status) == (cause, status), str(exc.value)


def test_snapshot_save_failure_is_named_too(etcd: LocalEtcd, t: LocalTransport, tmp_path: Path) -> None:
    s = etcd.settings(**FAST, cert=etcd.ca("server.crt"), key=etcd.ca("peer.key"), remote_dir=str(tmp_path))
    target = n.discover(t, s)
    with pytest.raises(n.EtcdError) as exc:
        n.save(t, target, s, "local")
    assert exc.value.diagnosis.cause == "key_mismatch"
    assert not list(tmp_path.glob("*.part"))


def test_retention_n3_after_five_runs_keeps_the_three_newest(etcd: LocalEtcd, t: LocalTransport) -> None:
    s = etcd.settings(remote_dir=str(etcd.root / "ret"), retention={"policy": "count", "keep": 3})
    base = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=10)
    names = []
    for i in range(5):
        _, snap, v = _backup(t, etcd, s, base + dt.timedelta(minutes=i))
        assert v.ok
        n.write_sidecar(t, snap.path, n.sidecar(snap, v))
        names.append(snap.name)
    kept = n.apply_retention_remote(t, s.remote_dir, s)
    assert sorted(kept.deleted) == sorted(names[:2])
    left = sorted(p.name for p in Path(s.remote_dir).iterdir() if r.snapshot_time(p.name))
    assert left == sorted(names[2:])
    assert not (Path(s.remote_dir) / f"{names[0]}.json").exists()


def test_space_check_refuses_when_disk_is_full(t: LocalTransport, tmp_path: Path) -> None:
    free = n.free_bytes(t, str(tmp_path / "b"))
    assert free == shutil.disk_usage(tmp_path).free or abs(free - shutil.disk_usage(tmp_path).free) < 1 << 24
    rows = n.space_rows(free * 2, {"node:/b": free})
    assert rows[0][2] == "fail" and "disk full" in rows[0][3]
    assert n.space_rows(1, {"node:/b": free})[0][2] == "pass"


def test_gzip_copy(etcd: LocalEtcd, t: LocalTransport) -> None:
    s = etcd.settings(remote_dir=str(etcd.root / "gz"))
    _, snap, v = _backup(t, etcd, s)
    gz, sha, _ = n.compress(t, snap.path, s)
    assert gz.endswith(".db.gz") and sha == n.sha256_file(Path(gz))
    assert r.snapshot_time(Path(gz).name) is not None
    assert os.system(f"gzip -t {gz}") == 0
