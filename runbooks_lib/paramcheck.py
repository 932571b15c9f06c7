"""Checks on raw parameter data that need no schema: host addresses, readable files, and the
checks that span fields (a name that must be an inventory host, ``confirm``, known_hosts).

``cross_problems`` runs on validated data (the ``Params`` model validator) and on raw data when
field errors stopped validation, so every bad field is reported at once.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any, TypeVar

_T = TypeVar("_T", list[Any], dict[str, Any])
RFC1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def check_host_address(v: str) -> str:
    """An IP address or an RFC 1123 host name (``10.0.0.1;rm -rf /``, spaces, empty: refused)."""
    try:
        ipaddress.ip_address(v)
        return v
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", v):
        raise ValueError(f"{v!r} is not a valid IPv4 address")
    if not v or len(v) > 253 or not all(RFC1123_LABEL.fullmatch(label) for label in v.lower().split(".")):
        raise ValueError(f"{v[:80]!r} is neither an IP address nor an RFC 1123 host name")
    return v


def check_readable_file(v: str, what: str) -> str:
    """A file that exists and this user can read (checked at load time, not after connecting)."""
    p = Path(v).expanduser()
    if not p.exists():
        raise ValueError(f"{what} {p} not found")
    if not p.is_file():
        raise ValueError(f"{what} {p} is not a file")
    if not os.access(p, os.R_OK):
        raise ValueError(f"{what} {p} is not readable by this user")
    return v


def typed_part(data: dict[str, Any], key: str, kind: type[_T]) -> _T:
    """``data[key]`` when it is a ``kind``, else an empty one (raw data may be ill-typed)."""
    value = data.get(key)
    return value if isinstance(value, kind) else kind()


def cross_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, why) for every check that spans fields; ``data`` may be raw (checks skip ill-typed parts)."""
    out: list[tuple[str, str]] = []
    hosts = typed_part(data, "hosts", list)
    names = [h["name"] for h in hosts if isinstance(h, dict) and isinstance(h.get("name"), str)]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        out.append(("hosts", f"duplicate host names: {', '.join(dupes)}"))
    only = data.get("only_hosts")
    unknown = sorted(set(only) - set(names)) if isinstance(only, list) and all(isinstance(o, str) for o in only) else []
    if unknown:
        out.append(("only_hosts", f"names hosts not in the inventory: {', '.join(unknown)}"))
    refs = [(f"etcd_backup.{k}", typed_part(data, "etcd_backup", dict).get(k)) for k in ("node", "copy_to_host")]
    bench = typed_part(data, "kube_proxy_modes", dict).get("bench_host")
    refs.append(("kube_proxy_modes.bench_host", None if bench == "local" else bench))
    reset = typed_part(data, "kubeadm", dict).get("reset")
    refs += [("kubeadm.reset", r) for r in reset] if isinstance(reset, list) else []
    for where, value in refs:
        if isinstance(value, str) and value not in names:
            out.append((where, f"{value[:80]!r} names no host in the inventory"
                        + (f" (hosts: {', '.join(names[:20])})" if names else " (there are no hosts)")))
    confirm, cluster = data.get("confirm"), data.get("cluster_name")
    if isinstance(confirm, str) and confirm and isinstance(cluster, str) and confirm != cluster:
        out.append(("confirm", f"confirm {confirm[:80]!r} does not match cluster_name {cluster!r}"))
    ssh = typed_part(data, "ssh", dict)
    known, strict = ssh.get("known_hosts"), ssh.get("strict_host_key", True)
    if names and isinstance(known, str):
        try:
            check_readable_file(known, "known_hosts file")
        except ValueError as exc:
            out.append(("ssh.known_hosts", str(exc)))
    elif names and known is None and strict is True:
        default = Path("~/.ssh/known_hosts").expanduser()
        if not default.is_file() or not os.access(default, os.R_OK):
            out.append(("ssh.known_hosts", f"not set, and the default {default} does not exist or is not "
                        "readable; host keys are verified (ssh.strict_host_key), so give the file that holds "
                        "these hosts' keys"))
    return out
