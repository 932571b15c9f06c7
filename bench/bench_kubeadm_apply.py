"""Chapter 02 apply on a 4-node lab (2 control planes, 2 workers) with the kubeadm test double.

kubeadm cannot be installed here: tests/doubles/kubeadm_double.py stands in for it (0.5 s in init, 1.5 s in
each join), so the figure is the chapter's own cost around kubeadm: survey, preflight, the order, the
gates, verify. A perfectly overlapped run needs 0.5 + 1.5 (control plane) + 1.5 (workers in parallel) s.
Prints, per round: apply wall and runner CPU seconds, the overhead over that floor, and the second apply.
    .venv/bin/python bench/bench_kubeadm_apply.py [--rounds 2]
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

LAB = "kbenchapply"
DOUBLE = Path(__file__).resolve().parent.parent / "tests" / "doubles" / "kubeadm_double.py"
FLOOR_S = 0.5 + 1.5 + 1.5


def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def params(state: lab.LabState, tmp: Path, reset: bool) -> Path:
    names = [n.hostname for n in state.nodes]
    hosts = lambda ns: "".join(f"        {h}: {{ansible_host: {state.node(h).ip}}}\n" for h in ns)  # noqa: E731
    inv = tmp / "inventory.yaml"
    inv.write_text(f"all:\n  vars: {{ansible_user: runbooks, ansible_ssh_private_key_file: {state.key}, "
                   f"ansible_become: true, runbooks_lab: true}}\n  children:\n    control_plane:\n      hosts:\n"
                   f"{hosts(names[:2])}    workers:\n      hosts:\n{hosts(names[2:])}")
    p = tmp / f"params-{reset}.yaml"
    p.write_text(f"cluster_name: {LAB}\nkubernetes_version: '1.37.1'\ninventory: {inv}\n"
                 f"ssh: {{known_hosts: {state.known_hosts}}}\nkube: {{kubeconfig: {state.kubeconfig}}}\n"
                 f"kubeadm:\n  control_plane_endpoint: '{LAB}-api:6443'\n  etcd_disk_test: false\n"
                 "  ignore_preflight_errors: [CRI, SystemVerification]\n"
                 + (f"  reset: [{', '.join(names)}]\n" if reset else ""))
    return p


def apply(path: Path, out: Path) -> tuple[float, float, Run]:
    t0, c0 = time.monotonic(), cpu_s()
    run = Run.start("kubeadm", str(path), ["mode=apply", f"confirm={LAB}"], str(out))
    kubeadm.plan(run)
    return time.monotonic() - t0, cpu_s() - c0, run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    started = not lab.is_up(LAB)
    state = lab.up(LAB, nodes=4)
    try:
        for n in state.nodes:
            t = state.transport(n.hostname)
            t.run("install -m 0755 /dev/stdin /usr/local/bin/kubeadm && mkdir -p /etc/kubeadm-double && "
                  "echo v1.37.1 > /etc/kubeadm-double/version && echo 1.5 > /etc/kubeadm-double/join_sleep && "
                  f"echo '{state.nodes[0].ip} {LAB}-api' >> /etc/hosts && "
                  "rm -f /etc/kubernetes/pki/apiserver.crt /etc/kubernetes/pki/apiserver.key",
                  stdin=DOUBLE.read_text(), check=True, timeout=30)
            t.close()
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            for i in range(args.rounds):
                apply(params(state, tmp, True), tmp / f"reset{i}")
                wall, cpu, run = apply(params(state, tmp, False), tmp / f"apply{i}")
                bad = sorted({c.status for c in run.checks if c.check.startswith("apply.")} - {"pass", "info"})
                again, _, _ = apply(params(state, tmp, False), tmp / f"again{i}")
                print({"round": i + 1, "apply_wall_s": round(wall, 2), "apply_cpu_s": round(cpu, 2),
                       "over_floor_s": round(wall - FLOOR_S, 2), "second_apply_s": round(again, 2),
                       "not_pass": bad, "timings": run.figures.get("apply_timings_s")})
    finally:
        if started and not os.environ.get("RUNBOOKS_KEEP_LAB"):
            lab.down(LAB)


if __name__ == "__main__":
    main()
