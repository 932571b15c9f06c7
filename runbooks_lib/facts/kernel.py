"""Kernel release, PID 1 and the cgroup filesystem type."""

from __future__ import annotations

import re

UNAME = "uname -r"
PID1 = "cat /proc/1/comm"
CGROUP_FS = "stat -fc %T /sys/fs/cgroup"


def parse_release(text: str) -> str:
    return text.strip()


def parse_version(release: str) -> tuple[int, int, int] | None:
    """"5.14.0-427.13.1.el9_4.x86_64" (Rocky), "6.1.0-18-amd64" (Debian) -> (major, minor, patch); None if not one."""
    m = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", release.strip())
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) if m else None


def version_tuple(release: str) -> tuple[int, int, int]:
    """:func:`parse_version`, (0, 0, 0) when unparsable."""
    return parse_version(release) or (0, 0, 0)


def parse_cgroup_fs(text: str) -> str:
    """"cgroup2fs" (v2, unified) or "tmpfs" (v1/hybrid)."""
    return text.strip()


def cgroup_version(fs_type: str) -> int | None:
    return {"cgroup2fs": 2, "tmpfs": 1}.get(fs_type)
