"""The chapter's steps as the notebook calls them: each takes the :class:`~runbooks_lib.run.Run`,
records checks and key figures, and returns what the notebook shows.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...transport import TargetUnreachable, Transport
from . import config as cfgmod
from . import restoreplan as rs
from . import ship as shipping
from . import snapshot as snaps
from . import store
from . import target as disc
from . import throwaway as drills
from .retention import SUFFIXES, snapshot_time
from .settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ...run import Run

CHAPTER = "etcd-backup"


def _project_root() -> Path:
    from ...params import PROJECT_ROOT  # late: params imports this package's settings

    return PROJECT_ROOT


def settings(run: Run) -> Settings:
    return run.params.etcd_backup


def node_name(run: Run) -> str:
    """The node to back up from: settings.node, else the first control-plane (or etcd) host."""
    s = settings(run)
    if s.node:
        return s.node
    hosts = run.params.hosts_with_role("control-plane") or run.params.hosts_with_role("etcd")
    if not hosts:
        raise ValueError("no host with role control-plane or etcd: set etcd_backup.node")
    return hosts[0].name


def local_dir(run: Run) -> Path | None:
    """Where the runner keeps its copies (git-ignored backups/etcd/<cluster> by default: snapshots hold every Secret, so they stay out of reports)."""
    s = settings(run)
    if s.local_dir == "":
        return None
    if s.local_dir:
        return Path(s.local_dir).expanduser()
    return _project_root() / "backups" / "etcd" / run.params.cluster_name


def _fail(run: Run, check: str, host: str, exc: BaseException) -> None:
    if isinstance(exc, disc.EtcdError):
        run.check(check, host, exc.diagnosis.status, exc.diagnosis.message)
    elif isinstance(exc, TargetUnreachable):
        run.check(check, host, "unreachable", exc.reason)
    else:
        run.check(check, host, "error", f"{type(exc).__name__}: {exc}")


# ----------------------------------------------------------------------------- discover


def discover(run: Run) -> disc.Target | None:
    """Find etcd and its certificates on the node; None (and a failed check) when that fails."""
    host = node_name(run)
    t = run.transport(host)
    with run.recorder.in_step("discover"):
        try:
            target = disc.discover(t, settings(run))
        except (disc.EtcdError, TargetUnreachable, cfgmod.ConfigError) as exc:
            _fail(run, "etcd found", host, exc)
            return None
    run.add_target(f"etcd {target.client.endpoint} on {host} ({'lab' if run.params.is_lab else 'host'})")
    run.check("etcd found", host, "pass", f"{target.client.endpoint} from {target.discovered_from}"
              + (f"; {'; '.join(target.notes)}" if target.notes else ""))
    return target


# ----------------------------------------------------------------------------- backup


@dataclass
class BackupResult:
    target: disc.Target
    snapshot: snaps.Snapshot | None = None
    verification: snaps.Verification | None = None
    shipped: str | None = None  # the file shipped (the .db or its .gz)
    shipped_sha256: str | None = None
    copies: list[shipping.Copy] = field(default_factory=list)
    kind: str = "backup"  # or "pre-restore": the safety snapshot taken before a restore
    timings: dict[str, float] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return bool(self.verification and self.verification.ok)

    def table(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([{"figure": k, "value": v} for k, v in self.figures.items()])


def _apply(run: Run) -> bool:
    return run.params.mode == "apply"


def backup(run: Run, target: disc.Target, pre_restore: bool = False) -> BackupResult:
    """Preflight, free space; in apply: snapshot save, verify (status, sha256, integrity), gzip, ship, check copies.

    Plan writes nothing (no directory is created): it reports etcd's health, the free space, and what apply would
    take (drift). ``pre_restore``: the safety snapshot of the current state taken before a restore.
    """
    s = settings(run)
    t = run.transport(target.node)
    apply = _apply(run)
    res = BackupResult(target, kind="pre-restore" if pre_restore else "backup")
    with run.recorder.in_step("preflight"):
        try:
            pf = disc.preflight(t, target, s, space_dir=s.remote_dir, create=apply)  # + df: one command
        except (disc.EtcdError, TargetUnreachable) as exc:
            _fail(run, "etcd reachable over TLS", target.node, exc)
            return res
        st = pf.status
        run.check("etcd reachable over TLS", target.node, "pass",
                  f"{st.endpoint}: etcd {st.version}, revision {st.revision}, db {st.db_size / 1e6:.1f} MB"
                  + (", leader" if st.is_leader else ""))
        res.figures.update({"etcd_version": st.version, "db_size_bytes": st.db_size})
    ld = local_dir(run)
    with run.recorder.in_step("free space"):
        needed = int(st.db_size * s.free_space_factor) + (1 << 20)
        try:
            assert pf.free_bytes is not None  # asked for with space_dir
            avail = {f"{target.node}:{s.remote_dir}": pf.free_bytes}
            if ld is not None:
                import shutil

                if apply and (warning := shipping.ensure_local_dir(ld)):
                    run.check("runner copy directory", f"local:{ld}", "warn", warning)
                probe = ld
                while not probe.is_dir():
                    probe = probe.parent
                avail[f"local:{ld}"] = shutil.disk_usage(probe).free
            if s.copy_to_host:
                avail[f"{s.copy_to_host}:{s.copy_to_dir}"] = disc.free_bytes(run.transport(s.copy_to_host),
                                                                            s.copy_to_dir, create=apply)
        except TargetUnreachable as exc:
            _fail(run, "free space before writing", exc.target, exc)
            return res
        rows = disc.space_rows(needed, avail)
        for row in rows:
            run.check(*row)
        if any(r[2] != "pass" for r in rows):
            return res
    if not apply:
        where = [f"local:{ld}"] if ld is not None else []
        where += [f"{s.copy_to_host}:{s.copy_to_dir}"] if s.copy_to_host else []
        run.check("snapshot", target.node, "drift",
                  f"apply would take a snapshot into {target.node}:{s.remote_dir} (about {st.db_size / 1e6:.1f} MB), "
                  "verify it" + (f", copy it to {', '.join(where)}" if where else "")
                  + (" and drill a restore" if s.drill else "") + "; plan wrote nothing")
        return res
    with run.recorder.in_step("pre-restore snapshot" if pre_restore else "snapshot save"):
        try:
            snap = snaps.save(t, target, s, run.params.cluster_name, label="pre-restore" if pre_restore else "")
        except (disc.EtcdError, TargetUnreachable) as exc:
            _fail(run, "snapshot saved", target.node, exc)
            return res
        res.snapshot = snap
        res.timings["save_s"] = round(snap.save_s, 3)
        run.check("pre-restore snapshot saved" if pre_restore else "snapshot saved", target.node, "changed",
                  f"{snap.path} in {snap.save_s:.2f}s" + (": the current state, to undo the restore" if pre_restore
                                                         else ""))
    with run.recorder.in_step("verify"):
        v = snaps.verify(t, target, snap.path, s, count_source_keys=True, known=snap.stream, inline=snap.inline)
        res.verification = v
        res.timings["verify_s"] = round(v.duration_s, 3)
        for row in v.rows():
            run.check(*row)
        if not v.ok or v.status is None:
            return res
        snap.source_keys_at_rev = v.source_keys
        meta = snaps.sidecar(snap, v, {"source_keys_at_revision": snap.source_keys_at_rev, "kind": res.kind})
        snaps.write_sidecar(t, snap.path, meta)
        res.figures.update({
            "snapshot": snap.name, "node": target.node, "hash": v.status.hash_hex, "revision": v.status.revision,
            "total_keys": v.status.total_keys, "keys": snap.source_keys_at_rev, "size_bytes": v.size,
            "sha256": v.sha256, "integrity": v.integrity, "digests": v.digests,
            "status_tool": target.status_tool})
    shipped, sha = snap.path, v.sha256
    if s.gzip:
        with run.recorder.in_step("gzip"):
            gz, gz_sha, took = shipping.compress(t, snap.path, s)
            snaps.write_sidecar(t, gz, dict(meta, sha256=gz_sha, compressed_from_sha256=v.sha256))
            shipped, sha = gz, gz_sha
            res.timings["gzip_s"] = round(took, 3)
            res.figures["gzip_sha256"] = gz_sha
    res.shipped, res.shipped_sha256 = shipped, sha
    with run.recorder.in_step("ship"):
        t0 = time.monotonic()
        meta_shipped = dict(meta, sha256=sha)
        staged: Path | None = None
        if ld is not None:
            try:
                c = shipping.ship_local(t, shipped, sha, ld, s, meta_shipped)
                res.copies.append(c)
                staged = Path(c.path) if c.ok else None
            except (OSError, TargetUnreachable) as exc:
                _fail(run, "copy sha256 matches", f"local:{ld}", exc)
        if s.copy_to_host:
            try:
                res.copies.append(shipping.ship_host(t, run.transport(s.copy_to_host), shipped, sha, s.copy_to_dir, s,
                                               meta_shipped, staged))
            except (OSError, TargetUnreachable) as exc:
                _fail(run, "copy sha256 matches", f"{s.copy_to_host}:{s.copy_to_dir}", exc)
        for c in res.copies:
            run.check(*c.row())
        res.timings["ship_s"] = round(time.monotonic() - t0, 3)
        if shipped_to := [c.location for c in res.copies if c.ok]:
            res.figures["shipped_to"] = shipped_to  # where verified copies are: the runner, another host
    return res


# ----------------------------------------------------------------------------- drill


def drill(run: Run, result: BackupResult) -> drills.Drill | None:
    """The restore drill (apply, unless drill: false): the proof that the snapshot can be restored."""
    s = settings(run)
    if not _apply(run):
        run.check("restore drill", result.target.node, "n/a", "plan takes no snapshot; apply drills the one it takes")
        return None
    if not result.verified or result.snapshot is None or result.verification is None:
        run.check("restore drill", result.target.node, "n/a", "no verified snapshot to drill")
        return None
    if not s.drill:
        run.check("restore drill", result.target.node, "warn", "disabled (drill: false): this backup is unproven")
        return None
    t = run.transport(result.target.node)
    assert result.verification.status is not None
    with run.recorder.in_step("restore drill"):
        try:
            d = drills.drill(t, result.target, result.snapshot.path, result.verification.status, s,
                         result.snapshot.source_keys_at_rev)
        except TargetUnreachable as exc:
            _fail(run, "restore drill", result.target.node, exc)
            return None
        for row in d.rows:
            run.check(*row)
        result.timings["drill_s"] = round(d.duration_s, 3)
        result.figures.update(d.figures)
        result.figures["drill"] = "passed: the snapshot restores" if d.ok else "FAILED"
        if d.ok:
            meta = snaps.sidecar(result.snapshot, result.verification,
                              {"source_keys_at_revision": result.snapshot.source_keys_at_rev, "kind": result.kind,
                               "drill": {"ok": True, "utc": disc.iso(disc.utc_now()), **d.figures}})
            snaps.write_sidecar(t, result.snapshot.path, meta)
        if s.gzip:  # the .gz (already shipped) stays; the raw .db was only needed for the drill
            t.run(f"rm -f {disc.q(result.snapshot.path)} {disc.q(result.snapshot.path)}.json", timeout=60)
    return d


# ----------------------------------------------------------------------------- retention


def locations(run: Run, target: disc.Target | None = None) -> list[store.Location]:
    """Every backup location: the etcd node's remote_dir, the runner's local_dir, copy_to_host's directory."""
    s = settings(run)
    node = target.node if target else node_name(run)
    out: list[store.Location] = [store.NodeDir(run.transport(node), s.remote_dir, s,
                                               target.status_argv if target else None)]
    ld = local_dir(run)
    if ld is not None:
        out.append(store.LocalDir(ld))
    if s.copy_to_host:
        out.append(store.NodeDir(run.transport(s.copy_to_host), s.copy_to_dir, s))
    return out


def retain(run: Run, result: BackupResult | None = None, pinned: Pinned | None = None,
           restored: RestorePlan | None = None) -> list[store.Retained]:
    """Retention in every backup location, after the kept snapshots are re-checked against their sidecars.

    Plan deletes nothing (what would go is drift). Apply moves snapshots that no longer match their sidecar to
    ``corrupt/`` and removes leftovers of interrupted saves; deleting needs confirm=<cluster>. Never deleted: the
    newest verified snapshot, the one pinned for a restore, the pre-restore snapshot. Nothing at all is deleted
    while a restore is pending or failed, or when this run's snapshot did not verify.
    """
    s = settings(run)
    node = result.target.node if result else node_name(run)
    apply = _apply(run)
    with run.recorder.in_step("retention"):
        if apply and s.restore.enabled and not (restored is not None and restored.ok):
            run.check("retention", node, "info", "skipped: a restore was asked and has not completed and verified; "
                                                 "nothing is deleted while a restore is pending")
            return []
        if apply and (result is None or not result.verified):
            run.check("retention", node, "info", "skipped: this run took no verified snapshot; nothing is deleted")
            return []
        protect: dict[str, str] = {}
        if pinned is not None:
            protect[pinned.name] = "pinned for this run's restore"
        if result is not None and result.kind == "pre-restore" and result.snapshot is not None:
            protect[result.snapshot.name] = "pre-restore safety snapshot"
        out: list[store.Retained] = []
        for loc in locations(run, result.target if result else None):
            try:
                r = store.review(loc, s, disc.utc_now(), protect, delete=apply and run.params.confirmed, tidy=apply)
            except (TargetUnreachable, OSError) as exc:
                _fail(run, "retention", loc.label, exc)
                continue
            out.append(r)
            _retention_checks(run, r, apply)
    return out


def _retention_checks(run: Run, r: store.Retained, apply: bool) -> None:
    for name, why in r.bad.items():
        run.check("snapshot intact", f"{r.location}/{name}", "fail",
                  why + (f"; moved to {r.moved[name]}" if name in r.moved
                         else "; not counted as a good snapshot, apply moves it to corrupt/ (never deletes it)"))
    if r.leftovers:
        sizes = ", ".join(f"{lo.name} ({lo.size / 1e6:.1f} MB)" for lo in r.leftovers)
        if r.removed:
            run.check("interrupted saves cleaned", r.location, "changed", f"removed {sizes}")
        else:
            run.check("interrupted saves cleaned", r.location, "drift", f"apply would remove {sizes}")
    checked = (f"; re-checked {len(r.checked)} kept snapshot(s) against their sidecars (size + sha256, the newest "
               "fully)" if r.checked else "")
    kept = f"{settings(run).retention.policy}: keeps {len(r.plan.keep)}"
    if r.deleted:
        run.check("retention", r.location, "changed", f"{kept}, deleted {len(r.deleted)} ({', '.join(r.deleted)})"
                  + checked)
    elif r.plan.delete:
        names = ", ".join(x.name for x in r.plan.delete)
        why = "apply with confirm=" + run.params.cluster_name if apply else "plan deletes nothing"
        run.check("retention", r.location, "drift", f"{kept}, would delete {len(r.plan.delete)} ({names}): {why}"
                  + checked)
    else:
        run.check("retention", r.location, "pass", f"{kept}, nothing to delete" + checked)


def retention_frame(retained: list[store.Retained]) -> pd.DataFrame:
    import pandas as pd

    rows = [dict(location=r.location, **row) for r in retained for row in r.rows()]
    return pd.DataFrame(rows, columns=["location", "snapshot", "time", "verified", "checked", "action", "reason"])


# ----------------------------------------------------------------------------- restore


@dataclass
class Pinned:
    """The snapshot a restore will use, resolved before this run writes anything."""

    node: str
    path: str
    revision: int
    sha256: str
    taken_utc: str

    @property
    def name(self) -> str:
        return Path(self.path).name

    def describe(self) -> str:
        return (f"{self.name} (revision {self.revision}, taken {self.taken_utc}, sha256 {self.sha256}) "
                f"on {self.node}")


@dataclass
class RestorePlan:
    kind: str  # systemd | kubeadm
    steps: list[rs.Step]
    snapshot: str
    new_dir: str
    members: list[rs.Member]
    expected_revision: int | None = None
    sha256: str = ""  # the pinned snapshot's, checked again right before the restore
    ok: bool = False  # every step ran and the restored etcd verified

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([s.row() for s in self.steps], columns=["host", "step", "command"])


def pin_restore(run: Run, target: disc.Target) -> Pinned | None:
    """The first step of a run with restore enabled: resolve ``restore.snapshot`` before anything is written.

    ``latest`` is the newest snapshot in remote_dir whose sidecar says verified and that still matches it
    (size, sha256, etcd's integrity hash, revision): one that existed before this run started, never the one
    this run takes. A path is verified the same way. None (and a failed check) when there is none.
    """
    s = settings(run)
    t = run.transport(target.node)
    with run.recorder.in_step("restore: pin the snapshot"):
        loc = store.NodeDir(t, s.remote_dir, s, target.status_argv)
        try:
            pinned = _pin(run, t, target, loc)
        except (TargetUnreachable, disc.EtcdError) as exc:
            _fail(run, "restore: snapshot pinned", target.node, exc)
            return None
        if pinned is None:
            return None
        run.check("restore: snapshot pinned", target.node, "pass", pinned.describe())
        run.figure("restore_snapshot", {"name": pinned.name, "revision": pinned.revision, "sha256": pinned.sha256,
                                        "taken_utc": pinned.taken_utc})
        print(f"restore will use {pinned.describe()}")
    return pinned


def _pin(run: Run, t: Transport, target: disc.Target, loc: store.NodeDir) -> Pinned | None:
    s = settings(run)
    if s.restore.snapshot != "latest":
        path = s.restore.snapshot
        v = snaps.verify(t, target, path, s, move_aside=False)
        if not v.ok or v.status is None:
            run.check("restore: snapshot pinned", target.node, "fail", f"{path}: " + "; ".join(v.problems))
            return None
        side = json.loads(t.read_file(f"{path}.json") or "{}")
        return Pinned(target.node, path, v.status.revision, v.sha256, str(side.get("created_utc", "unknown")))
    listing = loc.listing()
    found = [(when, e) for e in listing.entries.values()
             if e.verified and e.name.endswith(".db") and (when := snapshot_time(e.name)) is not None]
    for _, e in sorted(found, key=lambda x: (x[0], x[1].name), reverse=True):
        problem = loc.problem(e, full=True)
        if problem is None:
            side = e.sidecar or {}
            return Pinned(target.node, loc.path(e.name), int(side.get("revision") or 0), str(side.get("sha256")),
                          str(side.get("created_utc", "unknown")))
        run.check("snapshot intact", f"{loc.label}/{e.name}", "fail", f"{problem}: not used for the restore")
    run.check("restore: snapshot pinned", target.node, "fail",
              f"no verified snapshot in {target.node}:{s.remote_dir} from before this run: take a backup first")
    return None


def plan_restore(run: Run, target: disc.Target, pinned: Pinned | None = None) -> RestorePlan:
    """Read-only: the new data dir and every step on every member, for the pinned snapshot (pinned now when
    not given)."""
    s = settings(run)
    t = run.transport(target.node)
    pinned = pinned or pin_restore(run, target)
    if pinned is None:
        raise ValueError(f"no verified snapshot in {target.node}:{s.remote_dir}; take a backup first")
    snap = pinned.path
    if target.config is None:
        raise ValueError(f"{target.node}: neither {s.manifest} nor unit {s.unit} found: cannot restore")
    stamp = disc.utc_now().strftime("%Y%m%dT%H%M%SZ")
    new_dir = s.restore.data_dir or rs.new_data_dir(target.config.data_dir, disc.utc_now())
    token = f"etcd-restore-{stamp.lower()}"
    client_args = [f"--{k}={v}" for k, v in (("cacert", target.client.cacert), ("cert", target.client.cert),
                                              ("key", target.client.key)) if v]
    if target.config.kind == "manifest":
        members = []
        hosts = [h.name for h in run.params.hosts_with_role("control-plane")] or [target.node]
        for h in hosts:
            ht = run.transport(h)
            text = ht.read_file(s.manifest)
            if text is None:
                raise ValueError(f"{h}: {s.manifest} not found")
            cfg = cfgmod.parse_manifest(text, s.manifest)
            members.append(rs.Member(h, cfg, snap, text, s.manifest, cfg.local_client_url() or target.client.endpoint,
                                     client_args))
        steps = rs.plan_kubeadm(members, target.restore_argv(snap), target.client.etcdctl, new_dir, token, stamp,
                                str(Path(s.manifest).parent), s.restore.restart_kubelet, s.timeouts.healthy_s,
                                s.timeouts.restore_s)
        return RestorePlan("kubeadm", steps, snap, new_dir, members, sha256=pinned.sha256)
    unit_text = t.run(["systemctl", "cat", "--no-pager", s.unit], timeout=30, check=True).stdout
    paths = cfgmod.unit_paths(unit_text)
    candidates = [p for p in paths] + cfgmod.environment_files(unit_text)
    config_path, config_text = None, None
    for p in candidates:
        text = t.read_file(p)
        if text and (f"--data-dir={target.config.data_dir}" in text or f"--data-dir {target.config.data_dir}" in text
                     or f"ETCD_DATA_DIR={target.config.data_dir}" in text.replace('"', "")):
            config_path, config_text = p, text
    if config_path is None or config_text is None:
        raise ValueError(f"cannot find the file that sets etcd's data dir ({target.config.data_dir}) for unit {s.unit}")
    m = rs.Member(target.node, target.config, snap, config_text, config_path, target.client.endpoint, client_args)
    steps = rs.plan_systemd(m, target.restore_argv(snap), target.client.etcdctl, new_dir, token, s.unit, stamp,
                            s.timeouts.healthy_s, s.timeouts.restore_s)
    return RestorePlan("systemd", steps, snap, new_dir, [m], sha256=pinned.sha256)


def restore(run: Run, target: disc.Target, plan: RestorePlan | None = None) -> RestorePlan:
    """The real restore. Refused (DestructiveRefused, nothing touched) unless mode=apply and confirm=<cluster>."""
    run.require_confirm(f"etcd restore on {target.node}")
    s = settings(run)
    plan = plan or plan_restore(run, target)
    t = run.transport(target.node)
    with run.recorder.in_step("restore: verify the snapshot"):
        v = snaps.verify(t, target, plan.snapshot, s, move_aside=False)
        for row in v.rows("restore: snapshot verified"):
            run.check(*row)
        if not v.ok or v.status is None:
            return plan
        if plan.sha256 and v.sha256 != plan.sha256:
            run.check("restore: snapshot verified", target.node, "fail",
                      f"{plan.snapshot} changed since it was pinned (sha256 {v.sha256[:16]}…, pinned "
                      f"{plan.sha256[:16]}…): nothing restored")
            return plan
        plan.expected_revision = v.status.revision
    with run.recorder.in_step("restore"):
        for i, step in enumerate(plan.steps, 1):
            st = run.transport(step.host)
            try:
                if step.write_path is not None:
                    st.write_file(step.write_path, step.content or "", mode=step.mode)
                    ok, detail = True, f"wrote {step.write_path}"
                else:
                    r = st.run(step.command or "true", timeout=step.timeout)
                    ok = r.ok
                    detail = (r.stderr or r.stdout).strip()[-300:]
            except TargetUnreachable as exc:
                _fail(run, f"restore step {i}: {step.what}", step.host, exc)
                return plan
            run.check(f"restore step {i}: {step.what}", step.host, "changed" if ok else "fail", detail)
            if not ok:
                run.recorder.note(f"restore stopped at step {i}; the old data dir is untouched "
                                  f"({plan.members[0].config.data_dir})")
                return plan
    with run.recorder.in_step("restore: verify etcd"):
        plan.ok = verify_restored(run, target, plan)
    return plan


def verify_restored(run: Run, target: disc.Target, plan: RestorePlan) -> bool:
    """Health, member list and revision of the restored etcd; True when all agree."""
    s = settings(run)
    t = run.transport(target.node)
    from .etcdctl import parse_endpoint_status, parse_member_list

    r = t.run(target.client.argv("member", "list", "-w", "json", timeout_s=s.timeouts.command_s),
              timeout=s.timeouts.command_s + 20)
    members = parse_member_list(r.stdout) if r.ok else []
    want = sorted(m.config.name for m in plan.members)
    got = sorted(m["name"] for m in members)
    run.check("restored: member list", target.node, "pass" if got == want else "fail",
              f"members {', '.join(got) or '(none)'}; expected {', '.join(want)}")
    r = t.run(target.client.argv("endpoint", "status", "-w", "json", timeout_s=s.timeouts.command_s),
              timeout=s.timeouts.command_s + 20)
    if not r.ok:
        run.check("restored: revision", target.node, "fail", (r.stderr or r.stdout).strip()[-300:])
        return False
    st = parse_endpoint_status(r.stdout)[0]
    ok = plan.expected_revision is not None and st.revision >= plan.expected_revision
    run.check("restored: revision", target.node, "pass" if ok else "fail",
              f"revision {st.revision} (snapshot {plan.expected_revision}); data dir now {plan.new_dir}; the old "
              f"one is untouched for a rollback")
    return ok and got == want


# ----------------------------------------------------------------------------- figures + history


def record_figures(run: Run, result: BackupResult) -> None:
    for k, v in result.figures.items():
        run.figure(k, v)
    for k, v in result.timings.items():
        run.figure(k, v)
    if result.snapshot is not None:  # plan takes none: no "verified: false" for dashboards to misread
        run.figure("verified", result.verified)


def reports_dir(run: Run | None = None) -> Path:
    """This chapter's reports directory: the one `runbooks run --out` writes to, else reports/etcd-backup."""
    if run is not None and run.reports_dir is not None:
        return run.reports_dir
    return _project_root() / "reports" / CHAPTER


def _point(started_utc: object, fig: dict[str, Any], status: object) -> dict[str, Any]:
    import pandas as pd

    return {"time": pd.to_datetime(started_utc, utc=True, errors="coerce"),
            "size_mb": (fig.get("size_bytes") or 0) / 1e6, "keys": fig.get("keys") or fig.get("total_keys"),
            "revision": fig.get("revision"),
            "duration_s": sum(float(fig.get(k) or 0) for k in ("save_s", "verify_s", "ship_s")),
            "drill_s": fig.get("drill_s"), "status": status}


def history(source: Run | Path | None = None) -> pd.DataFrame:
    """Runs' figures as a time series: earlier runs (reports/etcd-backup/*.json), then this run's
    snapshot when ``source`` is a run that took one (status "this run"); empty when there are none."""
    import pandas as pd

    root = source if isinstance(source, Path) else reports_dir(source)
    current = source if source is not None and not isinstance(source, Path) else None
    rows = []
    for p in sorted(root.glob("*.json")) if root.is_dir() else []:
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        fig = data.get("figures") if isinstance(data, dict) else None
        if not isinstance(fig, dict) or "size_bytes" not in fig:
            continue
        if current is not None and data.get("started_utc") == current.started_utc:
            continue  # this run's own report, written again below from its live figures
        rows.append(_point(data.get("started_utc"), fig, data.get("status")))
    if current is not None and "size_bytes" in current.figures:
        rows.append(_point(current.started_utc, current.figures, "this run"))
    return pd.DataFrame(rows, columns=["time", "size_mb", "keys", "revision", "duration_s", "drill_s", "status"])


def plot_history(df: pd.DataFrame) -> Any:
    """Snapshot size, key count and backup duration over time (a matplotlib figure, or None): a
    labelled UTC time axis, this run's point marked apart, the legend below the plots."""
    if df.empty:
        return None
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    df = df.sort_values("time")
    now = df[df["status"] == "this run"]
    first = df["time"].iloc[0]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
    for ax, col, label in zip(axes, ("size_mb", "keys", "duration_s"),
                              ("snapshot size (MB)", "keys", "save + verify + ship (s)"), strict=True):
        ax.plot(df["time"], df[col], marker="o", color="#0969da", label="runs")
        if not now.empty:
            ax.plot(now["time"], now[col], linestyle="none", marker="*", markersize=14, color="#bf8700",
                    markeredgecolor="#24292f", zorder=5, label="this run")
        ax.set_title(label)
        ax.set_ylabel(label)
        ax.set_xlabel(f"run start (UTC), from {first:%Y-%m-%d %H:%M}")  # the date the ticks leave out
        locator = mdates.AutoDateLocator(tz=dt.UTC)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=dt.UTC, show_offset=False))
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(True, alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=8)
    return fig


def snapshot_files(names: list[str]) -> list[str]:
    return [n for n in names if n.endswith(SUFFIXES)]


def utc_now() -> dt.datetime:
    return disc.utc_now()
