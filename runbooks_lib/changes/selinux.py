"""SELinux (rhel family): runtime and /etc/selinux/config to permissive or disabled."""

from __future__ import annotations

import re

from ..facts.selinux import CONFIG, SELinux
from . import Change, NoChange
from .files import file_content


def render_config(text: str, mode: str) -> str:
    if re.search(r"^\s*SELINUX\s*=", text, flags=re.M):
        return re.sub(r"^(\s*)SELINUX\s*=\s*\w+", rf"\1SELINUX={mode}", text, flags=re.M)
    return text + ("" if text.endswith("\n") or not text else "\n") + f"SELINUX={mode}\n"


def config_change(se: SELinux, mode: str) -> Change | NoChange:
    if se.config == mode:
        return NoChange("selinux.config", f"{CONFIG} says SELINUX={mode}")
    return file_content("selinux.config", CONFIG, se.config_text, render_config(se.config_text, mode),
                        summary=f"SELINUX={mode} in {CONFIG} (takes effect at boot)")


def runtime_change(se: SELinux) -> Change | NoChange:
    if se.runtime in ("permissive", "disabled", "absent"):
        return NoChange("selinux.runtime", f"SELinux is {se.runtime}")
    return Change("selinux.runtime", "SELinux enforcing -> permissive now", ["setenforce 0"])
