"""Chapter 06 node-level storage trials on 3 lab nodes at the chapter's defaults, all nodes at once.

Brings up lab `obench` (taken down afterwards unless RUNBOOKS_KEEP_LAB is set), runs the fio trials in
apply mode (fio installed from the distro where missing, as apply does) and prints the total trial time
(target: at most 3 minutes for 3 nodes) and, per node, 4k randread/randwrite IOPS with p50/p99, 128k
bandwidth and the etcd-style fdatasync p99.
    .venv/bin/python bench/bench_openebs_trials.py [--nodes 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from runbooks_lib.chapters.openebs_storage import chapter
from runbooks_lib.lab import lab
from runbooks_lib.run import Run

LAB = "obench"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=3)
    args = ap.parse_args()
    started = not lab.is_up(LAB)
    state = lab.up(LAB, nodes=args.nodes)
    try:
        with tempfile.TemporaryDirectory() as d:
            params = Path(d) / "obench.yaml"
            params.write_text(f"cluster_name: {LAB}\ninventory: {state.inventory}\n"
                              f"ssh: {{known_hosts: {state.known_hosts}}}\nkube: {{kubeconfig: {state.kubeconfig}}}\n")
            run = Run.start("openebs-storage", str(params), ["mode=apply"], str(Path(d) / "run"))
            t0 = time.monotonic()
            chapter.fio_trials(run, run.params.openebs_storage)
            total = time.monotonic() - t0
            print(f"total trial time, {args.nodes} nodes at once: {total:.1f} s (target <= 180 s)")
            for host, fig in sorted((run.figures.get("fio") or {}).items()):
                jobs = fig.get("jobs") or {}
                rr, rw = jobs.get("randread_4k") or {}, jobs.get("randwrite_4k") or {}
                seq = jobs.get("read_128k") or {}
                mib = round(seq["bw_kib_s"] / 1024, 1) if "bw_kib_s" in seq else None
                sync = jobs.get("fdatasync_2300") or {}
                print(f"{host}: randread 4k {rr.get('iops')} IOPS (p50 {rr.get('p50_ms')} / p99 {rr.get('p99_ms')} ms), "
                      f"randwrite 4k {rw.get('iops')} IOPS (p50 {rw.get('p50_ms')} / p99 {rw.get('p99_ms')} ms), "
                      f"read 128k {mib} MiB/s, fdatasync p99 {sync.get('sync_p99_ms')} ms; "
                      f"{fig.get('installed', '')}")
            bad = [(c.check, c.host, c.detail[:120]) for c in run.checks if c.status not in ("pass", "info", "changed")]
            if bad:
                print("not pass:", bad)
    finally:
        if started and not os.environ.get("RUNBOOKS_KEEP_LAB"):
            lab.down(LAB)


if __name__ == "__main__":
    main()
