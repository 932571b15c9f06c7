"""Take and verify a snapshot on the node: ``etcdctl snapshot save`` with the digests streamed as it
writes (:mod:`.remote.follow_save`), the re-check (status, sha256, etcd's integrity hash, key count), the
sidecar beside it."""

from __future__ import annotations

import datetime as dt
import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...transport import TargetUnreachable, Transport
from . import retention as ret
from .etcdctl import (
    SAVE_EXISTS,
    Diagnosis,
    InlineChecks,
    SnapshotStatus,
    StreamHash,
    VerifyOutput,
    cleanup_script,
    parse_count,
    parse_inline,
    parse_snapshot_status,
    parse_stream_hash,
    parse_verify,
    save_script,
    verify_script,
)
from .settings import Settings
from .target import CheckRow, EtcdError, Target, explain_failure, iso, mb, q, utc_now

# ----------------------------------------------------------------------------- snapshot + verify


@dataclass
class Snapshot:
    node: str
    path: str
    name: str
    created: dt.datetime
    save_s: float = 0.0
    source_revision: int = 0  # endpoint revision right after the save
    source_keys_at_rev: int | None = None  # live key count at the snapshot's revision
    stream: StreamHash | None = None  # digests computed while etcdctl wrote the file (None: verify reads it)
    stream_note: str = ""  # why there is no stream hash
    inline: InlineChecks | None = None  # status + live key count run while etcdctl fsyncs (verify reuses them)


def save(t: Transport, target: Target, s: Settings, cluster: str, when: dt.datetime | None = None,
         label: str = "") -> Snapshot:
    """``etcdctl snapshot save`` into remote_dir (etcdctl writes NAME.part and renames on success).

    In the same shell a python3 hasher follows NAME.part as etcdctl writes it, so sha256 and etcd's
    integrity hash are known when the save ends (``Snapshot.stream``), and the snapshot status and live key count run as soon as the stream is complete (``Snapshot.inline``):
    verify then neither re-reads the file nor waits for another round trip. An existing name (two
    runs in one second) is never overwritten: the save takes NAME-2, NAME-3, ...
    """
    when = when or utc_now()
    base = ret.snapshot_name(cluster, when)
    if label:  # e.g. etcd-snapshot-prod-20250320T120000Z-pre-restore.db
        base = base.removesuffix(".db") + f"-{label}.db"
    limit = s.timeouts.snapshot_s + s.timeouts.dial_s + 10
    count_argv = target.client.count_argv(timeout_s=s.timeouts.command_s)
    for n in range(1, 10):
        name = base if n == 1 else base.removesuffix(".db") + f"-{n}.db"
        path = f"{s.remote_dir.rstrip('/')}/{name}"
        save_argv = target.client.argv("snapshot", "save", path, timeout_s=s.timeouts.snapshot_s)
        script = save_script(path, save_argv, limit, target.status_argv(path), count_argv)
        t0 = time.monotonic()
        try:
            res = t.run(script, timeout=limit + s.timeouts.verify_s + 20,
                        display=shlex.join(save_argv) + "  # + python3 sha256/integrity hash following the file"
                        + f"; {target.status_tool} snapshot status and the live key count on the complete stream")
        except BaseException:  # interrupted (Ctrl-C, SIGTERM, channel lost): leave no .part behind, then re-raise
            cleanup_save(t, path)
            raise
        took = time.monotonic() - t0
        if res.exit_code == 17 and SAVE_EXISTS in res.stdout:
            continue
        break
    else:
        raise EtcdError(Diagnosis("name_taken", "fail", f"{base} and 8 suffixed names already exist in {s.remote_dir}"))
    if not res.ok:
        cleanup_save(t, path)
        diag = explain_failure(t, target, s, res.stderr + res.stdout) if not res.timed_out else Diagnosis(
            "snapshot_timeout", "fail", f"snapshot save did not finish within {s.timeouts.snapshot_s:.0f}s")
        raise EtcdError(diag)
    stream, note = parse_stream_hash(res.stdout, path)
    return Snapshot(t.name, path, name, when, took, stream=stream, stream_note=note, inline=parse_inline(res.stdout))


def cleanup_save(t: Transport, path: str) -> None:
    """Stop an interrupted save of ``path`` and remove its ``.part`` and state dir (a finished snapshot stays)."""
    try:
        res = t.run(cleanup_script(path), timeout=30, display=f"clean up the save of {path}: stop it, remove "
                    f"{Path(path).name}.part and its state dir")
    except TargetUnreachable as exc:
        t.recorder.note(f"could not clean up the save of {path} on {t.name}: {exc.reason}")
        return
    if res.stdout.strip():
        t.recorder.note(f"cleaned up the interrupted save on {t.name}: {'; '.join(res.stdout.split(chr(10))).strip('; ')}")


@dataclass
class Verification:
    path: str
    ok: bool
    problems: list[str]
    status: SnapshotStatus | None
    sha256: str
    size: int
    integrity: str  # ok | mismatch | missing
    duration_s: float
    moved_to: str | None = None
    source_keys: int | None = None  # live key count at the snapshot's revision (count_source_keys)
    digests: str = "read"  # "stream": sha256/integrity hash computed during the save, file unchanged since

    def rows(self, check: str = "snapshot verified") -> list[CheckRow]:
        if self.ok and self.status:
            st = self.status
            return [(check, self.path, "pass",
                     f"hash {st.hash_hex}, revision {st.revision}, {st.total_keys} keys, {mb(self.size)}, "
                     f"sha256 {self.sha256[:16]}…, integrity hash ok")]
        where = f"; moved aside to {self.moved_to}" if self.moved_to else ""
        return [(check, self.path, "fail", "; ".join(self.problems) + where)]


def verify(t: Transport, target: Target, path: str, s: Settings, move_aside: bool = True,
           count_source_keys: bool = False, known: StreamHash | None = None,
           inline: InlineChecks | None = None) -> Verification:
    """Status (hash, revision, keys, size) + sha256 + etcd's appended integrity hash, read in parallel.

    ``known`` (``Snapshot.stream`` of this very file): the digests streamed during the save are used
    instead of a re-read when the file's size, inode, device and mtime on disk are still the streamed
    ones; with ``inline`` (``Snapshot.inline``) the status and key count the save ran on the finished
    file are used too, and verify is one ``stat``. Any difference: the file is read again.

    With ``count_source_keys`` the live etcd's key count at the snapshot's revision is read in the
    same pass (for the drill's comparison). A file that fails is moved to ``<dir>/corrupt/`` (never
    deleted).
    """
    t0 = time.monotonic()
    known = known if known is not None and known.path == path else None
    out: VerifyOutput | None = None
    if known is not None and inline is not None and inline.status_rc == 0:
        res = t.run(f"stat -c %s:%i:%d:%.9Y {q(path)}", timeout=30,
                    display=f"stat {path}  # unchanged since the save hashed it and ran snapshot status on it?")
        if res.ok and res.stdout.strip() == known.stat_key:
            out = VerifyOutput(size=known.size, sha256=known.sha256, body_sha256=known.body_sha256,
                               trailer=known.trailer, status_rc=inline.status_rc, status_text=inline.status_text,
                               count_json=inline.count_json if count_source_keys else None, hashed="stream")
    inline_count = out is not None
    if out is None:
        count_argv = target.client.count_argv(timeout_s=s.timeouts.command_s) if count_source_keys else None
        res = t.run(verify_script(path, target.status_argv(path), count_argv, known), timeout=s.timeouts.verify_s,
                    display=f"verify {path}: {target.status_tool} snapshot status -w json; "
                            + ("stat (digests streamed during the save)" if known else "sha256sum; integrity hash"))
        out = parse_verify(res.stdout)
        streamed = known is not None and out.hashed == "stream" and out.size == known.size
        if streamed and known is not None:
            out.sha256, out.body_sha256, out.trailer = known.sha256, known.body_sha256, known.trailer
        else:
            out.hashed = "read"
    problems: list[str] = []
    status: SnapshotStatus | None = None
    if out.size < 0 or not res.ok:
        problems.append(f"cannot read {path}: {res.stderr.strip()[-200:]}")
    if out.status_rc != 0:
        first = next((ln for ln in out.status_text.splitlines() if ln.strip() and '"level"' not in ln), "")
        problems.append(f"{target.status_tool} snapshot status failed (exit {out.status_rc}): {first[:200]}")
    else:
        try:
            status = parse_snapshot_status(out.status_text)
        except ValueError as exc:
            problems.append(str(exc))
    if status is not None and (status.revision <= 0 or status.total_keys <= 0):
        problems.append(f"implausible status: revision {status.revision}, {status.total_keys} keys")
    integrity = "ok" if out.integrity_ok else ("mismatch" if out.has_integrity_hash else "missing")
    if integrity == "mismatch":
        problems.append("etcd's integrity hash (sha256 appended to the snapshot) does not match: corrupted")
    elif integrity == "missing":
        problems.append(f"no integrity hash (size {out.size} is not 512*n+32): truncated or not an etcd snapshot")
    v = Verification(path, not problems, problems, status, out.sha256, out.size, integrity, time.monotonic() - t0,
                     digests=out.hashed)
    if count_source_keys and status is not None:
        try:
            count, header_rev = parse_count(out.count_json) if out.count_json else (None, -1)
        except ValueError:
            count, header_rev = None, -1
        if inline_count and header_rev != status.revision:  # counted at the current revision: written since
            count = source_keys_at(t, target, status.revision, s)
        v.source_keys = count
    if not v.ok and move_aside and out.size >= 0:
        v.moved_to = move_aside_file(t, path)
    return v


def move_aside_file(t: Transport, path: str) -> str:
    """Move a bad snapshot (and its sidecar) into ``corrupt/`` next to it; return the new path."""
    p = Path(path)
    dest = f"{p.parent}/corrupt/{p.name}.{utc_now().strftime('%Y%m%dT%H%M%SZ')}"
    t.run(f"mkdir -p {q(str(p.parent))}/corrupt && chmod 0700 {q(str(p.parent))}/corrupt && mv -f {q(path)} {q(dest)}"
          f" && (rm -f {q(path)}.json)", timeout=60, check=True)
    return dest


def source_keys_at(t: Transport, target: Target, revision: int, s: Settings) -> int | None:
    """Live key count at ``revision`` (None when compacted away or unreadable)."""
    res = t.run(target.client.count_argv(f"--rev={revision}", timeout_s=s.timeouts.command_s),
                timeout=s.timeouts.command_s + s.timeouts.dial_s + 15)
    if not res.ok:
        return None
    return parse_count(res.stdout)[0]


def sidecar(snap: Snapshot, v: Verification, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    st = v.status
    data = {"snapshot": snap.name, "node": snap.node, "created_utc": iso(snap.created), "verified": v.ok,
            "sha256": v.sha256, "size": v.size, "hash": st.hash_hex if st else None,
            "revision": st.revision if st else None, "total_keys": st.total_keys if st else None,
            "integrity": v.integrity}
    data.update(extra or {})
    return data


def write_sidecar(t: Transport, path: str, data: dict[str, Any]) -> None:
    t.write_file(f"{path}.json", json.dumps(data, indent=2) + "\n", mode="0600")
