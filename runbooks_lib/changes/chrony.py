"""chrony: exactly the configured servers (other server/pool lines commented), in a managed block."""

from __future__ import annotations

from . import Change, NoChange
from .files import file_content, managed_block

BLOCK = "runbooks time sources"
COMMENT = "#runbooks: replaced by the managed time sources: "


def render(conf: str, servers: list[str], elsewhere: set[str] | None = None) -> str:
    """Comment every server/pool line outside the block that is not wanted; the block holds the
    wanted servers not already configured outside it (``elsewhere``: found in included files)."""
    lines: list[str] = []
    kept: set[str] = set(elsewhere or ())
    inside = False
    for line in conf.splitlines():
        if line.startswith(f"# BEGIN {BLOCK}"):
            inside = True
        elif line.startswith(f"# END {BLOCK}"):
            inside = False
        elif not inside:
            parts = line.split()
            if len(parts) >= 2 and parts[0] in ("server", "pool"):
                if parts[1] in servers:
                    kept.add(parts[1])
                else:
                    line = COMMENT + line
        lines.append(line)
    body = [f"server {s} iburst" for s in servers if s not in kept]
    return managed_block("\n".join(lines) + "\n", BLOCK, body)


def config_change(path: str, current: str | None, servers: list[str], service: str,
                  elsewhere: set[str] | None = None) -> Change | NoChange:
    if current is None:
        return Change("chrony.config", f"{path} is missing (chrony not installed?)", [])
    ch = file_content("chrony.config", path, current, render(current, servers, elsewhere),
                      summary=f"time sources: {', '.join(servers)}",
                      commands=[f"systemctl restart {service}"])
    if isinstance(ch, Change):
        ch.destructive = f"restarts {service} (the clock may step)"
    return ch
