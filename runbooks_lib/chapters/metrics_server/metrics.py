"""The Metrics API and what consumes it (pure functions): APIService failure reasons explained, a
``kubectl top``-like table, and HPA readiness (the "missing request for cpu" trap)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from kubernetes.utils.quantity import parse_quantity

Obj = dict[str, Any]

#: kube-aggregator's Available=False reasons and message fragments -> what they mean on kubeadm clusters
#: (metrics-server KNOWN_ISSUES.md; kubernetes-sigs/metrics-server#1154, #1084, #208)
EXPLAIN = [
    ("ServiceNotFound", "the metrics-server Service does not exist (manifest not applied, or another namespace)"),
    ("MissingEndpoints", "the Service has no ready endpoint: the metrics-server pod is not Ready (its readiness "
                         "probe fails while it cannot scrape the kubelets: see the kubelet TLS leg)"),
    ("EndpointsNotFound", "no Endpoints/EndpointSlice for the Service yet"),
    ("ServiceAccessError", "the Service cannot be resolved to a pod IP"),
    ("x509", "kube-apiserver does not trust metrics-server's certificate, or metrics-server does not trust the "
             "front-proxy client: check --requestheader-client-ca-file (front-proxy-ca) and the caBundle"),
    ("403", "metrics-server refused the apiserver's front-proxy identity: --requestheader-client-ca-file / "
            "--requestheader-allowed-names (kubeadm's front-proxy CA)"),
    ("i/o timeout", "the control plane cannot reach the pod on 10250: firewalld on the nodes, or a Calico pool "
                    "overlapping the node network"),
    ("no route to host", "the control plane cannot reach the pod on 10250: firewalld, or routes to the pod CIDR"),
    ("503", "the control plane cannot reach the pod on 10250 (firewalld, pool overlap) or the pod is not serving"),
    ("FailedDiscoveryCheck", "kube-apiserver reached no answer from metrics-server's discovery endpoint"),
]


def available(apiservice: Obj | None) -> tuple[bool, str, str]:
    """(Available?, reason, message) of an APIService."""
    for c in ((apiservice or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == "Available":
            return c.get("status") == "True", c.get("reason", ""), c.get("message", "")
    return False, "NoCondition", "no Available condition yet"


def explain(reason: str, message: str) -> str:
    """The known meaning of an Available=False reason/message (most specific fragment first)."""
    text = f"{reason} {message}"
    for key in ("x509", "403", "i/o timeout", "no route to host", "503"):
        if key in message:
            return dict(EXPLAIN)[key]
    for key, meaning in EXPLAIN:
        if key in text:
            return meaning
    return "not a known failure reason: read the APIService's message and metrics-server's logs"


def top_nodes(node_metrics: list[Obj], nodes: list[Obj]) -> pd.DataFrame:
    """``kubectl top nodes``: CPU (millicores) and memory (MiB) used, and their share of allocatable."""
    alloc = {n["metadata"]["name"]: (n.get("status") or {}).get("allocatable") or {} for n in nodes}
    rows = []
    for m in node_metrics:
        name = m["metadata"]["name"]
        cpu_m = float(parse_quantity(m["usage"]["cpu"])) * 1000
        mem_mi = float(parse_quantity(m["usage"]["memory"])) / 2**20
        a = alloc.get(name, {})
        a_cpu = float(parse_quantity(a["cpu"])) * 1000 if "cpu" in a else None
        a_mem = float(parse_quantity(a["memory"])) / 2**20 if "memory" in a else None
        rows.append({"node": name, "cpu_m": round(cpu_m), "cpu_%": round(100 * cpu_m / a_cpu, 1) if a_cpu else None,
                     "memory_Mi": round(mem_mi), "memory_%": round(100 * mem_mi / a_mem, 1) if a_mem else None})
    return pd.DataFrame(rows, columns=["node", "cpu_m", "cpu_%", "memory_Mi", "memory_%"])


def top_pods(pod_metrics: list[Obj]) -> pd.DataFrame:
    """``kubectl top pods -A``: per pod, the sum over its containers."""
    rows = []
    for m in pod_metrics:
        cs = m.get("containers") or []
        rows.append({"namespace": m["metadata"].get("namespace"), "pod": m["metadata"]["name"],
                     "cpu_m": round(sum(float(parse_quantity(c["usage"]["cpu"])) for c in cs) * 1000),
                     "memory_Mi": round(sum(float(parse_quantity(c["usage"]["memory"])) for c in cs) / 2**20)})
    return pd.DataFrame(rows, columns=["namespace", "pod", "cpu_m", "memory_Mi"])


@dataclass
class HpaReadiness:
    hpa: str
    namespace: str
    target: str
    status: str
    detail: str


def _resources(hpa: Obj) -> list[str]:
    """The resource metrics (cpu, memory) an autoscaling/v2 HPA scales on."""
    out = []
    for m in (hpa.get("spec") or {}).get("metrics") or []:
        if m.get("type") == "Resource":
            out.append(m["resource"]["name"])
        elif m.get("type") == "ContainerResource":
            out.append(m["containerResource"]["name"])
    return out


def missing_requests(pods: list[Obj], resources: list[str]) -> dict[str, list[str]]:
    """pod name -> resources some container of it has no request for (the HPA cannot compute
    utilisation: FailedGetResourceMetric "missing request for cpu")."""
    out: dict[str, list[str]] = {}
    for p in pods:
        lacking = sorted({r for c in (p.get("spec") or {}).get("containers") or [] for r in resources
                          if r not in ((c.get("resources") or {}).get("requests") or {})})
        if lacking:
            out[p["metadata"]["name"]] = lacking
    return out


def hpa_readiness(hpa: Obj, pods: list[Obj], lab: bool) -> HpaReadiness:
    """One HPA: pods under its target's selector without requests are named (fail); otherwise the HPA's
    own ScalingActive condition says whether it gets metrics ("n/a in lab": no HPA controller there)."""
    ns, name = hpa["metadata"].get("namespace", ""), hpa["metadata"]["name"]
    ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
    target = f"{ref.get('kind')}/{ref.get('name')}"
    resources = _resources(hpa)
    lacking = missing_requests(pods, resources) if resources else {}
    if lacking:
        named = "; ".join(f"{p}: {', '.join(r)}" for p, r in sorted(lacking.items()))
        return HpaReadiness(name, ns, target, "fail", f"{len(lacking)} pod(s) under {target} without requests "
                            f"(HPA: FailedGetResourceMetric missing request for ...): {named}")
    if not pods:
        return HpaReadiness(name, ns, target, "warn", f"no pods under {target}")
    conds = {c.get("type"): c for c in (hpa.get("status") or {}).get("conditions") or []}
    active = conds.get("ScalingActive")
    if lab:
        return HpaReadiness(name, ns, target, "n/a in lab", f"requests set on {len(pods)} pod(s); the lab has no "
                            "HPA controller and no real metrics, so current metrics cannot be read")
    if active is None:
        return HpaReadiness(name, ns, target, "warn", "no ScalingActive condition yet (controller not synced)")
    ok = active.get("status") == "True"
    return HpaReadiness(name, ns, target, "pass" if ok else "fail",
                        f"ScalingActive={active.get('status')} {active.get('reason', '')}: {active.get('message', '')}")
