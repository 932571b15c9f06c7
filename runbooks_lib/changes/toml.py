"""A small, deterministic TOML writer for containerd configs (read back with tomllib in tests).

Covers what a containerd config holds: tables, strings, integers, floats, booleans, arrays and
arrays of tables. Tables are written in containerd's indented style.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k, ensure_ascii=False)


def value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _emit(out: list[str], table: dict[str, Any], path: list[str], depth: int) -> None:
    pad = "  " * depth
    for k, v in table.items():
        if not isinstance(v, dict) and not _is_table_array(v):
            out.append(f"{pad}{key(k)} = {value(v)}")
    for k, v in table.items():
        sub = [*path, k]
        name = ".".join(key(p) for p in sub)
        if isinstance(v, dict):
            out.append("")
            out.append(f"{'  ' * depth}[{name}]")
            _emit(out, v, sub, depth + 1)
        elif _is_table_array(v):
            for item in v:
                out.append("")
                out.append(f"{'  ' * depth}[[{name}]]")
                _emit(out, item, sub, depth + 1)


def dumps(data: dict[str, Any]) -> str:
    out: list[str] = []
    _emit(out, data, [], 0)
    return "\n".join(out).lstrip("\n") + "\n"
