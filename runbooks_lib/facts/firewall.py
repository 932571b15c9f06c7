"""The host firewall: firewalld on the rhel family, ufw on the debian family."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

COMMAND = {
    "rhel": ("if command -v firewall-cmd >/dev/null; then echo installed; firewall-cmd --state 2>&1; "
             "firewall-cmd --list-ports 2>/dev/null || true; else echo absent; fi"),
    "debian": "if command -v ufw >/dev/null; then echo installed; ufw status 2>&1; else echo absent; fi",
}


@dataclass
class Firewall:
    tool: str                      # firewalld | ufw
    installed: bool
    running: bool
    open_ports: set[str] = field(default_factory=set)   # "6443/tcp", "2379-2380/tcp"


def parse_firewalld(text: str) -> Firewall:
    """``firewall-cmd --state`` ("running" / "not running") and ``--list-ports``."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0] == "absent":
        return Firewall("firewalld", False, False)
    running = len(lines) > 1 and lines[1] == "running"
    ports: set[str] = set()
    for ln in lines[2:] if running else []:
        ports.update(p for p in ln.split() if re.fullmatch(r"\d+(-\d+)?/(tcp|udp|sctp)", p))
    return Firewall("firewalld", True, running, ports)


def parse_ufw(text: str) -> Firewall:
    """``ufw status``: "Status: active" then a rules table ("6443/tcp  ALLOW  Anywhere")."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0] == "absent":
        return Firewall("ufw", False, False)
    running = any(ln == "Status: active" for ln in lines)
    ports: set[str] = set()
    for ln in lines:
        m = re.match(r"^(\d+(?::\d+)?)/(tcp|udp)\s+ALLOW", ln)
        if m:
            ports.add(f"{m.group(1).replace(':', '-')}/{m.group(2)}")
    return Firewall("ufw", True, running, ports)


def parse(family: str, text: str) -> Firewall:
    return parse_firewalld(text) if family == "rhel" else parse_ufw(text)
