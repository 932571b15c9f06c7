"""Kernel parameters: runtime values (and whether writable here) and the persisted configuration.

Runtime: read from /proc/sys with writability (in a lab node only /proc/sys/net is writable;
global keys belong to the host). Persisted: every sysctl.d file in systemd-sysctl's order, so a
later file that overrides ours is found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

#: systemd-sysctl's directories, highest priority first (same basename: the first wins)
DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d")
FILE_GLOBS = tuple(f"{d}/*.conf" for d in DIRS) + ("/etc/sysctl.conf",)


@dataclass(frozen=True)
class Runtime:
    key: str
    value: str | None      # None: the key does not exist in this kernel (module not loaded?)
    writable: bool


def runtime_command(keys: Iterable[str]) -> str:
    """``key<TAB>rw|ro|-<TAB>value`` per key (cat, not the read builtin: procfs answers short reads badly)."""
    parts = []
    for k in keys:
        if re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+", k):
            parts.append(f"{k}:/proc/sys/{k.replace('.', '/')}")
    return (f'for kf in {" ".join(parts)}; do k="${{kf%%:*}}"; f="${{kf#*:}}"; '
            f'if [ -e "$f" ]; then w=ro; [ -w "$f" ] && w=rw; v="$(cat "$f")"; '
            f'printf "%s\\t%s\\t%s\\n" "$k" "$w" "$v"; '
            f'else printf "%s\\t-\\t\\n" "$k"; fi; done')


def parse_runtime(text: str) -> dict[str, Runtime]:
    out: dict[str, Runtime] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        key, flag = parts[0], parts[1]
        value = " ".join(parts[2:])
        out[key] = Runtime(key, None if flag == "-" else value.strip(), flag == "rw")
    return out


def parse_sysctl_a(text: str) -> dict[str, str]:
    """``sysctl -a`` / ``sysctl KEY...`` output (``key = value``)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(" = ")
        if sep:
            out[key.strip()] = value.strip()
    return out


def parse_conf(text: str) -> dict[str, str]:
    """A sysctl.d file: ``key = value`` / ``key=value``; ``-key`` (ignore errors) prefix dropped;
    slashes normalised to dots."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith(("#", ";")) or "=" not in s:
            continue
        key, _, value = s.partition("=")
        key = key.strip().lstrip("-").replace("/", ".")
        out[key] = " ".join(value.split())
    return out


def effective_order(paths: Iterable[str]) -> list[str]:
    """Files in the order systemd-sysctl applies them (later wins); /etc/sysctl.conf is only read
    through a 99-sysctl.conf link, so it is ignored unless named by such a link."""
    by_base: dict[str, str] = {}
    rank = {d: i for i, d in enumerate(DIRS)}
    for p in paths:
        pp = PurePosixPath(p)
        parent = str(pp.parent)
        if parent not in rank:
            continue
        cur = by_base.get(pp.name)
        if cur is None or rank[parent] < rank[str(PurePosixPath(cur).parent)]:
            by_base[pp.name] = p
    return [by_base[b] for b in sorted(by_base)]


def persisted(files: dict[str, str | None]) -> dict[str, tuple[str, str]]:
    """key -> (value, file) after applying every file in order."""
    out: dict[str, tuple[str, str]] = {}
    for path in effective_order(p for p, c in files.items() if c is not None):
        for k, v in parse_conf(files[path] or "").items():
            out[k] = (v, path)
    return out


def same_value(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.split() == b.split()
