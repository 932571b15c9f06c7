"""The lab's Ansible YAML inventory (what parameters/lab.yaml points at)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def inventory_data(nodes: list[dict[str, Any]], key_file: Path, user: str = "runbooks") -> dict[str, Any]:
    """``all: children: control_plane / workers`` with connection vars and ``runbooks_lab: true``.

    ``nodes``: dicts with ``hostname``, ``ip`` and ``roles`` (control-plane, etcd, worker).
    """
    def hv(n: dict[str, Any]) -> dict[str, Any]:
        return {"ansible_host": n["ip"], "ansible_port": 22}

    cps = {n["hostname"]: hv(n) for n in nodes if "control-plane" in n["roles"]}
    etcd = {n["hostname"]: hv(n) for n in nodes if "etcd" in n["roles"]}
    workers = {n["hostname"]: hv(n) for n in nodes if "worker" in n["roles"]}
    children: dict[str, Any] = {"control_plane": {"hosts": cps}, "etcd": {"hosts": etcd}}
    if workers:
        children["workers"] = {"hosts": workers}
    return {"all": {
        "vars": {"ansible_user": user, "ansible_ssh_private_key_file": str(key_file),
                 "ansible_become": True, "runbooks_lab": True},
        "children": children,
    }}


def write_inventory(path: Path, data: dict[str, Any]) -> None:
    header = "# written by `runbooks lab up`; removed by `runbooks lab down`\n"
    path.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
