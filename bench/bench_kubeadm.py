"""Chapter 02 plan on 3 and 12 lab nodes: wall time and the runner's CPU seconds per node.

Brings up labs `kbench3` and `kbench12` (taken down afterwards unless RUNBOOKS_KEEP_LAB is set) and runs
the chapter's plan (config, preflight over SSH, PKI audit, verify via the lab API) on each: one warm-up
run (not counted), then the measured one.
    .venv/bin/python bench/bench_kubeadm.py [--nodes 3 12]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from runbooks_lib.chapters import kubeadm
from runbooks_lib.lab import lab
from runbooks_lib.run import Run
from runbooks_lib.verdict import verdict_for


def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def measure(count: int) -> dict[str, float | str]:
    name = f"kbench{count}"
    started = not lab.is_up(name)
    state = lab.up(name, nodes=count)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            params = Path(tmp) / "p.yaml"
            params.write_text(f"cluster_name: {name}\ninventory: {state.inventory}\n"
                              f"ssh: {{known_hosts: {state.known_hosts}}}\nkube: {{kubeconfig: {state.kubeconfig}}}\n")
            warm = Run.start("kubeadm", str(params), [], str(Path(tmp) / "warm"))
            kubeadm.plan(warm)  # not counted: one-time imports (kubernetes client, jsonschema) and SSH setup
            warm.finish()
            run = Run.start("kubeadm", str(params), [], str(Path(tmp) / "run"))
            c0, t0 = cpu_s(), time.monotonic()
            kubeadm.plan(run)
            wall, cpu = time.monotonic() - t0, cpu_s() - c0
            run.finish()
            return {"nodes": count, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                    "cpu_s_per_node": round(cpu / count, 3), "verdict": verdict_for(run.checks)}
    finally:
        if started and not os.environ.get("RUNBOOKS_KEEP_LAB"):
            lab.down(name)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, nargs="+", default=[3, 12])
    for count in ap.parse_args().nodes:
        print(measure(count), flush=True)


if __name__ == "__main__":
    main()
