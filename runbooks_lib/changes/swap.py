"""Swap off now, fstab swap lines commented, swap.target masked."""

from __future__ import annotations

from ..facts.swap import fstab_swap_lines
from . import Change, NoChange
from .files import file_content

FSTAB = "/etc/fstab"
COMMENT = "# disabled by runbooks (kubelet needs swap off): "


def comment_fstab(text: str) -> str:
    lines = text.splitlines()
    for i in fstab_swap_lines(text):
        lines[i] = COMMENT + lines[i]
    return "\n".join(lines) + ("\n" if text.endswith("\n") or not text else "")


def fstab_change(current: str | None) -> Change | NoChange:
    if current is None or not fstab_swap_lines(current):
        return NoChange("swap.fstab", "no active swap line in /etc/fstab")
    return file_content("swap.fstab", FSTAB, current, comment_fstab(current),
                        summary="comment swap lines in /etc/fstab")


def off_change(active: list[str]) -> Change | NoChange:
    if not active:
        return NoChange("swap.off", "no active swap")
    return Change("swap.off", f"turn off swap ({', '.join(active)})", ["swapoff -a"],
                  destructive="swapoff moves swapped memory back into RAM (OOM risk)")


def mask_change(masked: bool) -> Change | NoChange:
    if masked:
        return NoChange("swap.masked", "swap.target is masked")
    return Change("swap.masked", "mask swap.target so swap stays off after reboot",
                  ["systemctl mask swap.target"], destructive="masks swap.target")
