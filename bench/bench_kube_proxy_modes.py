#!/usr/bin/env python3
"""Benchmark of chapter 03 on this machine: the default grid, as root, in network namespaces.

Prints the table (p50 per mode per N, programming times), the per-mode checks, the shape findings
and the total time; exits 1 when a mode errored at any N (unavailable IPVS is not an error), when
the shape differs from expectations (iptables p50 at the largest N ≥ 1.5 × at N=100, nftables
within ±25 %), when anything is left behind, or when the default grid takes more than 10 minutes.

    .venv/bin/python bench/bench_kube_proxy_modes.py [--grid 10,100,1000] [--connections 1000]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from runbooks_lib.chapters.kube_proxy_modes import mode_checks, print_progress, run_benchmark, shape_findings
from runbooks_lib.chapters.kube_proxy_modes.settings import DEFAULT_GRID, Settings
from runbooks_lib.transport import LocalTransport

BUDGET_S = 600.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", default=",".join(map(str, DEFAULT_GRID)))
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--json", help="write the raw documents here")
    a = ap.parse_args()
    settings = Settings(grid=[int(x) for x in a.grid.split(",")], connections=a.connections)
    t0 = time.monotonic()
    result = run_benchmark(LocalTransport("local"), settings, progress=print_progress)
    total = time.monotonic() - t0
    frame = result.frame()
    cols = ["n", "mode", "status", "program_s", "incremental_s", "incremental_procs", "p50_us", "p90_us", "p99_us",
            "connections", "errors"]
    print()
    print(frame[cols].to_string(index=False))
    for mode, reason in result.unavailable().items():
        print(f"\n{mode}: unavailable: {reason}")
    failed = False
    print()
    for check, status, detail in mode_checks(result.documents) + shape_findings(frame):
        print(f"[{status}] {check}: {detail}")
        failed |= status not in ("pass", "n/a")
    if result.errors:
        print("errors:", *result.errors, sep="\n  ")
        failed = True
    print(f"leftovers: {result.leftovers or 'none'}")
    failed |= bool(result.leftovers)
    print(f"total time: {total:.1f} s (budget {BUDGET_S:.0f} s for the default grid)")
    if settings.grid == DEFAULT_GRID and total > BUDGET_S:
        failed = True
    if a.json:
        with open(a.json, "w", encoding="utf-8") as fh:
            json.dump({"documents": result.documents, "probe": result.probe, "total_s": total,
                       "leftovers": result.leftovers}, fh,
                      indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
