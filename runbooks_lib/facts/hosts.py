"""Host name, its resolution, and /etc/hosts."""

from __future__ import annotations

import re

HOSTNAME = "hostname"
RESOLVE = 'getent ahosts "$(hostname)" | awk \'{print $1}\' | sort -u'
PATH = "/etc/hosts"
RFC1123 = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$")


def valid_hostname(name: str) -> bool:
    """RFC 1123 DNS subdomain, lowercase (what kubeadm requires of a node name)."""
    return bool(RFC1123.match(name))


def parse_addresses(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def parse(text: str) -> list[tuple[str, list[str]]]:
    """/etc/hosts: (address, names) per entry, comments stripped, in file order."""
    out: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        s = line.split("#", 1)[0].split()
        if len(s) >= 2:
            out.append((s[0], s[1:]))
    return out


def lookup(entries: list[tuple[str, list[str]]], name: str) -> str | None:
    """The address the first matching entry gives ``name`` (as the resolver would), IPv4 first."""
    found = [addr for addr, names in entries if name in names]
    v4 = [a for a in found if ":" not in a]
    pick = v4 or found
    return pick[0] if pick else None
