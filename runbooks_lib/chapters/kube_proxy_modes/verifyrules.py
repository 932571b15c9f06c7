"""After a switch, judged from captured text (pure): the new mode's rules present, the old mode's
rules gone, kube-proxy's sync metrics. :func:`.switch.gather_verify` captures the text on a node."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .switchplan import Prereq


@dataclass
class VirtualService:
    proto: str
    address: str
    port: int
    scheduler: str
    real_servers: list[str]


def parse_ipvsadm_ln(text: str) -> list[VirtualService]:
    """Virtual services and their real servers from ``ipvsadm -Ln``."""
    out: list[VirtualService] = []
    for line in text.splitlines():
        m = re.match(r"^(TCP|UDP|SCTP)\s+(\S+):(\d+)\s+(\S+)", line)
        if m:
            out.append(VirtualService(m.group(1), m.group(2), int(m.group(3)), m.group(4), []))
            continue
        m = re.match(r"^\s+->\s+(\S+:\d+)\s+\S+\s+\d+", line)
        if m and out:
            out[-1].real_servers.append(m.group(1))
    return out


def parse_nft_kube_proxy(text: str) -> dict[str, Any]:
    """From ``nft list table ip kube-proxy``: is the table there, its chains, service chains, and the
    elements of the service-ips map."""
    present = bool(re.search(r"^table ip kube-proxy\b", text, re.M))
    chains = re.findall(r"^\s*chain (\S+) \{", text, re.M)
    services = [c for c in chains if c.startswith("service-")]
    m = re.search(r"map service-ips \{.*?elements = \{(.*?)\}", text, re.S)
    elements = [e.strip() for e in m.group(1).split(",") if e.strip()] if m else []
    return {"present": present, "chains": len(chains), "service_chains": len(services),
            "endpoint_chains": len([c for c in chains if c.startswith("endpoint-")]), "service_ips": len(elements)}


def parse_iptables_kube(text: str) -> dict[str, int]:
    """Counts of kube-proxy iptables state in ``iptables-save`` output: KUBE-SVC-/KUBE-SEP- chains and
    KUBE-SERVICES rules."""
    return {"kube_svc_chains": len(re.findall(r"^:KUBE-SVC-\S+", text, re.M)),
            "kube_sep_chains": len(re.findall(r"^:KUBE-SEP-\S+", text, re.M)),
            "kube_services_rules": len(re.findall(r"^-A KUBE-SERVICES ", text, re.M)),
            "kube_chains": len(re.findall(r"^:KUBE-", text, re.M))}


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)(?:\s+\d+)?$')


def parse_prometheus(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample of a Prometheus text exposition."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line.strip())
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        try:
            out.append((m.group(1), labels, float(m.group(3))))
        except ValueError:
            continue
    return out


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Prometheus-style quantile from cumulative (le, count) buckets (linear within a bucket)."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            if count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return buckets[-1][0]


def histogram(samples: list[tuple[str, dict[str, str], float]], name: str) -> dict[str, Any] | None:
    """count, sum, mean and p50/p90/p99 of a histogram (all label sets summed)."""
    buckets: dict[float, float] = {}
    total = count = 0.0
    found = False
    for sname, labels, value in samples:
        if sname == f"{name}_bucket":
            le = float("inf") if labels.get("le") == "+Inf" else float(labels.get("le", "inf"))
            buckets[le] = buckets.get(le, 0.0) + value
            found = True
        elif sname == f"{name}_sum":
            total += value
        elif sname == f"{name}_count":
            count += value
    if not found:
        return None
    pairs = sorted(buckets.items())
    return {"count": int(count), "sum_s": round(total, 6), "mean_s": round(total / count, 6) if count else None,
            "p50_s": histogram_quantile(pairs, 0.5), "p90_s": histogram_quantile(pairs, 0.9),
            "p99_s": histogram_quantile(pairs, 0.99)}


def parse_proxy_metrics(text: str) -> dict[str, Any]:
    """kube-proxy's :10249/metrics: sync duration and network programming latency histograms, and the
    last sync time."""
    samples = parse_prometheus(text)
    last = [v for n, _l, v in samples if n == "kubeproxy_sync_proxy_rules_last_timestamp_seconds"]
    return {"sync_proxy_rules_duration": histogram(samples, "kubeproxy_sync_proxy_rules_duration_seconds"),
            "network_programming_duration": histogram(samples, "kubeproxy_network_programming_duration_seconds"),
            "last_sync_timestamp": last[0] if last else None}


def verify_node(node: str, mode: str, old_mode: str | None, outputs: dict[str, tuple[int, str]]) -> list[Prereq]:
    """Judge captured outputs: new mode's rules present, old mode's rules gone, metrics readable."""
    rows: list[Prereq] = []
    ok = {k: text for k, (code, text) in outputs.items() if code == 0}  # the outputs of commands that succeeded
    ipt = parse_iptables_kube(ok["iptables"]) if "iptables" in ok else None
    nft = parse_nft_kube_proxy(ok["nft"]) if "nft" in ok else None
    ipvs = parse_ipvsadm_ln(ok["ipvsadm"]) if "ipvsadm" in ok else None
    present = {"iptables": bool(ipt and ipt["kube_svc_chains"]), "nftables": bool(nft and nft["service_chains"]),
               "ipvs": bool(ipvs)}
    counts = {"iptables": f"{ipt['kube_svc_chains'] if ipt else 0} KUBE-SVC chains",
              "nftables": f"{nft['service_chains'] if nft else 0} service chains, "
                          f"{nft['service_ips'] if nft else 0} service-ips elements",
              "ipvs": f"{len(ipvs) if ipvs else 0} virtual services"}
    rows.append(Prereq(node, f"{mode} rules present", "pass" if present[mode] else "fail", counts[mode]))
    if old_mode and old_mode != mode:
        stale = present[old_mode]
        rows.append(Prereq(node, f"stale {old_mode} rules", "warn" if stale else "pass",
                           f"still there: {counts[old_mode]}" if stale else "none left"))
    sync = parse_proxy_metrics(ok["metrics"])["sync_proxy_rules_duration"] if "metrics" in ok else None
    if sync:
        rows.append(Prereq(node, "kube-proxy sync duration", "pass",
                           f"{sync['count']} syncs, mean {sync['mean_s']} s, p99 <= {sync['p99_s']} s"))
    else:
        rows.append(Prereq(node, "kube-proxy sync duration", "warn", "metrics on 127.0.0.1:10249 not readable"))
    return rows
