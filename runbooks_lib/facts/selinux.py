"""SELinux (rhel family): runtime mode from ``getenforce`` and the mode in /etc/selinux/config."""

from __future__ import annotations

import re
from dataclasses import dataclass

CONFIG = "/etc/selinux/config"
COMMAND = {
    "rhel": f"getenforce 2>/dev/null || echo absent; echo '--'; cat {CONFIG} 2>/dev/null || true",
    "*": "getenforce 2>/dev/null || echo absent; echo '--'",
}


@dataclass(frozen=True)
class SELinux:
    runtime: str            # enforcing | permissive | disabled | absent
    config: str | None      # SELINUX= value in /etc/selinux/config, None if no file/line
    config_text: str


def parse(text: str) -> SELinux:
    head, _, conf = text.partition("--\n")
    runtime = (head.strip().splitlines() or ["absent"])[0].strip().lower()
    mode = None
    for line in conf.splitlines():
        m = re.match(r"^\s*SELINUX\s*=\s*(\w+)", line)
        if m:
            mode = m.group(1).lower()
    return SELinux(runtime, mode, conf)
