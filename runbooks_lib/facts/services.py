"""systemd units: ``systemctl show`` of several units in one call."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass

PROPS = "Id,LoadState,ActiveState,SubState,UnitFileState"


def command(units: Iterable[str]) -> str:
    names = " ".join(shlex.quote(u) for u in units)
    return f"systemctl show -p {PROPS} -- {names}"


@dataclass(frozen=True)
class Unit:
    id: str
    load_state: str
    active_state: str
    sub_state: str
    unit_file_state: str

    @property
    def exists(self) -> bool:
        return self.load_state not in ("not-found", "")

    @property
    def masked(self) -> bool:
        return self.load_state == "masked" or self.unit_file_state.startswith("masked")

    @property
    def enabled(self) -> bool:
        return self.unit_file_state in ("enabled", "enabled-runtime", "static", "alias", "indirect",
                                        "generated")

    @property
    def active(self) -> bool:
        return self.active_state in ("active", "reloading", "activating")


def parse(text: str) -> dict[str, Unit]:
    """Blocks separated by blank lines -> unit id (with and without ".service") -> Unit."""
    out: dict[str, Unit] = {}
    for block in text.strip().split("\n\n"):
        kv: dict[str, str] = {}
        for line in block.splitlines():
            k, sep, v = line.partition("=")
            if sep:
                kv[k.strip()] = v.strip()
        if "Id" not in kv:
            continue
        u = Unit(kv["Id"], kv.get("LoadState", ""), kv.get("ActiveState", ""), kv.get("SubState", ""),
                 kv.get("UnitFileState", ""))
        out[u.id] = u
        if u.id.endswith(".service"):
            out.setdefault(u.id[: -len(".service")], u)
    return out
