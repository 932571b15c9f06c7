"""CPU count, memory, DMI product_uuid and network interface MACs (kubeadm's uniqueness inputs)."""

from __future__ import annotations

import re
from dataclasses import dataclass

NPROC = "nproc"
MEMINFO = "grep -E '^(MemTotal|SwapTotal):' /proc/meminfo"
PRODUCT_UUID = "cat /sys/class/dmi/id/product_uuid"
IP_LINK = "ip -o link"

#: interfaces whose MAC is not the node's identity (bridges, veths, tunnels, CNI devices)
VIRTUAL_PREFIXES = ("lo", "veth", "cali", "cni", "flannel", "docker", "kube-", "tunl", "vxlan",
                    "podman", "virbr", "ifb", "dummy", "nodelocaldns", "cilium", "lxc", "weave")


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    mac: str | None
    state: str


def parse_nproc(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


def parse_meminfo(text: str) -> dict[str, int]:
    """MemTotal/SwapTotal in MiB."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+):\s+(\d+)\s*kB", line)
        if m:
            out[m.group(1)] = int(m.group(2)) // 1024
    return out


def parse_product_uuid(text: str) -> str | None:
    v = text.strip().lower()
    return v if re.fullmatch(r"[0-9a-f-]{32,36}", v) else None


def parse_ip_link(text: str) -> list[Link]:
    """``ip -o link`` lines: index, name (without @peer), MAC (link/ether), state."""
    out: list[Link] = []
    for line in text.splitlines():
        m = re.match(r"^(\d+):\s+([^:]+):\s+<[^>]*>(.*)$", line)
        if not m:
            continue
        name = m.group(2).split("@")[0]
        rest = m.group(3)
        mac = re.search(r"link/ether\s+([0-9a-f:]{17})", rest)
        state = re.search(r"\bstate\s+(\S+)", rest)
        out.append(Link(int(m.group(1)), name, mac.group(1) if mac else None,
                        state.group(1) if state else "UNKNOWN"))
    return out


def identity_macs(links: list[Link]) -> dict[str, str]:
    """name -> MAC of the interfaces that identify a node (physical-looking, with an Ethernet MAC)."""
    return {ln.name: ln.mac for ln in links
            if ln.mac and ln.mac != "00:00:00:00:00:00" and not ln.name.startswith(VIRTUAL_PREFIXES)}
