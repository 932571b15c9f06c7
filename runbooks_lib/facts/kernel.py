"""Kernel release, PID 1 and the cgroup filesystem type."""

from __future__ import annotations

import re

UNAME = "uname -r"
PID1 = "cat /proc/1/comm"
CGROUP_FS = "stat -fc %T /sys/fs/cgroup"


def parse_release(text: str) -> str:
    return text.strip()


def version_tuple(release: str) -> tuple[int, int, int]:
    """"5.14.0-427.13.1.el9_4.x86_64" -> (5, 14, 0); unparsable -> (0, 0, 0)."""
    m = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", release.strip())
    if not m:
        return (0, 0, 0)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


def parse_cgroup_fs(text: str) -> str:
    """"cgroup2fs" (v2, unified) or "tmpfs" (v1/hybrid)."""
    return text.strip()


def cgroup_version(fs_type: str) -> int | None:
    return {"cgroup2fs": 2, "tmpfs": 1}.get(fs_type)
