"""Backup on a control-plane node: discover, preflight, space, snapshot, verify, ship, drill, retain.

Every function takes the node's :class:`~runbooks_lib.transport.Transport` (SSH to a real node,
or LocalTransport in tests) and the chapter :class:`Settings`; commands run with sudo and a
timeout and are recorded as evidence by the transport. Each step returns a result with the
checks it produced as ``(check, host, status, detail)`` tuples; the chapter turns them into
``run.check`` calls.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import random
import shlex
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...transport import TargetUnreachable, Transport
from . import config as cfgmod
from . import retention as ret
from .etcdctl import (
    SAVE_EXISTS,
    Client,
    Diagnosis,
    EndpointStatus,
    InlineChecks,
    SnapshotStatus,
    StreamHash,
    VerifyOutput,
    cleanup_script,
    diagnose,
    parse_count,
    parse_df,
    parse_endpoint_status,
    parse_inline,
    parse_listening_ports,
    parse_snapshot_status,
    parse_stream_hash,
    parse_verify,
    save_script,
    verify_script,
)
from .settings import Settings

CheckRow = tuple[str, str, str, str]
q = shlex.quote


class EtcdError(RuntimeError):
    """A step failed; ``diagnosis`` says why (its status is fail or unreachable)."""

    def __init__(self, diagnosis: Diagnosis) -> None:
        super().__init__(str(diagnosis))
        self.diagnosis = diagnosis


def _utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- discover


@dataclass
class Target:
    """etcd as seen from one node: how to reach it and which tools the node has."""

    node: str
    client: Client
    config: cfgmod.EtcdConfig | None
    discovered_from: str
    tools: dict[str, str | None]
    notes: list[str] = field(default_factory=list)

    def status_argv(self, path: str) -> list[str]:
        """Snapshot status: etcdutl when the node has it (3.5+), else etcdctl (3.4)."""
        if self.tools.get("etcdutl"):
            return [str(self.tools["etcdutl"]), "snapshot", "status", path, "-w", "json"]
        return ["env", "ETCDCTL_API=3", self.client.etcdctl, "snapshot", "status", path, "-w", "json"]

    def restore_argv(self, path: str, *args: str) -> list[str]:
        if self.tools.get("etcdutl"):
            return [str(self.tools["etcdutl"]), "snapshot", "restore", path, *args]
        return ["env", "ETCDCTL_API=3", self.client.etcdctl, "snapshot", "restore", path, *args]

    @property
    def status_tool(self) -> str:
        return "etcdutl" if self.tools.get("etcdutl") else "etcdctl"

    def summary(self) -> dict[str, Any]:
        return {"node": self.node, "endpoint": self.client.endpoint, "cacert": self.client.cacert,
                "cert": self.client.cert, "key": self.client.key, "discovered_from": self.discovered_from,
                "data_dir": self.config.data_dir if self.config else None,
                "member": self.config.name if self.config else None,
                "status_tool": self.status_tool, "etcdctl": self.tools.get("etcdctl"),
                "etcd": self.tools.get("etcd"), "notes": "; ".join(self.notes)}


def read_config(t: Transport, s: Settings) -> cfgmod.EtcdConfig | None:
    """etcd's configuration on the node: kubeadm's manifest, else the systemd unit, else None."""
    text = t.read_file(s.manifest)
    if text is not None:
        return cfgmod.parse_manifest(text, s.manifest)
    res = t.run(["systemctl", "cat", "--no-pager", s.unit], timeout=30)
    if res.ok and "ExecStart" in res.stdout:
        envs = {}
        for f in cfgmod.environment_files(res.stdout):
            f = f.replace("%p", s.unit.removesuffix(".service"))
            content = t.read_file(f)
            if content is not None:
                envs[f] = content
        return cfgmod.parse_unit(res.stdout, s.unit, envs)
    return None


def discover(t: Transport, s: Settings) -> Target:
    """Endpoint and certificates from the settings, else from the manifest/unit on the node."""
    notes: list[str] = []
    cfg = read_config(t, s)
    tools_res = t.run(
        " ; ".join(f"printf '%s=%s\\n' {name} \"$(command -v {q(path)} 2>/dev/null)\""
                   for name, path in (("etcdctl", s.etcdctl), ("etcdutl", s.etcdutl), ("etcd", s.etcd_binary))),
        timeout=30)
    tools: dict[str, str | None] = {}
    for line in tools_res.stdout.splitlines():
        k, _, v = line.partition("=")
        tools[k] = v.strip() or None
    if s.endpoint:
        endpoint, source = s.endpoint, "parameters"
    elif cfg is not None and cfg.local_client_url():
        endpoint, source = str(cfg.local_client_url()), cfg.source
    else:
        endpoint, source = "https://127.0.0.1:2379", "default (no manifest or unit found)"
    cacert, cert, key = s.cacert, s.cert, s.key
    defaults = type(s)()
    if cfg is not None and not s.endpoint and cfg.tls.get("cacert") and s.cacert == defaults.cacert:
        cacert = str(cfg.tls["cacert"])
    if cert == defaults.cert and key == defaults.key:
        probe = t.run(f"test -r {q(cert)} && test -r {q(key)}", timeout=30)
        server = (cfg.tls if cfg else {}) or {}
        scrt = server.get("cert") or defaults.cert.replace("healthcheck-client", "server")
        skey = server.get("key") or defaults.key.replace("healthcheck-client", "server")
        if not probe.ok and t.run(f"test -r {q(str(scrt))} && test -r {q(str(skey))}", timeout=30).ok:
            notes.append(f"{cert} not found: using etcd's server certificate {scrt} (it has client auth)")
            cert, key = str(scrt), str(skey)
    if endpoint.startswith("http://"):
        cacert_opt = cert_opt = key_opt = None
    else:
        cacert_opt, cert_opt, key_opt = cacert, cert, key
    client = Client(tools.get("etcdctl") or s.etcdctl, endpoint, cacert_opt, cert_opt, key_opt, s.timeouts.dial_s)
    return Target(t.name, client, cfg, source, tools, notes)


# ----------------------------------------------------------------------------- preflight


@dataclass
class Preflight:
    status: EndpointStatus
    duration_s: float
    free_bytes: int | None = None  # free space in ``space_dir`` (or its nearest existing parent), when asked


def explain_failure(t: Transport, target: Target, s: Settings, failed_output: str = "") -> Diagnosis:
    """Re-run a cheap call with --debug and name the cause (missing file, CA, SAN, port, ...).

    When that call works, the connection is fine and the failed command's own error is the cause.
    """
    if not target.tools.get("etcdctl"):
        return Diagnosis("etcdctl_missing", "fail", f"{s.etcdctl} is not installed on {t.name} (etcd-client / "
                                                    "etcd release tarball)")
    for label, path in (("cacert", target.client.cacert), ("cert", target.client.cert), ("key", target.client.key)):
        if path and not t.run(f"test -e {q(path)}", timeout=30).ok:
            return Diagnosis("cert_file_missing", "fail", f"{label} file {path} is missing on {t.name}")
    res = t.run(target.client.argv("endpoint", "status", "-w", "json", timeout_s=min(5.0, s.timeouts.command_s),
                                   debug=True),
                timeout=s.timeouts.dial_s + s.timeouts.command_s + 15,
                display=target.client.shell("endpoint", "status", "-w", "json", debug=True) + "  # diagnosis")
    if res.ok:
        last = [ln for ln in failed_output.strip().splitlines() if ln.strip() and '"level"' not in ln]
        return Diagnosis("command_failed", "fail", "etcd is reachable over TLS, but the command failed: "
                         + (last[-1][:300] if last else "no output"))
    diag = diagnose(res.stdout + "\n" + res.stderr, target.client)
    if diag.cause == "refused":
        ports = parse_listening_ports(t.run("ss -ltnH", timeout=30).stdout)
        port = int(target.client.endpoint.rsplit(":", 1)[-1].split("/")[0]) if ":" in target.client.endpoint else 2379
        if 2379 in ports and port != 2379:
            return Diagnosis("wrong_port", "fail", f"nothing listens on port {port}, but port 2379 (etcd's client "
                                                   "port) does: fix the endpoint's port")
    return diag


def preflight(t: Transport, target: Target, s: Settings, space_dir: str | None = None,
              create: bool = False) -> Preflight:
    """``endpoint status`` over TLS; on failure, the named cause (raises EtcdError).

    With ``space_dir``, the same command reads its free space (``df``); with ``create`` it creates the
    directory (0700) when missing, else (plan) it reads the nearest existing parent and writes nothing.
    """
    t0 = time.monotonic()
    if not target.tools.get("etcdctl"):
        raise EtcdError(explain_failure(t, target, s))
    cmd = shlex.join(target.client.argv("endpoint", "status", "-w", "json", timeout_s=s.timeouts.command_s))
    if space_dir is not None:
        cmd = f"{cmd}; rc=$?; echo {_DF_MARK}; {_df_cmd(space_dir, create)} || exit 1; exit $rc"
    res = t.run(cmd, timeout=s.timeouts.dial_s + s.timeouts.command_s + 15)
    out, _, df = res.stdout.partition(f"{_DF_MARK}\n")
    if not res.ok:
        if res.exit_code == 1 and space_dir is not None and not df.strip():
            raise EtcdError(Diagnosis("backup_dir", "fail", f"cannot create or read {space_dir}: "
                                      + res.stderr.strip()[-200:]))
        raise EtcdError(explain_failure(t, target, s))
    st = parse_endpoint_status(out)
    if not st:
        raise EtcdError(Diagnosis("unknown", "fail", "endpoint status returned nothing"))
    return Preflight(st[0], time.monotonic() - t0, parse_df(df) if space_dir is not None else None)


# ----------------------------------------------------------------------------- space


_DF_MARK = "--- df"


def _mkdir_owned(path: str) -> str:
    """Shell: create ``path`` 0700 when it does not exist; an existing directory is left as it is."""
    return f"{{ [ -d {q(path)} ] || {{ mkdir -p {q(path)} && chmod 0700 {q(path)}; }}; }}"


def _df_cmd(path: str, create: bool) -> str:
    if create:
        return f"{_mkdir_owned(path)} && df -PB1 {q(path)}"
    return f"d={q(path)}; while [ ! -d \"$d\" ]; do d=$(dirname \"$d\"); done; df -PB1 \"$d\""


def free_bytes(t: Transport, path: str, create: bool = False) -> int:
    """Free bytes in ``path`` (created 0700 when missing and ``create``; else its nearest existing parent)."""
    return parse_df(t.run(_df_cmd(path, create), timeout=30, check=True).stdout)


def space_rows(needed: int, available: dict[str, int]) -> list[CheckRow]:
    """A check per location: enough free space for ``needed`` bytes?"""
    rows = []
    for where, free in available.items():
        ok = free >= needed
        rows.append(("free space before writing", where, "pass" if ok else "fail",
                     f"{_mb(free)} free, need {_mb(needed)}" + ("" if ok else ": backup disk full; nothing written")))
    return rows


def _mb(n: int | float) -> str:
    return f"{n / 1e6:.1f} MB"


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
    when = when or _utc()
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
                     f"hash {st.hash_hex}, revision {st.revision}, {st.total_keys} keys, {_mb(self.size)}, "
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
    dest = f"{p.parent}/corrupt/{p.name}.{_utc().strftime('%Y%m%dT%H%M%SZ')}"
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
    data = {"snapshot": snap.name, "node": snap.node, "created_utc": _iso(snap.created), "verified": v.ok,
            "sha256": v.sha256, "size": v.size, "hash": st.hash_hex if st else None,
            "revision": st.revision if st else None, "total_keys": st.total_keys if st else None,
            "integrity": v.integrity}
    data.update(extra or {})
    return data


def write_sidecar(t: Transport, path: str, data: dict[str, Any]) -> None:
    t.write_file(f"{path}.json", json.dumps(data, indent=2) + "\n", mode="0600")


# ----------------------------------------------------------------------------- gzip + ship


def compress(t: Transport, path: str, s: Settings) -> tuple[str, str, float]:
    """gzip the snapshot on the node (keeps the .db for the drill); (gz path, sha256 of the .gz, seconds)."""
    t0 = time.monotonic()
    gz = f"{path}.gz"
    res = t.run(f"gzip -1 -c {q(path)} > {q(gz)}.part && chmod 0600 {q(gz)}.part && mv -f {q(gz)}.part {q(gz)} && "
                f"sha256sum < {q(gz)} | cut -d' ' -f1", timeout=s.timeouts.verify_s, check=True)
    return gz, res.stdout.strip(), time.monotonic() - t0


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Copy:
    location: str  # "local:/dir/file" or "host:/dir/file"
    path: str
    sha256: str
    ok: bool
    duration_s: float
    detail: str = ""

    def row(self) -> CheckRow:
        return ("copy sha256 matches", self.location, "pass" if self.ok else "fail", self.detail)


def fetch(t: Transport, remote: str, local: Path, s: Settings) -> None:
    """SFTP the file to the runner; a non-root SSH user gets a readable staging copy first."""
    local.parent.mkdir(parents=True, exist_ok=True)
    if not t.needs_sudo:
        t.get(remote, local)
        return
    # a staging dir left by a run whose connection dropped mid-copy (older than a copy can take) goes first
    stale = max(1, int(s.timeouts.copy_s // 60) + 1)
    stage = t.run(f"find /tmp -maxdepth 1 -name 'runbooks-etcd.*' -user \"$(id -un)\" -mmin +{stale} "
                  "-exec rm -rf {} + 2>/dev/null; mktemp -d /tmp/runbooks-etcd.XXXXXX", sudo=False, timeout=30,
                  check=True).stdout.strip().splitlines()[-1]
    staged = f"{stage}/{Path(remote).name}"
    try:
        t.run(f"cp {q(remote)} {q(staged)} && chown {q(t.user)} {q(staged)} && chmod 0600 {q(staged)}",
              timeout=s.timeouts.copy_s, check=True)
        t.get(staged, local)
    finally:
        t.run(f"rm -rf {q(stage)}", timeout=60)


def ensure_local_dir(path: Path) -> str | None:
    """Create ``path`` 0700 when missing; an existing one keeps its mode. A warning when others can read it."""
    if not path.is_dir():
        path.mkdir(parents=True, mode=0o700)
        path.chmod(0o700)  # mkdir's mode is masked by the umask
        return None
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        return (f"{path} is mode {mode:04o}: other users on the runner can list (or read) the snapshots, which "
                "hold every Secret of the cluster; chmod 0700 it (left as it is)")
    return None


def ship_local(t: Transport, remote: str, sha256: str, local_dir: Path, s: Settings,
               meta: dict[str, Any]) -> Copy:
    """Copy to the runner's directory (mode 0600) and check its sha256 against the node's."""
    t0 = time.monotonic()
    ensure_local_dir(local_dir)
    final = local_dir / Path(remote).name
    part = final.with_name(final.name + ".part")
    fetch(t, remote, part, s)
    part.chmod(0o600)
    got = sha256_file(part)
    ok = got == sha256
    if ok:
        os.replace(part, final)
        side = final.with_name(final.name + ".json")
        side.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        side.chmod(0o600)
        detail = f"{final}: sha256 {got[:16]}… = node's"
    else:
        detail = f"{part}: sha256 {got[:16]}… differs from the node's {sha256[:16]}… (kept as .part)"
    return Copy(f"local:{final}", str(final), got, ok, time.monotonic() - t0, detail)


def ship_host(src: Transport, dst: Transport, remote: str, sha256: str, dest_dir: str, s: Settings,
              meta: dict[str, Any], staged: Path | None = None) -> Copy:
    """Copy to a directory on another host (through the runner) and check the copy's sha256 there."""
    t0 = time.monotonic()
    tmp_dir = None
    if staged is None or not staged.exists():
        import tempfile

        tmp_dir = Path(tempfile.mkdtemp(prefix="runbooks-etcd-"))
        staged = tmp_dir / Path(remote).name
        fetch(src, remote, staged, s)
    name = Path(remote).name
    final = f"{dest_dir.rstrip('/')}/{name}"
    try:
        up = dst.run("mktemp -d /tmp/runbooks-etcd.XXXXXX", sudo=False, timeout=30, check=True).stdout.strip()
        dst.put(staged, f"{up}/{name}")
        res = dst.run(f"{_mkdir_owned(dest_dir)} && "
                      f"mv -f {q(up)}/{q(name)} {q(final)}.part && chown root:root {q(final)}.part && "
                      f"chmod 0600 {q(final)}.part && sha256sum < {q(final)}.part | cut -d' ' -f1; "
                      f"rm -rf {q(up)}", timeout=s.timeouts.copy_s)
        got = res.stdout.strip()
        ok = res.ok and got == sha256
        if ok:
            dst.run(f"mv -f {q(final)}.part {q(final)}", timeout=60, check=True)
            write_sidecar(dst, final, meta)
            detail = f"{dst.name}:{final}: sha256 {got[:16]}… = node's"
        else:
            detail = f"{dst.name}:{final}.part: sha256 {got[:16]}… differs from {sha256[:16]}… (kept as .part)"
        return Copy(f"{dst.name}:{final}", final, got, ok, time.monotonic() - t0, detail)
    finally:
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)


# ----------------------------------------------------------------------------- drill


@dataclass
class Drill:
    ok: bool
    rows: list[CheckRow]
    figures: dict[str, Any]
    duration_s: float
    log_tail: str = ""


def _free_ports(t: Transport, count: int = 2) -> list[int]:
    used = parse_listening_ports(t.run("ss -ltnH", timeout=30).stdout)
    start = random.randint(30000, 32000)  # noqa: S311 - not crypto, just spreads parallel drills
    ports = [p for p in range(start, start + 2000) if p not in used]
    return ports[:count]


@dataclass
class Throwaway:
    """A throwaway etcd serving a restored snapshot on the node: 127.0.0.1, random ports, client and
    peer TLS with etcd's own certificates (only holders of a client certificate of etcd's CA, who can
    read the live etcd anyway, can read it)."""

    scratch: str
    client: Client | None = None  # set once it answers
    rows: list[CheckRow] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    log_tail: str = ""


def _drill_tls(target: Target) -> dict[str, str] | None:
    """etcd's own serving/peer certificates and CA (from its manifest or unit), for the throwaway etcd."""
    flags = dict(target.config.flags) if target.config else {}
    ca = flags.get("trusted-ca-file") or target.client.cacert
    if not flags.get("cert-file") and ca:  # no manifest or unit read: kubeadm's layout next to the CA
        pki = ca.rpartition("/")[0]
        flags.update({"cert-file": f"{pki}/server.crt", "key-file": f"{pki}/server.key",
                      "peer-cert-file": f"{pki}/peer.crt", "peer-key-file": f"{pki}/peer.key"})
    cert, key = flags.get("cert-file"), flags.get("key-file")
    if not (cert and key and ca and target.client.cert and target.client.key):
        return None
    return {"cert": cert, "key": key, "ca": ca, "peer_cert": flags.get("peer-cert-file") or cert,
            "peer_key": flags.get("peer-key-file") or key, "peer_ca": flags.get("peer-trusted-ca-file") or ca}


_ALIVE = ("alive() { for x in \"$@\"; do [ -e /proc/$x ] && ! grep -qs '^[0-9]* (.*) Z' /proc/$x/stat "
          "&& return 0; done; return 1; }; ")


def _stop_script(scratch: str) -> str:
    """Stop the throwaway etcd by its pids (timeout's and etcd's), wait, KILL if needed, report by pid, remove
    the scratch dir. Prints ``gone=PIDS`` or ``alive=PIDS``."""
    d = q(scratch)
    return (_ALIVE + f"p=$(cat {d}/pid 2>/dev/null); e=$(cat {d}/etcd.pid 2>/dev/null); "
            "[ -n \"$p\" ] && [ -z \"$e\" ] && e=$(cat /proc/$p/task/$p/children 2>/dev/null); set -- $p $e; "
            "if [ $# -gt 0 ]; then kill -TERM \"$@\" 2>/dev/null; i=0; "
            "while alive \"$@\" && [ $i -lt 150 ]; do i=$((i+1)); sleep 0.1; done; "
            "if alive \"$@\"; then kill -KILL \"$@\" 2>/dev/null; sleep 0.5; fi; fi; "
            f"rm -rf {d}; if alive \"$@\"; then echo \"alive=$*\"; else echo \"gone=$*\"; fi")


@contextlib.contextmanager
def throwaway_etcd(t: Transport, target: Target, snap_path: str, s: Settings) -> Iterator[Throwaway]:
    """Restore ``snap_path`` into a 0700 scratch dir and serve it (see :class:`Throwaway`); always stopped
    (verified by pid) and removed on exit. ``client`` is None when it did not come up (``rows`` say why)."""
    etcd_bin = target.tools.get("etcd")
    tls = _drill_tls(target)
    if not etcd_bin or tls is None:
        why = (f"{s.etcd_binary} is not installed on {t.name}: the drill needs an etcd binary (set etcd_binary, "
               "or drill: false)" if not etcd_bin else "etcd's TLS certificates (cert-file, key-file, CA, client "
               "certificate) are not known: the drill never serves a restored keyspace without client TLS")
        th = Throwaway("")
        th.rows.append(("restore drill", t.name, "fail", why))
        yield th
        return
    scratch = t.run("mktemp -d /var/tmp/runbooks-etcd-drill.XXXXXX", timeout=30, check=True).stdout.strip()
    th = Throwaway(scratch)
    data = f"{scratch}/data"
    client_port, peer_port = _free_ports(t)
    peer, client_url = f"https://127.0.0.1:{peer_port}", f"https://127.0.0.1:{client_port}"
    try:
        r0 = time.monotonic()
        res = t.run(target.restore_argv(snap_path, f"--data-dir={data}", "--name=drill",
                                        f"--initial-cluster=drill={peer}", f"--initial-advertise-peer-urls={peer}",
                                        f"--initial-cluster-token=runbooks-drill-{_utc().strftime('%Y%m%d%H%M%S')}"),
                    timeout=s.timeouts.restore_s)
        th.figures["drill_restore_s"] = round(time.monotonic() - r0, 3)
        if not res.ok:
            out = (res.stderr or res.stdout).strip()
            th.rows.append(("restore drill: snapshot restore", t.name, "fail",
                            out.splitlines()[-1][:300] if out else f"exit {res.exit_code}"))
            yield th
            return
        th.rows.append(("restore drill: snapshot restore", t.name, "pass", f"restored into scratch dir {data}"))
        etcd_cmd = shlex.join([
            "timeout", "-k", "5", str(int(s.timeouts.drill_max_s)), str(etcd_bin), "--name=drill",
            f"--data-dir={data}", f"--listen-client-urls={client_url}", f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}", f"--initial-cluster=drill={peer}",
            "--client-cert-auth=true", f"--trusted-ca-file={tls['ca']}", f"--cert-file={tls['cert']}",
            f"--key-file={tls['key']}", "--peer-client-cert-auth=true", f"--peer-trusted-ca-file={tls['peer_ca']}",
            f"--peer-cert-file={tls['peer_cert']}", f"--peer-key-file={tls['peer_key']}"])
        client = Client(target.client.etcdctl, client_url, tls["ca"], target.client.cert, target.client.key,
                        s.timeouts.dial_s)
        s0 = time.monotonic()
        t.run(f"setsid -f sh -c {q('echo $$ > ' + scratch + '/pid; exec ' + etcd_cmd)} "
              f"> {q(scratch)}/etcd.log 2>&1 < /dev/null", timeout=30, check=True)
        tries = max(1, int(s.timeouts.drill_start_s / 0.25))
        health = client.shell("endpoint", "health", timeout_s=2)
        up = t.run(f"i=0; while [ $i -lt {tries} ]; do {health} >/dev/null 2>&1 && break; "
                   "i=$((i+1)); sleep 0.25; done; [ $i -lt " + str(tries) + " ] || exit 1; "
                   f"p=$(cat {q(scratch)}/pid); cat /proc/$p/task/$p/children > {q(scratch)}/etcd.pid; "
                   f"echo \"pids=$p $(cat {q(scratch)}/etcd.pid)\"", timeout=s.timeouts.drill_start_s + 30)
        th.figures["drill_start_s"] = round(time.monotonic() - s0, 3)
        if not up.ok:
            th.log_tail = t.run(f"tail -n 20 {q(scratch)}/etcd.log", timeout=30).stdout
            th.rows.append(("restore drill: throwaway etcd healthy", t.name, "fail",
                            f"not healthy on {client_url} within {s.timeouts.drill_start_s:.0f}s: "
                            + (th.log_tail.strip().splitlines()[-1][:300] if th.log_tail.strip() else "no log")))
            yield th
            return
        started = " ".join(up.stdout.strip().rpartition("pids=")[2].split())
        th.rows.append(("restore drill: throwaway etcd healthy", t.name, "pass",
                        f"{client_url} (127.0.0.1 only, client and peer TLS with etcd's CA; pids {started})"))
        th.client = client
        yield th
    finally:
        stop = t.run(_stop_script(scratch), timeout=60)
        out = stop.stdout.strip()
        gone = t.run(f"test ! -e {q(scratch)}", timeout=30).ok
        stopped = stop.ok and out.startswith("gone=")
        pids = out.partition("=")[2].strip() or "none started"
        th.rows.append(("restore drill: cleaned up", t.name, "pass" if stopped and gone else "fail",
                        (f"throwaway etcd stopped (pids {pids}: no longer running)" if stopped
                         else f"throwaway etcd still running (pids {pids or '?'}): {out or stop.stderr.strip()[-200:]}")
                        + (f", {scratch} removed" if gone else f", {scratch} still there")))


def drill(t: Transport, target: Target, snap_path: str, expected: SnapshotStatus, s: Settings,
          source_keys: int | None = None) -> Drill:
    """Restore into a scratch dir, serve it with a throwaway etcd, compare revision and keys, stop it for real."""
    t0 = time.monotonic()
    ok = False
    with throwaway_etcd(t, target, snap_path, s) as th:
        if th.client is not None:
            local = th.client
            st = parse_endpoint_status(t.run(local.argv("endpoint", "status", "-w", "json", timeout_s=10),
                                             timeout=40, check=True).stdout)[0]
            count, _ = parse_count(t.run(local.count_argv(timeout_s=30), timeout=60, check=True).stdout)
            th.figures.update({"drill_revision": st.revision, "drill_keys": count})
            rev_ok = st.revision == expected.revision
            th.rows.append(("restore drill: revision matches", t.name, "pass" if rev_ok else "fail",
                            f"restored {st.revision}, snapshot {expected.revision}"))
            if source_keys is None:
                th.rows.append(("restore drill: key count matches", t.name, "warn",
                                f"restored etcd holds {count} keys; the source's count at revision "
                                f"{expected.revision} was not readable (compacted?)"))
                keys_ok = True
            else:
                keys_ok = count == source_keys
                th.rows.append(("restore drill: key count matches", t.name, "pass" if keys_ok else "fail",
                                f"restored {count} keys, source had {source_keys} at revision {expected.revision}"))
            ok = rev_ok and keys_ok
    ok = ok and th.rows[-1][2] == "pass"  # stopped and removed, by pid
    return Drill(ok, th.rows, th.figures, time.monotonic() - t0, th.log_tail)

