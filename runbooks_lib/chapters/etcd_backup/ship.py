"""gzip a verified snapshot on the node and ship it: to the runner (fetched over the transport,
sha256 checked) or to another host."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...transport import Transport
from .settings import Settings
from .snapshot import write_sidecar
from .target import CheckRow, mkdir_owned, q

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
        res = dst.run(f"{mkdir_owned(dest_dir)} && "
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
