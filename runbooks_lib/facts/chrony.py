"""chrony: configured time sources and ``chronyc tracking``."""

from __future__ import annotations

import re
from dataclasses import dataclass

CONFIG = {"rhel": "/etc/chrony.conf", "debian": "/etc/chrony/chrony.conf"}
SERVICE = {"rhel": "chronyd", "debian": "chrony"}
TRACKING = "timeout 5 chronyc -n tracking"


def sources(conf: str) -> list[tuple[str, str]]:
    """Active ``server``/``pool`` directives: (kind, host)."""
    out: list[tuple[str, str]] = []
    for line in conf.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("server", "pool", "peer"):
            out.append((parts[0], parts[1]))
    return out


@dataclass(frozen=True)
class Tracking:
    reference: str
    stratum: int | None
    offset_s: float | None      # System time: + means the clock is fast of NTP time
    leap: str

    @property
    def synchronised(self) -> bool:
        return self.leap.lower() != "not synchronised" and (self.stratum or 0) > 0


def parse_tracking(text: str) -> Tracking | None:
    kv: dict[str, str] = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            kv[k.strip()] = v.strip()
    if "Leap status" not in kv:
        return None
    offset = None
    m = re.match(r"^([0-9.]+) seconds (fast|slow)", kv.get("System time", ""))
    if m:
        offset = float(m.group(1)) * (1 if m.group(2) == "fast" else -1)
    stratum = kv.get("Stratum", "")
    return Tracking(kv.get("Reference ID", ""), int(stratum) if stratum.isdigit() else None, offset,
                    kv["Leap status"])
