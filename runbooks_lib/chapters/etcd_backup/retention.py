"""Retention: which snapshots to keep (pure functions over names and times).

Two policies: ``count`` keeps the N newest; ``exponential`` (Gardener's etcd-backup-restore
garbage collection) keeps every snapshot of the last hour, the newest of each hour for 24 hours,
of each day for 7 days and of each week for 4 weeks. Whatever the policy, the newest
*verified* snapshot is never deleted, nor any snapshot the caller protects (the one pinned for a
restore, the pre-restore safety snapshot); ``name.db`` and ``name.db.gz`` count as one name there.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

PREFIX = "etcd-snapshot-"
_STAMP = re.compile(r"(\d{8}T\d{6}Z)")
SUFFIXES = (".db", ".db.gz")


def snapshot_name(cluster: str, when: dt.datetime) -> str:
    """``etcd-snapshot-<cluster>-<UTC YYYYmmddTHHMMSSZ>.db``."""
    return f"{PREFIX}{cluster}-{when.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}.db"


def snapshot_time(name: str) -> dt.datetime | None:
    """The UTC time in a snapshot's name, or None when the name is not ours."""
    if not name.startswith(PREFIX) or not name.endswith(SUFFIXES):
        return None
    m = _STAMP.search(name)
    if not m:
        return None
    return dt.datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Snap:
    name: str
    time: dt.datetime
    verified: bool = False


@dataclass
class RetentionPlan:
    keep: list[Snap] = field(default_factory=list)
    delete: list[Snap] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)

    def rows(self) -> list[dict[str, str]]:
        """One row per snapshot, newest first: name, time, verified, action, reason."""
        out = []
        for s in sorted(self.keep + self.delete, key=lambda s: s.time, reverse=True):
            out.append({"snapshot": s.name, "time": s.time.strftime("%Y-%m-%d %H:%M:%SZ"),
                        "verified": "yes" if s.verified else "no",
                        "action": "keep" if s in self.keep else "delete", "reason": self.reasons.get(s.name, "")})
        return out


def plan_count(snaps: list[Snap], keep: int, protect: dict[str, str] | None = None) -> RetentionPlan:
    """Keep the ``keep`` newest (and the newest verified one, and the protected ones)."""
    if keep < 1:
        raise ValueError("keep must be >= 1")
    ordered = sorted(snaps, key=lambda s: (s.time, s.name), reverse=True)
    reasons = {s.name: f"one of the {keep} newest" for s in ordered[:keep]}
    return _finish(ordered, reasons, protect)


def plan_exponential(snaps: list[Snap], now: dt.datetime, protect: dict[str, str] | None = None) -> RetentionPlan:
    """All of the last hour; newest per hour for 24 h, per day for 7 d, per ISO week for 4 weeks."""
    ordered = sorted(snaps, key=lambda s: (s.time, s.name), reverse=True)
    reasons: dict[str, str] = {}
    taken: set[tuple[str, object]] = set()
    for s in ordered:  # newest first: the first one in a bucket is the one kept
        age = now - s.time
        if age < dt.timedelta(0):
            reasons[s.name] = "in the future (clock skew?): kept"
            continue
        if age <= dt.timedelta(hours=1):
            reasons[s.name] = "last hour: all kept"
            continue
        for limit, label, bucket in (
            (dt.timedelta(hours=24), "hourly", s.time.strftime("%Y%m%d%H")),
            (dt.timedelta(days=7), "daily", s.time.strftime("%Y%m%d")),
            (dt.timedelta(weeks=4), "weekly", f"{s.time.isocalendar()[0]}-W{s.time.isocalendar()[1]:02d}"),
        ):
            if age <= limit:
                if (label, bucket) not in taken:
                    taken.add((label, bucket))
                    reasons[s.name] = f"{label}: newest of {bucket}"
                break
    return _finish(ordered, reasons, protect)


def _finish(ordered: list[Snap], reasons: dict[str, str], protect: dict[str, str] | None = None) -> RetentionPlan:
    newest_verified = next((s for s in ordered if s.verified), None)
    if newest_verified is not None and newest_verified.name not in reasons:
        reasons[newest_verified.name] = "newest verified snapshot: never deleted"
    for s in ordered:
        why = (protect or {}).get(s.name.removesuffix(".gz"))
        if why:
            reasons[s.name] = f"{why}: never deleted" + (f" (also {reasons[s.name]})" if s.name in reasons else "")
    plan = RetentionPlan(reasons=dict(reasons))
    for s in ordered:
        if s.name in reasons:
            plan.keep.append(s)
        else:
            plan.delete.append(s)
            plan.reasons[s.name] = "outside the retention policy"
    return plan


def plan(snaps: list[Snap], policy: str, keep: int, now: dt.datetime,
         protect: dict[str, str] | None = None) -> RetentionPlan:
    """The policy's plan; ``protect``: snapshot name (``.db``) -> why it must stay whatever the policy."""
    if policy == "count":
        return plan_count(snaps, keep, protect)
    if policy == "exponential":
        return plan_exponential(snaps, now, protect)
    raise ValueError(f"unknown retention policy {policy!r}")


def snaps_from_listing(names: list[str], verified: set[str]) -> list[Snap]:
    """Our snapshot files among ``names`` (a directory listing); ``verified``: names with a verified sidecar."""
    out = []
    for n in names:
        t = snapshot_time(n)
        if t is not None:
            out.append(Snap(n, t, n in verified))
    return out
