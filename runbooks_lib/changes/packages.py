"""Package installs: dnf on the rhel family, apt on the debian family."""

from __future__ import annotations

import shlex

from . import Change, NoChange


def install_commands(family: str, names: list[str], *, update: bool = True,
                     extra_args: str = "") -> list[str]:
    q = " ".join(shlex.quote(n) for n in names)
    if family == "rhel":
        return [f"dnf install -y {extra_args}{q}".replace("  ", " ")]
    cmds = ["apt-get update -q"] if update else []
    cmds.append(f"DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends {extra_args}{q}"
                .replace("  ", " "))
    return cmds


def install_change(check: str, family: str, missing: list[str]) -> Change | NoChange:
    if not missing:
        return NoChange(check, "every package is installed")
    if family not in ("rhel", "debian"):
        return Change(check, f"unknown distro family: install by hand: {', '.join(missing)}", [])
    return Change(check, f"install {', '.join(missing)}", install_commands(family, missing))
