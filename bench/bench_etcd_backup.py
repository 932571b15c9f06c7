"""Benchmark: the chapter's backup + verify vs a bare `etcdctl snapshot save` of the same ~100 MB etcd.

Starts a real etcd 3.4 with client TLS on 127.0.0.1 (temp dir, free ports), fills it with
incompressible 100 KB values to about --mb MB, then alternates, --rounds times:
  bare:    etcdctl snapshot save (TLS)
  chapter: preflight with the free-space check (one command) + snapshot save with the sha256 and
           integrity hash streamed during the save, snapshot status and the live key count run while
           etcdctl fsyncs (one command) + verify (stat: file unchanged) + sidecar
both through the same transport (each command in its own session, as an operator's shell would be;
etcd runs apart), in ABBA order, and reports the median of the per-round ratios (target <= 1.2;
the ratio of medians and of the fastest runs too) and the restore drill's time. Stops etcd
and removes the temp dir at the end, whatever happens.

With --lab the same runs against the real etcd of a 1-node lab, over SSH with sudo (each side then
pays its SSH round trips; the chapter has four commands to the bare save's one).

    /tmp/venv/bin/python bench/bench_etcd_backup.py [--mb 100] [--rounds 9] [--lab]
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import tempfile
import time
from pathlib import Path

from runbooks_lib.chapters import etcd_backup as eb
from runbooks_lib.chapters.etcd_backup import snapshot as sn
from runbooks_lib.chapters.etcd_backup import target as tg
from runbooks_lib.chapters.etcd_backup import throwaway as tw
from runbooks_lib.chapters.etcd_backup.settings import Settings
from runbooks_lib.evidence import Recorder
from runbooks_lib.lab.etcd import EtcdGateway
from runbooks_lib.lab.localetcd import LocalEtcd
from runbooks_lib.run import Run
from runbooks_lib.transport import LocalTransport, Transport

LAB = "etcdbench"


def fill(gw: EtcdGateway, mb: int, value_kb: int = 100) -> int:
    """Put ``mb`` MB of incompressible values under /bench/ (then closes ``gw``)."""
    count = mb * 1024 // value_kb
    try:
        for i in range(count):
            gw._post("/v3/kv/put", {"key": base64.b64encode(f"/bench/{i:06d}".encode()).decode(),
                                    "value": base64.b64encode(os.urandom(value_kb * 1024)).decode()})
    finally:
        gw.close()
    return count


def measure(t: Transport, target: tg.Target, s: Settings, rounds: int) -> None:
    """Both sides through ``t``, in ABBA order; prints the figures (see the module docstring)."""
    t.run(["mkdir", "-p", s.remote_dir], timeout=60, check=True)
    bare_times: list[float] = []
    chapter_times: list[float] = []
    verify_times: list[float] = []
    last: tuple[sn.Snapshot, sn.Verification] | None = None

    def bare(r: int) -> None:
        out = f"{s.remote_dir}/bare-{r}.db"
        b0 = time.monotonic()
        res = t.run(target.client.argv("snapshot", "save", out, timeout_s=600), timeout=900)
        bare_times.append(time.monotonic() - b0)
        assert res.ok, res.stderr
        t.run(["rm", "-f", out], timeout=60, check=True)

    def chapter() -> None:
        nonlocal last
        c0 = time.monotonic()
        pf = tg.preflight(t, target, s, space_dir=s.remote_dir, create=True)  # as apply does
        assert pf.free_bytes is not None
        rows = tg.space_rows(int(pf.status.db_size * s.free_space_factor), {"node": pf.free_bytes})
        assert all(r[2] == "pass" for r in rows), rows
        snap = sn.save(t, target, s, "bench")
        v = sn.verify(t, target, snap.path, s, count_source_keys=True, known=snap.stream, inline=snap.inline)
        assert v.digests == "stream", snap.stream_note
        assert v.ok and v.status is not None and v.source_keys is not None, v.problems
        snap.source_keys_at_rev = v.source_keys
        sn.write_sidecar(t, snap.path, sn.sidecar(snap, v))
        chapter_times.append(time.monotonic() - c0)
        verify_times.append(v.duration_s)
        if last is not None:
            t.run(["rm", "-f", last[0].path, last[0].path + ".json"], timeout=60, check=True)
        last = (snap, v)

    for r in range(rounds):  # ABBA: the machine's slow drift hits both sides alike
        if r % 2 == 0:
            bare(r)
            chapter()
        else:
            chapter()
            bare(r)
    assert last is not None and last[1].status is not None
    snap, v = last
    d = tw.drill(t, target, snap.path, last[1].status, s, snap.source_keys_at_rev)
    assert d.ok, d.rows
    pairs = [c / b for b, c in zip(bare_times, chapter_times, strict=True)]
    bare_m, chap_m = statistics.median(bare_times), statistics.median(chapter_times)
    print(f"etcd db size: {v.size / 1e6:.1f} MB snapshot, revision {last[1].status.revision}, "
          f"{snap.source_keys_at_rev} keys")
    print(f"bare etcdctl snapshot save: median {bare_m:.2f}s  ({', '.join(f'{x:.2f}' for x in bare_times)})")
    print(f"chapter backup + verify:    median {chap_m:.2f}s  ({', '.join(f'{x:.2f}' for x in chapter_times)})"
          f"  of which verify median {statistics.median(verify_times):.3f}s")
    print(f"per-round ratios: {', '.join(f'{x:.2f}' for x in pairs)}")
    print(f"ratio of medians {chap_m / bare_m:.2f}; ratio of fastest runs "
          f"{min(chapter_times) / min(bare_times):.2f}")
    print(f"ratio chapter / bare (median of the {rounds} per-round ratios): {statistics.median(pairs):.2f}"
          "  (target <= 1.2)")
    print(f"restore drill: {d.duration_s:.2f}s (restore {d.figures.get('drill_restore_s')}s, "
          f"start {d.figures.get('drill_start_s')}s)")
    t.run(["rm", "-f", snap.path, snap.path + ".json"], timeout=60, check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=100, help="data to put into etcd (MB, bounded to 400)")
    ap.add_argument("--rounds", type=int, default=9, help="alternating rounds (bounded to 10)")
    ap.add_argument("--lab", action="store_true",
                    help=f"use the etcd of a fresh 1-node lab {LAB!r} over SSH (taken down at the end)")
    args = ap.parse_args()
    mb, rounds = min(max(args.mb, 1), 400), min(max(args.rounds, 1), 10)
    with tempfile.TemporaryDirectory(prefix="bench-etcd-", dir="/var/tmp") as tmp:
        root = Path(tmp)
        if args.lab:
            from runbooks_lib.lab import down, is_up, up

            if is_up(LAB):  # the bench's own lab, left over: start from a fresh etcd
                down(LAB)
            st = up(LAB, nodes=1)
            try:
                gw = EtcdGateway(st.control_plane.ip, st.pki, timeout=30)
                print(f"filled {fill(gw, mb)} keys x 100 KB")
                params = root / "bench.yaml"
                params.write_text(f"cluster_name: {LAB}\ninventory: {st.inventory}\n"
                                  f"ssh:\n  known_hosts: {st.known_hosts}\n  command_timeout: 900\n"
                                  "etcd_backup:\n  remote_dir: /var/backups/etcd-bench\n")
                run = Run.start("etcd-backup", str(params), [], str(root / "run"))
                target = eb.discover(run)
                assert target is not None
                print(f"lab {LAB}: etcd on {target.node} over SSH ({target.client.endpoint})")
                measure(run.transport(target.node), target, run.params.etcd_backup, rounds)
            finally:
                down(LAB)
            return 0
        e = LocalEtcd(root).start()
        try:
            gw = EtcdGateway("127.0.0.1", e.pki, port=e.client_port, timeout=30)
            t0 = time.monotonic()
            keys = fill(gw, mb)
            print(f"filled {keys} keys x 100 KB in {time.monotonic() - t0:.1f}s")
            t = LocalTransport("local", recorder=Recorder())
            s = e.settings(remote_dir=str(root / "chapter"))
            measure(t, tg.discover(t, s), s, rounds)
        finally:
            e.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
