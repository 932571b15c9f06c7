"""Backup locations: a snapshot directory on a node or on the runner, read, re-checked and pruned.

A location lists its snapshots with their sidecars (``NAME.json``: size, sha256, revision,
verified) and the leftovers of interrupted saves (``NAME.part`` and the save's ``.NAME.save``
state dir; a save still running is left alone). Retention re-checks every snapshot it would keep
against its sidecar before anything is deleted (size + sha256; the newest kept one fully: etcd's
integrity hash, and its revision where etcd's tools are at hand). A snapshot that no longer
matches its sidecar is never counted as a good one: it is reported, moved to ``corrupt/`` in
apply (never deleted), and the next one takes its place in the plan, which is checked in turn.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ...transport import Transport
from . import retention as ret
from .etcdctl import parse_snapshot_status, parse_verify, verify_script
from .settings import Settings

q = shlex.quote


@dataclass
class Entry:
    name: str
    size: int
    sidecar: dict[str, Any] | None = None

    @property
    def verified(self) -> bool:
        return bool(self.sidecar and self.sidecar.get("verified") is True)


@dataclass
class Leftover:
    """An interrupted save's ``NAME.part`` or its state dir ``.NAME.save``."""

    name: str
    size: int
    live: bool  # the save that owns it is still running: left alone


@dataclass
class Listing:
    entries: dict[str, Entry] = field(default_factory=dict)
    leftovers: list[Leftover] = field(default_factory=list)


def _compare(e: Entry, size: int, sha256: str, integrity_ok: bool | None) -> str | None:
    """What differs between a snapshot on disk and its sidecar (None: intact)."""
    side = e.sidecar or {}
    gz = e.name.endswith(".gz")
    if size < 0:
        return "unreadable"
    if not gz and side.get("size") is not None and int(side["size"]) != size:
        return f"size {size} bytes, its sidecar says {side['size']}: changed since it was verified"
    if side.get("sha256") and side["sha256"] != sha256:
        return f"sha256 {sha256[:16]}… differs from its sidecar's {str(side['sha256'])[:16]}…: changed since it was verified"
    if integrity_ok is False and not gz:
        return "etcd's integrity hash (sha256 appended to the snapshot) does not match: corrupted"
    return None


class Location(Protocol):
    label: str

    def listing(self) -> Listing: ...
    def problem(self, e: Entry, full: bool) -> str | None: ...
    def delete(self, names: list[str]) -> None: ...
    def move_aside(self, name: str) -> str: ...
    def remove(self, leftovers: list[Leftover]) -> None: ...


_LIST = (
    f"for f in {ret.PREFIX}* .{ret.PREFIX}*.save; do [ -e \"$f\" ] || continue; case \"$f\" in "
    "*.save) b=${f#.}; b=${b%.save}; live=0; [ -s \"$f/sh\" ] && kill -0 \"$(cat \"$f/sh\")\" 2>/dev/null && live=1; "
    "echo \"save $live 0 $f\";; "
    "*.json) printf 'json %s ' \"$f\"; tr -d '\\n' < \"$f\"; echo;; "
    "*.part) b=${f%.part}; live=0; [ -s \".$b.save/sh\" ] && kill -0 \"$(cat \".$b.save/sh\")\" 2>/dev/null && live=1; "
    "echo \"part $live $(stat -c %s \"$f\") $f\";; "
    "*) [ -f \"$f\" ] && echo \"file $(stat -c %s \"$f\") $f\";; esac; done"
)


def parse_listing(text: str) -> Listing:
    """The output of the node-side listing (see ``NodeDir.listing``)."""
    out = Listing()
    sidecars: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "file":
            size, _, name = rest.partition(" ")
            out.entries[name] = Entry(name, int(size))
        elif kind == "json":
            name, _, doc = rest.partition(" ")
            try:
                data = json.loads(doc)
            except ValueError:
                continue
            if isinstance(data, dict):
                sidecars[name.removesuffix(".json")] = data
        elif kind in ("part", "save"):
            live, size, name = rest.split(" ", 2)
            out.leftovers.append(Leftover(name, int(size), live == "1"))
    for name, data in sidecars.items():
        if name in out.entries:
            out.entries[name].sidecar = data
    live_saves = {lo.name for lo in out.leftovers if lo.live}
    out.leftovers = [lo for lo in out.leftovers
                     if not lo.live and f".{lo.name.removesuffix('.part')}.save" not in live_saves]
    return out


class NodeDir:
    """A snapshot directory on a node (the etcd node, or copy_to_host)."""

    def __init__(self, t: Transport, directory: str, s: Settings, status_argv: Any = None) -> None:
        self.t, self.dir, self.s = t, directory.rstrip("/") or "/", s
        self.status_argv = status_argv  # callable(path) -> argv, on the etcd node (etcdctl/etcdutl)
        self.label = f"{t.name}:{directory}"

    def path(self, name: str) -> str:
        return f"{self.dir}/{name}"

    def listing(self) -> Listing:
        res = self.t.run(f"cd {q(self.dir)} 2>/dev/null || exit 0; {_LIST}", timeout=60,
                         display=f"list {self.dir}: snapshots, sidecars, interrupted saves (read-only)")
        return parse_listing(res.stdout)

    def problem(self, e: Entry, full: bool) -> str | None:
        path = self.path(e.name)
        with_status = full and self.status_argv is not None and not e.name.endswith(".gz")
        argv = self.status_argv(path) if with_status else ["true"]
        res = self.t.run(verify_script(path, argv), timeout=self.s.timeouts.verify_s,
                         display=f"re-check {path}: size + sha256 vs its sidecar"
                         + ("; etcd's integrity hash and snapshot status" if full else ""))
        out = parse_verify(res.stdout)
        if not res.ok:
            return f"cannot read it: {res.stderr.strip()[-200:]}"
        found = _compare(e, out.size, out.sha256, out.integrity_ok if full else None)
        if found or not with_status:
            return found
        if out.status_rc != 0:
            return "snapshot status failed: " + out.status_text.strip()[-200:]
        try:
            st = parse_snapshot_status(out.status_text)
        except ValueError as exc:
            return str(exc)
        want = (e.sidecar or {}).get("revision")
        if want is not None and int(want) != st.revision:
            return f"revision {st.revision}, its sidecar says {want}"
        return None

    def delete(self, names: list[str]) -> None:
        files = " ".join(f"{q(self.path(n))} {q(self.path(n) + '.json')}" for n in names)
        self.t.run(f"rm -f {files}", timeout=120, check=True)

    def move_aside(self, name: str) -> str:
        from .snapshot import move_aside_file

        return move_aside_file(self.t, self.path(name))

    def remove(self, leftovers: list[Leftover]) -> None:
        self.t.run("rm -rf " + " ".join(q(self.path(lo.name)) for lo in leftovers), timeout=120, check=True)


def local_digests(path: Path) -> tuple[int, str, bool]:
    """(size, sha256, etcd's integrity hash ok) of a file on the runner, in one read."""
    size = path.stat().st_size
    body, left = hashlib.sha256(), max(size - 32, 0)
    with path.open("rb") as fh:
        while left:
            chunk = fh.read(min(left, 1 << 20))
            if not chunk:
                break
            body.update(chunk)
            left -= len(chunk)
        trailer = fh.read()
    whole = body.copy()
    whole.update(trailer)
    return size, whole.hexdigest(), size % 512 == 32 and body.digest() == trailer


class LocalDir:
    """The runner's copy directory."""

    def __init__(self, path: Path) -> None:
        self.dir = path
        self.label = f"local:{path}"

    def listing(self) -> Listing:
        out = Listing()
        if not self.dir.is_dir():
            return out
        for p in sorted(self.dir.iterdir()):
            if p.name.endswith(".part") and p.name.startswith(ret.PREFIX):
                out.leftovers.append(Leftover(p.name, p.stat().st_size, False))
            elif p.is_file() and p.name.startswith(ret.PREFIX) and not p.name.endswith(".json"):
                e = Entry(p.name, p.stat().st_size)
                side = p.with_name(p.name + ".json")
                if side.is_file():
                    try:
                        data = json.loads(side.read_text(encoding="utf-8"))
                        e.sidecar = data if isinstance(data, dict) else None
                    except (OSError, ValueError):
                        e.sidecar = None
                out.entries[p.name] = e
        return out

    def problem(self, e: Entry, full: bool) -> str | None:
        try:
            size, sha, integrity = local_digests(self.dir / e.name)
        except OSError as exc:
            return f"cannot read it: {exc}"
        return _compare(e, size, sha, integrity if full else None)

    def delete(self, names: list[str]) -> None:
        for n in names:
            (self.dir / n).unlink(missing_ok=True)
            (self.dir / f"{n}.json").unlink(missing_ok=True)

    def move_aside(self, name: str) -> str:
        corrupt = self.dir / "corrupt"
        corrupt.mkdir(mode=0o700, exist_ok=True)
        dest = corrupt / f"{name}.{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}"
        os.replace(self.dir / name, dest)
        (self.dir / f"{name}.json").unlink(missing_ok=True)
        return str(dest)

    def remove(self, leftovers: list[Leftover]) -> None:
        for lo in leftovers:
            (self.dir / lo.name).unlink(missing_ok=True)


@dataclass
class Retained:
    """What retention found and did in one location."""

    location: str
    plan: ret.RetentionPlan
    deleted: list[str] = field(default_factory=list)
    bad: dict[str, str] = field(default_factory=dict)  # name -> what no longer matches its sidecar
    moved: dict[str, str] = field(default_factory=dict)  # name -> where it was moved (corrupt/)
    checked: dict[str, str] = field(default_factory=dict)  # name -> "sha256" | "full"
    leftovers: list[Leftover] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, str]]:
        out = []
        for r in self.plan.rows():
            r["checked"] = {"full": "intact (full)", "sha256": "intact (size+sha256)"}.get(
                self.checked.get(r["snapshot"], ""), "")
            if r["action"] == "delete" and r["snapshot"] not in self.deleted:
                r["action"] = "would delete"
            out.append(r)
        for name, why in self.bad.items():
            out.append({"snapshot": name, "time": "", "verified": "sidecar: yes", "checked": why,
                        "action": "moved to corrupt/" if name in self.moved else "bad (apply moves it to corrupt/)",
                        "reason": "no longer matches its sidecar: never counted as a good snapshot"})
        for lo in self.leftovers:
            out.append({"snapshot": lo.name, "time": "", "verified": "no", "checked": f"{lo.size / 1e6:.1f} MB",
                        "action": "removed" if lo.name in self.removed else "would remove",
                        "reason": "left by an interrupted save"})
        return out


def review(loc: Location, s: Settings, now: dt.datetime, protect: dict[str, str] | None = None, *,
           delete: bool = False, tidy: bool = False) -> Retained:
    """Retention in one location: re-check what it keeps until the kept set is intact, then (``delete``)
    delete what the policy drops and (``tidy``) move bad snapshots aside and remove stale leftovers."""
    listing = loc.listing()
    bad: dict[str, str] = {}
    checked: dict[str, str] = {}
    while True:
        snaps = [ret.Snap(n, t, e.verified) for n, e in listing.entries.items()
                 if n not in bad and (t := ret.snapshot_time(n)) is not None]
        plan = ret.plan(snaps, s.retention.policy, s.retention.keep, now, protect)
        kept = [x for x in plan.keep if x.verified]
        todo = [(x, i == 0) for i, x in enumerate(kept)
                if x.name not in checked or (i == 0 and checked[x.name] != "full")]
        if not todo:
            break
        for x, full in todo:
            found = loc.problem(listing.entries[x.name], full)
            if found:
                bad[x.name] = found
            else:
                checked[x.name] = "full" if full else "sha256"
    out = Retained(loc.label, plan, bad=bad, checked=checked, leftovers=listing.leftovers)
    if tidy:
        for name in bad:
            out.moved[name] = loc.move_aside(name)
        if listing.leftovers:
            loc.remove(listing.leftovers)
            out.removed = [lo.name for lo in listing.leftovers]
    if delete and plan.delete:
        loc.delete([x.name for x in plan.delete])
        out.deleted = [x.name for x in plan.delete]
    return out
