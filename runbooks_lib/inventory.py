"""Import an existing Ansible inventory (INI or YAML) into runbooks host entries.

Understood: ``ansible_host`` / ``ansible_ssh_host``, ``ansible_port`` / ``ansible_ssh_port``,
``ansible_user`` / ``ansible_ssh_user``, ``ansible_ssh_private_key_file``; group ``vars`` and
``children``. Groups map to roles by name (Kubespray's ``kube_control_plane``, ``kube_node``,
``etcd`` and the usual ``masters``/``nodes``), and the seed's host vars ``K8S=both|master|slave``
and ``ETCD=yes`` are honoured too.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import yaml

CONTROL_PLANE_GROUPS = {"kube_control_plane", "kube-master", "kube_master", "masters", "master",
                        "control_plane", "control-plane", "controlplane", "k8s_master"}
WORKER_GROUPS = {"kube_node", "kube-node", "nodes", "node", "workers", "worker", "k8s_node"}
ETCD_GROUPS = {"etcd"}


class InventoryError(ValueError):
    """An inventory that cannot be read; the message names the file and the line or host."""


def _parse_ini(text: str, path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, set[str]],
                                               dict[str, dict[str, Any]], dict[str, list[str]]]:
    hosts: dict[str, dict[str, Any]] = {}
    groups: dict[str, set[str]] = {}
    group_vars: dict[str, dict[str, Any]] = {}
    children: dict[str, list[str]] = {}
    section, kind = "ungrouped", "hosts"
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise InventoryError(f"{path}:{lineno}: unterminated section header {line!r}")
            name = line[1:-1]
            section, _, suffix = name.partition(":")
            kind = suffix or "hosts"
            if kind not in ("hosts", "vars", "children"):
                raise InventoryError(f"{path}:{lineno}: unknown section kind {suffix!r}")
            groups.setdefault(section, set())
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise InventoryError(f"{path}:{lineno}: {exc}") from exc
        if not words:
            continue
        if kind == "vars":
            key, sep, val = line.partition("=")
            if not sep:
                raise InventoryError(f"{path}:{lineno}: expected key=value in [{section}:vars]")
            group_vars.setdefault(section, {})[key.strip()] = val.strip().strip("\"'")
        elif kind == "children":
            children.setdefault(section, []).append(words[0])
        else:
            name, hostvars = words[0], {}
            for word in words[1:]:
                key, sep, val = word.partition("=")
                if not sep:
                    raise InventoryError(f"{path}:{lineno}: expected key=value, got {word!r}")
                hostvars[key] = val
            hosts.setdefault(name, {}).update(hostvars)
            groups.setdefault(section, set()).add(name)
    return hosts, groups, group_vars, children


def _walk_yaml(node: dict[str, Any], group: str, hosts: dict[str, dict[str, Any]],
               groups: dict[str, set[str]], group_vars: dict[str, dict[str, Any]],
               children: dict[str, list[str]]) -> None:
    groups.setdefault(group, set())
    for name, hv in (node.get("hosts") or {}).items():
        hosts.setdefault(name, {}).update(hv or {})
        groups[group].add(name)
    if node.get("vars"):
        group_vars.setdefault(group, {}).update(node["vars"])
    for child, sub in (node.get("children") or {}).items():
        children.setdefault(group, []).append(child)
        _walk_yaml(sub or {}, child, hosts, groups, group_vars, children)


def _roles(groups_of_host: set[str], hostvars: dict[str, Any]) -> list[str]:
    roles: list[str] = []
    lowered = {g.lower() for g in groups_of_host}
    k8s = str(hostvars.get("K8S", "")).lower()
    if lowered & CONTROL_PLANE_GROUPS or k8s in ("both", "master", "control-plane"):
        roles.append("control-plane")
    if lowered & WORKER_GROUPS or k8s in ("both", "slave", "worker", "node"):
        roles.append("worker")
    if lowered & ETCD_GROUPS or str(hostvars.get("ETCD", "")).lower() in ("yes", "true", "1"):
        roles.append("etcd")
    return roles or ["worker"]


def load_ansible_inventory(path: Path) -> list[dict[str, Any]]:
    """Host entries (dicts for the params schema) from an Ansible inventory file."""
    if not path.exists():
        raise InventoryError(f"{path}: inventory file not found")
    text = path.read_text(encoding="utf-8")
    hosts: dict[str, dict[str, Any]] = {}
    groups: dict[str, set[str]] = {}
    group_vars: dict[str, dict[str, Any]] = {}
    children: dict[str, list[str]] = {}
    stripped = text.lstrip()
    if path.suffix in (".yml", ".yaml") or stripped.startswith(("all:", "---")):
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise InventoryError(f"{path}: invalid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise InventoryError(f"{path}: expected a mapping of groups")
        for group, node in data.items():
            _walk_yaml(node or {}, group, hosts, groups, group_vars, children)
    else:
        hosts, groups, group_vars, children = _parse_ini(text, path)

    def expand(group: str, seen: set[str]) -> set[str]:
        if group in seen:
            return set()
        seen.add(group)
        members = set(groups.get(group, set()))
        for child in children.get(group, []):
            members |= expand(child, seen)
        return members

    member_of: dict[str, set[str]] = {h: set() for h in hosts}
    for group in groups:
        for host in expand(group, set()):
            member_of.setdefault(host, set()).add(group)

    entries = []
    for name, hv in hosts.items():
        merged: dict[str, Any] = {}
        for group in sorted(member_of[name]):
            merged.update(group_vars.get(group, {}))
        merged.update(hv)
        entry: dict[str, Any] = {
            "name": name,
            "address": str(merged.get("ansible_host") or merged.get("ansible_ssh_host") or name),
            "roles": _roles(member_of[name], merged),
        }
        port = merged.get("ansible_port") or merged.get("ansible_ssh_port")
        if port is not None:
            try:
                entry["port"] = int(port)
            except ValueError as exc:
                raise InventoryError(f"{path}: host {name}: port {port!r} is not a number") from exc
        user = merged.get("ansible_user") or merged.get("ansible_ssh_user")
        if user:
            entry["user"] = str(user)
        key = merged.get("ansible_ssh_private_key_file")
        if key:
            key_path = Path(str(key)).expanduser()
            entry["key"] = str(key_path if key_path.is_absolute() else (path.parent / key_path))
        if str(merged.get("runbooks_lab", "")).lower() in ("true", "yes", "1"):
            entry["lab"] = True
        entries.append(entry)
    if not entries:
        raise InventoryError(f"{path}: no hosts found")
    return entries
