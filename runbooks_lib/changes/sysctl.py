"""Kernel parameters: one file, /etc/sysctl.d/99-kubernetes.conf, and runtime values.

Exact keys get their value; "minimum" keys (fs.inotify.*) never go down: the planned value is
the highest of the setting, the runtime value and any persisted value.
"""

from __future__ import annotations

import shlex

from ..facts.sysctl import Runtime, same_value
from . import Change, NoChange
from .files import file_content

PATH = "/etc/sysctl.d/99-kubernetes.conf"
HEADER = "# Kubernetes node kernel parameters (managed by runbooks system-init)\n"


def _int(v: str | None) -> int | None:
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def desired_values(exact: dict[str, str], minimum: dict[str, int], runtime: dict[str, Runtime],
                   persisted: dict[str, tuple[str, str]]) -> dict[str, str]:
    """The file's values: ``exact`` as given, ``minimum`` raised to what the operator already set."""
    out = dict(exact)
    for key, floor in minimum.items():
        seen = [floor]
        rt = runtime.get(key)
        if rt is not None and _int(rt.value) is not None:
            seen.append(_int(rt.value) or 0)
        if key in persisted and _int(persisted[key][0]) is not None:
            seen.append(_int(persisted[key][0]) or 0)
        out[key] = str(max(seen))
    return out


def render(values: dict[str, str]) -> str:
    return HEADER + "".join(f"{k} = {v}\n" for k, v in values.items())


def file_change(current: str | None, values: dict[str, str]) -> Change | NoChange:
    return file_content("sysctl.persisted", PATH, current, render(values),
                        summary=f"persist {len(values)} kernel parameters in {PATH}")


def runtime_differs(values: dict[str, str], minimum: dict[str, int], runtime: dict[str, Runtime]
                    ) -> dict[str, str]:
    """key -> wanted value for keys whose runtime value is off (absent keys included)."""
    out: dict[str, str] = {}
    for key, want in values.items():
        rt = runtime.get(key)
        have = rt.value if rt else None
        if key in minimum:
            if _int(have) is None or (_int(have) or 0) < int(want):
                out[key] = want
        elif not same_value(have, want):
            out[key] = want
    return out


def runtime_change(keys: dict[str, str]) -> Change | NoChange:
    if not keys:
        return NoChange("sysctl.runtime", "runtime kernel parameters as wanted")
    return Change("sysctl.runtime", f"set {len(keys)} runtime kernel parameters",
                  [f"sysctl -w {shlex.quote(f'{k}={v}')}" for k, v in keys.items()])
