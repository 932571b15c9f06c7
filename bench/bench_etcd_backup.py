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

    /tmp/venv/bin/python bench/bench_etcd_backup.py [--mb 100] [--rounds 9]
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import tempfile
import time
from pathlib import Path

from runbooks_lib.chapters.etcd_backup import node as n
from runbooks_lib.chapters.etcd_backup.localetcd import LocalEtcd
from runbooks_lib.evidence import Recorder
from runbooks_lib.lab.etcd import EtcdGateway
from runbooks_lib.transport import LocalTransport


def fill(e: LocalEtcd, mb: int, value_kb: int = 100) -> int:
    gw = EtcdGateway("127.0.0.1", e.pki, port=e.client_port, timeout=30)
    count = mb * 1024 // value_kb
    try:
        for i in range(count):
            gw._post("/v3/kv/put", {"key": base64.b64encode(f"/bench/{i:06d}".encode()).decode(),
                                    "value": base64.b64encode(os.urandom(value_kb * 1024)).decode()})
    finally:
        gw.close()
    return count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=100, help="data to put into etcd (MB, bounded to 400)")
    ap.add_argument("--rounds", type=int, default=9, help="alternating rounds (bounded to 10)")
    args = ap.parse_args()
    mb, rounds = min(max(args.mb, 1), 400), min(max(args.rounds, 1), 10)
    with tempfile.TemporaryDirectory(prefix="bench-etcd-", dir="/var/tmp") as tmp:
        root = Path(tmp)
        e = LocalEtcd(root).start()
        try:
            t0 = time.monotonic()
            keys = fill(e, mb)
            print(f"filled {keys} keys x 100 KB in {time.monotonic() - t0:.1f}s")
            t = LocalTransport("local", recorder=Recorder())
            s = e.settings(remote_dir=str(root / "chapter"))
            target = n.discover(t, s)
            bare_times: list[float] = []
            chapter_times: list[float] = []
            verify_times: list[float] = []
            last: tuple[n.Snapshot, n.Verification] | None = None

            def bare(r: int) -> None:
                out = root / "bare" / f"bare-{r}.db"
                out.parent.mkdir(exist_ok=True)
                b0 = time.monotonic()
                res = t.run(target.client.argv("snapshot", "save", str(out), timeout_s=600), timeout=900)
                bare_times.append(time.monotonic() - b0)
                assert res.ok, res.stderr
                out.unlink()

            def chapter() -> None:
                nonlocal last
                c0 = time.monotonic()
                pf = n.preflight(t, target, s, space_dir=s.remote_dir)
                assert pf.free_bytes is not None
                rows = n.space_rows(int(pf.status.db_size * s.free_space_factor), {"node": pf.free_bytes})
                assert all(r[2] == "pass" for r in rows), rows
                snap = n.save(t, target, s, "bench")
                v = n.verify(t, target, snap.path, s, count_source_keys=True, known=snap.stream, inline=snap.inline)
                assert v.digests == "stream", snap.stream_note
                assert v.ok and v.status is not None and v.source_keys is not None, v.problems
                snap.source_keys_at_rev = v.source_keys
                n.write_sidecar(t, snap.path, n.sidecar(snap, v))
                chapter_times.append(time.monotonic() - c0)
                verify_times.append(v.duration_s)
                if last is not None:
                    Path(last[0].path).unlink()
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
            d = n.drill(t, target, snap.path, last[1].status, s, snap.source_keys_at_rev)
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
        finally:
            e.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
