"""The accuracy probe of upstream's e2e test (kubernetes-sigs/metrics-server test/e2e_test.go) and the HPA
readiness trial: a CPU consumer (``consume-cpu --millicores=50``) as a one-replica Deployment with an HPA
on it, and a memory consumer (``stress -m 1 --vm-bytes 50M``); PodMetrics must read 50m ± 10m and
50 MiB ± 5 MiB within 60 s. Manifests and judgement only (pure)."""

from __future__ import annotations

from typing import Any

from kubernetes.utils.quantity import parse_quantity

from ...kube.manifests import with_run_label

Obj = dict[str, Any]
CPU, MEMORY = "ms-probe-cpu", "ms-probe-memory"
CPU_M, CPU_TOL = 50, 10
MEM_MI, MEM_TOL = 50, 5
DEADLINE_S = 60.0


def manifests(namespace: str, image: str, run_id: str, duration_s: int = 180) -> list[Obj]:
    """CPU consumer Deployment + its HPA (cpu 50 % of a 100m request), memory consumer Pod; run-labelled."""
    labels = {"app.kubernetes.io/name": CPU}
    cpu = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": CPU, "namespace": namespace},
           "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                        "name": CPU, "image": image, "command": ["./consume-cpu/consume-cpu"],
                        "args": [f"--duration-sec={duration_s}", f"--millicores={CPU_M}"],
                        "resources": {"requests": {"cpu": "100m"}}}]}}}}
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": CPU, "namespace": namespace},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": CPU},
                    "minReplicas": 1, "maxReplicas": 1,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                        "type": "Utilization", "averageUtilization": 50}}}]}}
    mem = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": MEMORY, "namespace": namespace},
           "spec": {"restartPolicy": "Never", "containers": [{
               "name": MEMORY, "image": image, "command": ["stress"],
               "args": ["-m", "1", "--vm-bytes", f"{MEM_MI}M", "--vm-hang", "0", "-t", str(duration_s)],
               "resources": {"requests": {"memory": "100Mi"}}}]}}
    return [with_run_label(o, run_id) for o in (cpu, hpa, mem)]


def judge(pod_metrics: Obj | None, resource: str) -> tuple[str, str]:
    """(status, detail) for one consumer's PodMetrics: one container, usage within the tolerance."""
    if pod_metrics is None:
        return "fail", f"no PodMetrics within {DEADLINE_S:g} s"
    cs = pod_metrics.get("containers") or []
    if len(cs) != 1:
        return "fail", f"{len(cs)} containers in PodMetrics (expected 1)"
    raw = cs[0]["usage"][resource]
    if resource == "cpu":
        value, want, tol, unit = float(parse_quantity(raw)) * 1000, CPU_M, CPU_TOL, "m"
    else:
        value, want, tol, unit = float(parse_quantity(raw)) / 2**20, MEM_MI, MEM_TOL, " MiB"
    ok = abs(value - want) <= tol
    return ("pass" if ok else "fail"), f"{resource} {value:.0f}{unit} (raw {raw}); expected {want}{unit} ± {tol}{unit}"
