"""Benchmark: system-init plan wall time over a 3-node and a 12-node lab.

Targets (issue 4): 3 nodes <= 20 s; 12 nodes <= 1.5 x the 3-node time. Each size is measured
on a fresh lab (named ``sysinit-bench``, taken down afterwards), median of ``--repeat`` plans,
each plan opening its own SSH connections (as a new run does).

    python bench/bench_system_init.py [--repeat 3] [--sizes 3 12]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from runbooks_lib.chapters import system_init
from runbooks_lib.lab import lab
from runbooks_lib.run import Run

LAB = "sysinit-bench"


def plan_once(params: Path) -> tuple[float, int]:
    run = Run.start("system-init", str(params), [], tempfile.mkdtemp(prefix="bench-sysinit-"))
    t0 = time.monotonic()
    result = system_init.survey(run)
    wall = time.monotonic() - t0
    run.fleet().close()
    errors = sum(1 for n in result.nodes.values() if n.error)
    return wall, errors


def measure(nodes: int, repeat: int) -> float:
    lab.down(LAB)
    state = lab.up(LAB, nodes=nodes)
    try:
        params = Path(tempfile.mkdtemp(prefix="bench-sysinit-")) / "p.yaml"
        params.write_text(f"cluster_name: {LAB}\ninventory: {state.inventory}\n"
                          f"ssh: {{known_hosts: {state.known_hosts}}}\n")
        walls = []
        for _ in range(repeat):
            wall, errors = plan_once(params)
            if errors:
                raise SystemExit(f"{errors} node(s) failed during the plan")
            walls.append(wall)
        print(f"  {nodes:>2} nodes: plan wall {', '.join(f'{w:.2f}' for w in walls)} s "
              f"(median {statistics.median(walls):.2f} s)")
        return statistics.median(walls)
    finally:
        lab.down(LAB)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs=2, default=[3, 12], metavar=("SMALL", "LARGE"))
    args = ap.parse_args()
    small, large = args.sizes
    print("system-init plan (read-only survey: one composite command per node, nodes in parallel)")
    t_small = measure(small, args.repeat)
    t_large = measure(large, args.repeat)
    ratio = t_large / t_small if t_small else float("inf")
    ok_small, ok_ratio = t_small <= 20.0, ratio <= 1.5
    print(f"{small} nodes: {t_small:.2f} s (target <= 20 s: {'ok' if ok_small else 'MISSED'})")
    print(f"{large} nodes: {t_large:.2f} s = {ratio:.2f} x (target <= 1.5 x: {'ok' if ok_ratio else 'MISSED'})")
    return 0 if ok_small and ok_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
