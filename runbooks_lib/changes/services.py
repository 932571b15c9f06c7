"""systemd unit state: enabled and running (or disabled and stopped)."""

from __future__ import annotations

from ..facts.services import Unit
from . import Change, NoChange


def service_state(check: str, name: str, unit: Unit | None, *, enabled: bool, running: bool,
                  restart: bool = False) -> Change | NoChange:
    """Commands that bring ``name`` to enabled/running; ``restart`` forces a restart (config changed)."""
    if unit is None or not unit.exists:
        if not enabled and not running:
            return NoChange(check, f"{name} is not installed")
        return Change(check, f"{name} is not installed", [])
    cmds: list[str] = []
    if unit.masked and (enabled or running):
        cmds.append(f"systemctl unmask {name}")
    if enabled and not unit.enabled:
        cmds.append(f"systemctl enable {name}")
    if not enabled and unit.enabled:
        cmds.append(f"systemctl disable {name}")
    if running and restart:
        cmds.append(f"systemctl restart {name}")
    elif running and not unit.active:
        cmds.append(f"systemctl start {name}")
    if not running and unit.active:
        cmds.append(f"systemctl stop {name}")
    if not cmds:
        state = ("enabled" if enabled else "disabled") + (" and running" if running else " and stopped")
        return NoChange(check, f"{name} is {state}")
    return Change(check, f"{name}: {'; '.join(c.split(' ', 1)[1] for c in cmds)}", cmds)
