"""Listening TCP sockets from ``ss -ltnpH`` (port -> owning processes)."""

from __future__ import annotations

import re
from dataclasses import dataclass

COMMAND = "ss -ltnpH"


@dataclass(frozen=True)
class Listener:
    address: str
    port: int
    processes: tuple[str, ...]


def parse(text: str) -> list[Listener]:
    """One Listener per LISTEN line; processes from ``users:(("etcd",pid=1,fd=3),...)``."""
    out: list[Listener] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        # State Recv-Q Send-Q Local:Port Peer:Port [Process]
        local = parts[3] if parts[0] == "LISTEN" else None
        if local is None:
            continue
        addr, _, port = local.rpartition(":")
        if not port.isdigit():
            continue
        procs = tuple(dict.fromkeys(re.findall(r'\("([^"]+)",pid=', line)))
        out.append(Listener(addr, int(port), procs))
    return out


def port_owners(listeners: list[Listener]) -> dict[int, set[str]]:
    owners: dict[int, set[str]] = {}
    for ln in listeners:
        owners.setdefault(ln.port, set()).update(ln.processes or ("?",))
    return owners


def expand(spec: str) -> list[int]:
    """"2379-2380" -> [2379, 2380]; "6443" -> [6443]."""
    lo, _, hi = spec.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))
