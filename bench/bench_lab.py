"""Lab benchmark: `lab up` time with a cached image (3 nodes) and the SSH fan-out ratio (12 vs 1 node).

Run as root: /tmp/venv/bin/python bench/bench_lab.py [--reps N]. Uses its own lab name (``bench``)
and takes it down at the end. Targets (issue 3): up <= 30 s; fan-out ratio <= 1.5.
"""

from __future__ import annotations

import argparse
import statistics
import time

from runbooks_lib.evidence import Recorder
from runbooks_lib.fleet import Fleet
from runbooks_lib.lab import down, up
from runbooks_lib.lab.engine import Podman
from runbooks_lib.lab.image import ensure_image
from runbooks_lib.lab.lab import state_dir

NAME = "bench"
CMD = "sleep 1; hostname"


def _fan_out(fleet: Fleet, reps: int) -> tuple[float, list[float]]:
    """(first call incl. SSH connects, later calls on open connections) wall times in seconds."""
    times = []
    for _ in range(reps + 1):
        t0 = time.monotonic()
        out = fleet.run(CMD, timeout=30, sudo=False)
        times.append(time.monotonic() - t0)
        bad = [h for h, o in out.items() if not (o.ok and o.value is not None and o.value.ok)]
        if bad:
            raise SystemExit(f"fan-out failed on {bad}")
    return times[0], times[1:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    ensure_image(Podman(state_dir(NAME)), "debian")  # cached image: not part of the timing
    try:
        down(NAME)
        t0 = time.monotonic()
        up(NAME, nodes=3)
        up3 = time.monotonic() - t0
        down(NAME)
        print(f"lab up, 3 nodes, cached image: {up3:.1f} s (target <= 30 s)")

        t0 = time.monotonic()
        state = up(NAME, nodes=12)
        print(f"lab up, 12 nodes, cached image: {time.monotonic() - t0:.1f} s")
        rec = Recorder()
        one = Fleet([state.transport(state.nodes[0].hostname, recorder=rec)], forks=20)
        many = state.fleet(recorder=rec, forks=20)
        try:
            cold1, warm1 = _fan_out(one, args.reps)
            cold12, warm12 = _fan_out(many, args.reps)
        finally:
            one.close()
            many.close()
        w1, w12 = statistics.median(warm1), statistics.median(warm12)
        print(f"fan-out `{CMD}`: 1 node {w1:.2f} s, 12 nodes {w12:.2f} s (median of {args.reps}, open connections)")
        print(f"fan-out ratio 12/1 = {w12 / w1:.2f} (target <= 1.5; Ansible's 5 forks would give ~2.4)")
        print(f"first call incl. SSH connect: 1 node {cold1:.2f} s, 12 nodes {cold12:.2f} s, "
              f"ratio {cold12 / cold1:.2f}")
    finally:
        down(NAME)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
