"""Address plan for a lab: one /24 per lab on its own podman bridge, chosen so labs coexist."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import subprocess
from collections.abc import Iterable

BASE = ipaddress.IPv4Network("10.77.0.0/16")


def network_name(lab: str) -> str:
    return f"runbooks-{lab}"


def node_ip(subnet: str, index: int) -> str:
    """Node ``index`` (1-based) gets .10+index; the gateway is .1."""
    return str(ipaddress.ip_network(subnet)[10 + index])


def gateway(subnet: str) -> str:
    return str(ipaddress.ip_network(subnet)[1])


def allocate_subnet(lab: str, used: Iterable[str], base: ipaddress.IPv4Network = BASE) -> str:
    """A /24 in ``base`` overlapping none of ``used``; the first try depends on the lab name only."""
    taken = [ipaddress.ip_network(u, strict=False) for u in used]
    candidates = list(base.subnets(new_prefix=24))[1:-1]
    start = int(hashlib.sha256(lab.encode()).hexdigest(), 16) % len(candidates)
    for i in range(len(candidates)):
        cand = candidates[(start + i) % len(candidates)]
        if not any(cand.overlaps(t) for t in taken if t.version == 4):
            return str(cand)
    raise RuntimeError(f"no free /24 left in {base}")


def host_routes() -> list[str]:
    """Destinations of this machine's IPv4 routes (so a lab never shadows a real network)."""
    try:
        out = subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"], capture_output=True,
                             text=True, timeout=10).stdout
        routes = json.loads(out or "[]")
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return []
    dests = []
    for r in routes:
        dst = r.get("dst", "")
        if dst and dst != "default" and dst[0].isdigit():
            dests.append(dst)
    return dests
