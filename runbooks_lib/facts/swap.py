"""Swap: active devices (/proc/swaps) and swap lines in /etc/fstab."""

from __future__ import annotations

from dataclasses import dataclass

PROC_SWAPS = "cat /proc/swaps"
SWAPON = "swapon --show --noheadings --raw 2>/dev/null || true"


@dataclass(frozen=True)
class SwapDevice:
    name: str
    type: str
    size_kib: int


def parse_proc_swaps(text: str) -> list[SwapDevice]:
    out: list[SwapDevice] = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3 and parts[2].isdigit():
            out.append(SwapDevice(parts[0], parts[1], int(parts[2])))
    return out


def parse_swapon(text: str) -> list[str]:
    """``swapon --show --noheadings --raw``: NAME TYPE SIZE USED PRIO -> device names."""
    return [ln.split()[0] for ln in text.splitlines() if ln.strip()]


def fstab_swap_lines(fstab: str) -> list[int]:
    """Indexes of active (uncommented) fstab lines whose type (3rd field) is swap."""
    out: list[int] = []
    for i, line in enumerate(fstab.splitlines()):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        fields = s.split()
        if len(fields) >= 3 and fields[2] == "swap":
            out.append(i)
    return out
