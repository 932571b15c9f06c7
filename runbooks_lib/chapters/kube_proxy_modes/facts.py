"""Pure parsers for the kube-proxy-modes chapter (command output -> data). No I/O here."""

from __future__ import annotations

import json
import re
from typing import Any


def parse_netns_list(text: str) -> list[str]:
    """Names from ``ip netns list`` ("name" or "name (id: 3)" per line)."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if parts:
            out.append(parts[0])
    return out


def parse_nft_tables(text: str) -> list[tuple[str, str]]:
    """(family, name) pairs from ``nft list tables``."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^\s*table\s+(\S+)\s+(\S+)", line)
        if m:
            out.append((m.group(1), m.group(2)))
    return out


def parse_iptables_version(text: str) -> tuple[str, str] | None:
    """(version, backend) from ``iptables --version``: backend "nf_tables", "legacy" or "" (old)."""
    m = re.search(r"iptables v(\d+(?:\.\d+)*)(?:\s+\(([^)]+)\))?", text)
    if not m:
        return None
    return m.group(1), m.group(2) or ""


def parse_nft_version(text: str) -> tuple[int, ...] | None:
    """Version tuple from ``nft --version`` ("nftables v1.0.9 (Old Doc Yak #3)")."""
    m = re.search(r"nftables v(\d+(?:\.\d+)*)", text)
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def parse_ipvsadm_error(text: str) -> str | None:
    """The reason from a failing ``ipvsadm -Ln`` ("Can't initialize ipvs: Protocol not available")."""
    m = re.search(r"Can't initialize ipvs:\s*(.+)", text)
    return m.group(1).strip() if m else None


def parse_ipvsadm_services(text: str) -> int:
    """Number of virtual services in ``ipvsadm -Ln`` output."""
    return sum(1 for line in text.splitlines() if re.match(r"^(TCP|UDP|SCTP)\s+\S+:\d+", line))


def parse_bench_output(stdout: str) -> dict[str, Any]:
    """The node program's JSON document (the last JSON line of stdout)."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(doc, dict):
                return doc
    raise ValueError("no JSON document in the benchmark output: " + stdout.strip()[-300:])


ROW_COLUMNS = [
    "host", "n", "endpoints", "mode", "status", "program_s", "incremental_s", "incremental_procs", "p50_us",
    "p90_us", "p99_us", "mean_us", "connections", "errors", "floor_p50_us", "rules", "detail",
]


def rows_from_doc(doc: dict[str, Any], host: str | None = None) -> list[dict[str, Any]]:
    """Tidy rows (one per mode, plus the probe floor) from one node-program document."""
    host = host or doc.get("host", "?")
    n = doc.get("n")
    floor = doc.get("floor") or {}
    rows = []
    base = {"host": host, "n": n, "endpoints": doc.get("endpoints"), "floor_p50_us": floor.get("p50_us")}
    rows.append({**base, "mode": "floor (no rules)", "status": "ok" if floor.get("count") else "error",
                 "program_s": None, "incremental_s": None, "p50_us": floor.get("p50_us"),
                 "p90_us": floor.get("p90_us"), "p99_us": floor.get("p99_us"), "mean_us": floor.get("mean_us"),
                 "connections": floor.get("count"), "errors": floor.get("errors"), "rules": 0,
                 "detail": "direct connect to an endpoint IP, no rules loaded"})
    for mode, entry in (doc.get("modes") or {}).items():
        lat = entry.get("latency") or {}
        status = entry.get("status", "error")
        detail = entry.get("reason", "") if status != "ok" else entry.get("layout", "")
        rows.append({**base, "mode": mode, "status": status, "program_s": entry.get("program_s"),
                     "incremental_s": entry.get("incremental_s"),
                     "incremental_procs": (entry.get("timed") or {}).get("incremental_processes")
                     if entry.get("program_s") is not None else None,
                     "p50_us": lat.get("p50_us"),
                     "p90_us": lat.get("p90_us"), "p99_us": lat.get("p99_us"), "mean_us": lat.get("mean_us"),
                     "connections": lat.get("count"), "errors": lat.get("errors"),
                     "rules": entry.get("rules_lines"), "detail": detail})
    return [{c: r.get(c) for c in ROW_COLUMNS} for r in rows]


def merge_probe(documents: list[dict[str, Any]], probe: dict[str, Any]) -> None:
    """Put the interleaved probe's results (keys ``floor`` and ``<mode>/<N>``) into the per-N
    documents: ``floor`` of each, ``modes.<mode>.latency``; a kept mode the probe did not reach
    becomes an error, as does one where no connection succeeded."""
    results = probe.get("results") or {}
    for doc in documents:
        doc["floor"] = results.get("floor") or {}
        doc["latency_pass"] = {"rounds": probe.get("rounds"), "order": probe.get("order"),
                               "duration_s": probe.get("duration_s")}
        for mode, entry in (doc.get("modes") or {}).items():
            if entry.get("status") != "ok":
                continue
            lat = results.get(f"{mode}/{doc.get('n')}")
            if lat is None:
                entry["status"], entry["reason"] = "error", "not measured: the latency probe did not reach it"
                continue
            entry["latency"] = lat
            if not lat.get("count"):
                entry["status"] = "error"
                entry["reason"] = "no connection succeeded: " + str(lat.get("first_error", "?"))
