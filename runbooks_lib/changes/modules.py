"""Kernel modules: persisted in /etc/modules-load.d/k8s.conf, loaded with modprobe."""

from __future__ import annotations

from ..facts.modules import K8S_FILE, parse_load_file
from . import Change, NoChange
from .files import file_content

HEADER = "# Kubernetes node kernel modules (managed by runbooks system-init)\n"


def render(names: list[str]) -> str:
    return HEADER + "".join(f"{n}\n" for n in names)


def persist_change(current: str | None, names: list[str]) -> Change | NoChange:
    """Rewrite the file only when its module set differs (comments and order are not a difference)."""
    if current is not None and sorted(set(parse_load_file(current))) == sorted(set(names)):
        return NoChange("modules.persisted", f"{K8S_FILE} lists {', '.join(names)}")
    return file_content("modules.persisted", K8S_FILE, current, render(names),
                        summary=f"persist modules {', '.join(names)}")


def load_change(missing: list[str]) -> Change | NoChange:
    if not missing:
        return NoChange("modules.loaded", "every module is usable")
    return Change("modules.loaded", f"load {', '.join(missing)}", [f"modprobe {m}" for m in missing])
