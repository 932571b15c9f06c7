"""Retention policies (pure)."""

from __future__ import annotations

import datetime as dt

import pytest

from runbooks_lib.chapters.etcd_backup import retention as r

NOW = dt.datetime(2025, 3, 20, 12, 0, 0, tzinfo=dt.UTC)


def snaps(ages_h: list[float], verified: set[int] | None = None) -> list[r.Snap]:
    out = []
    for i, h in enumerate(ages_h):
        t = (NOW - dt.timedelta(hours=h)).replace(microsecond=0)
        out.append(r.Snap(r.snapshot_name("prod", t), t, i in (verified if verified is not None else {i})))
    return out


def test_names_roundtrip() -> None:
    name = r.snapshot_name("prod", NOW)
    assert name == "etcd-snapshot-prod-20250320T120000Z.db"
    assert r.snapshot_time(name) == NOW
    assert r.snapshot_time(name + ".gz") == NOW
    assert r.snapshot_time("etcd-snapshot-prod-20250320T120000Z.db.json") is None
    assert r.snapshot_time("other.db") is None


def test_count_keeps_exactly_the_n_newest_after_five_runs() -> None:
    s = snaps([4, 3, 2, 1, 0])
    p = r.plan_count(s, 3)
    assert [x.name for x in p.keep] == [s[4].name, s[3].name, s[2].name]
    assert sorted(x.name for x in p.delete) == sorted([s[0].name, s[1].name])
    rows = p.rows()
    assert [row["action"] for row in rows] == ["keep", "keep", "keep", "delete", "delete"]


def test_count_never_deletes_newest_verified() -> None:
    s = snaps([5, 4, 3, 2, 1, 0], verified={0})  # only the oldest one is verified
    p = r.plan_count(s, 2)
    kept = {x.name for x in p.keep}
    assert s[0].name in kept and len(kept) == 3
    assert "never deleted" in p.reasons[s[0].name]


def test_count_validation() -> None:
    with pytest.raises(ValueError):
        r.plan_count([], 0)
    with pytest.raises(ValueError):
        r.plan([], "weird", 3, NOW)


def test_exponential_buckets() -> None:
    # every 15 minutes for 10 days
    ages = [i * 0.25 for i in range(10 * 24 * 4)]
    s = snaps(ages)
    p = r.plan_exponential(s, NOW)
    kept = {x.name: x for x in p.keep}
    last_hour = [x for x in s if NOW - x.time <= dt.timedelta(hours=1)]
    assert all(x.name in kept for x in last_hour)  # 5 of them (0, 15, 30, 45, 60 minutes)
    reasons = [p.reasons[n] for n in kept]
    hourly = sum(1 for x in reasons if x.startswith("hourly"))
    daily = sum(1 for x in reasons if x.startswith("daily"))
    weekly = sum(1 for x in reasons if x.startswith("weekly"))
    assert 22 <= hourly <= 24
    assert 6 <= daily <= 7
    assert 1 <= weekly <= 2
    assert len(p.keep) + len(p.delete) == len(s)
    assert max(NOW - x.time for x in p.keep) <= dt.timedelta(days=10)


def test_exponential_drops_older_than_four_weeks_but_not_newest_verified() -> None:
    s = snaps([24 * 40, 24 * 35, 24 * 30], verified={2})
    p = r.plan_exponential(s, NOW)
    assert [x.name for x in p.keep] == [s[2].name]
    assert "never deleted" in p.reasons[s[2].name]
    assert len(p.delete) == 2


def test_snaps_from_listing() -> None:
    names = ["etcd-snapshot-a-20250320T110000Z.db", "etcd-snapshot-a-20250320T100000Z.db.gz", "notes.txt",
             "etcd-snapshot-a-20250320T110000Z.db.json"]
    got = r.snaps_from_listing(names, {"etcd-snapshot-a-20250320T110000Z.db"})
    assert [(x.name, x.verified) for x in got] == [("etcd-snapshot-a-20250320T110000Z.db", True),
                                                   ("etcd-snapshot-a-20250320T100000Z.db.gz", False)]
