"""Import an existing Ansible inventory (INI or YAML) into runbooks host entries, as Ansible reads it.

Groups: ``[group]``, ``[group:vars]``, ``[group:children]`` (INI) and ``hosts`` / ``vars`` /
``children`` (YAML); host ranges (``www[01:50:2].example.com``, ``db-[a:f]``) and ``host:port``.
Variables merge with Ansible's precedence: the ``all`` group, then parent groups, then child
groups (same depth: ``ansible_group_priority``, then name), then ``group_vars/all``, then other
``group_vars/<group>`` next to the inventory, then the host's own vars, then ``host_vars/<host>``.
Used: ``ansible_host`` / ``ansible_ssh_host``, ``ansible_port`` / ``ansible_ssh_port``,
``ansible_user`` / ``ansible_ssh_user``, ``ansible_ssh_private_key_file``. Passwords are refused
(runbooks connects with SSH keys only), and never echoed. Groups map to roles by name
(Kubespray's ``kube_control_plane``, ``kube_node``, ``etcd``, the usual ``masters``/``nodes``), and
the seed's host vars ``K8S=both|master|slave`` and ``ETCD=yes`` are honoured too.
"""

from __future__ import annotations

import ast
import re
import shlex
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .paramfile import FileProblem, load_yaml, read_text

CONTROL_PLANE_GROUPS = {"kube_control_plane", "kube-master", "kube_master", "kube-controlplane", "masters",
                        "master", "control_plane", "control-plane", "controlplane", "k8s_master"}
WORKER_GROUPS = {"kube_node", "kube-node", "nodes", "node", "workers", "worker", "k8s_node"}
ETCD_GROUPS = {"etcd"}
PASSWORD_VARS = {"ansible_password", "ansible_ssh_pass", "ansible_ssh_password", "ansible_become_pass",
                 "ansible_become_password", "ansible_sudo_pass", "ansible_sudo_password", "ansible_su_pass",
                 "ansible_su_password", "ansible_ssh_private_key_passphrase"}
ADDRESS_VARS = ("ansible_host", "ansible_ssh_host", "ansible_port", "ansible_ssh_port")
USED_VARS = (*ADDRESS_VARS, "ansible_user", "ansible_ssh_user", "ansible_ssh_private_key_file")
SSH_CONNECTIONS = {"ssh", "smart", "paramiko", "paramiko_ssh", "ansible.builtin.ssh"}
MAX_HOSTS = 10_000
_RANGE = re.compile(r"^(.*?)\[([^\]:]*):([^\]:]+)(?::(\d+))?\](.*)$")


class InventoryError(ValueError):
    """An inventory that cannot be used; one problem per line, each naming the file and line or host."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class _Vault:
    """An ``!vault`` value: opaque here (runbooks never decrypts)."""


@dataclass
class _Group:
    hosts: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)


@dataclass
class _Inventory:
    path: Path
    groups: dict[str, _Group] = field(default_factory=lambda: {"all": _Group(), "ungrouped": _Group()})
    hostvars: dict[str, dict[str, Any]] = field(default_factory=dict)
    origin: dict[tuple[str, str], str] = field(default_factory=dict)  # (host, var) -> where it was set
    problems: list[str] = field(default_factory=list)
    var_files: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def group(self, name: str) -> _Group:
        return self.groups.setdefault(name, _Group())

    def vet(self, where: str, values: dict[str, Any]) -> dict[str, Any]:
        """Refuse passwords and non-SSH connections (the value is never shown)."""
        for key in sorted(set(values) & PASSWORD_VARS):
            self.problems.append(
                f"{where}: sets {key}; runbooks connects with SSH keys only and takes no password from an "
                "inventory (value not shown). Remove it and give ansible_ssh_private_key_file, "
                "or leave it out to use ssh-agent or ~/.ssh/id_*")
        conn = values.get("ansible_connection")
        if conn is not None and str(conn) not in SSH_CONNECTIONS:
            self.problems.append(f"{where}: ansible_connection={conn}: runbooks reaches every host over SSH")
        return {k: v for k, v in values.items() if k not in PASSWORD_VARS}

    def add_host(self, name: str, group: str, values: dict[str, Any], where: str) -> None:
        hv = self.hostvars.setdefault(name, {})
        for key, value in self.vet(f"{where}: host {name}", values).items():
            if key in ADDRESS_VARS and key in hv and str(hv[key]) != str(value):
                self.problems.append(f"{where}: host {name}: {key}={value} but {self.origin[(name, key)]} "
                                     f"says {key}={hv[key]}; one host cannot have two addresses")
                continue
            hv[key] = value
            self.origin[(name, key)] = where
        if name not in self.group(group).hosts:
            self.group(group).hosts.append(name)

    def add_vars(self, group: str, values: dict[str, Any], where: str) -> None:
        self.group(group).vars.update(self.vet(where, values))


def expand_hosts(pattern: str) -> list[str]:
    """Ansible host ranges: ``www[01:50].x``, ``www[01:50:2].x``, ``db-[a:f].x`` (inclusive)."""
    m = _RANGE.match(pattern)
    if not m:
        return [pattern]
    head, beg, end, step, tail = m.group(1), m.group(2) or "0", m.group(3), int(m.group(4) or 1), m.group(5)
    if step < 1:
        raise ValueError(f"range {pattern!r}: stride must be at least 1")
    if beg in string.ascii_letters and end in string.ascii_letters:
        i, j = string.ascii_letters.index(beg), string.ascii_letters.index(end)
        seq = list(string.ascii_letters[i:j + 1:step])
    elif beg.isdigit() and end.isdigit():
        width = len(beg) if beg.startswith("0") and len(beg) > 1 else 0
        if width and len(end) != width:
            raise ValueError(f"range {pattern!r}: begin and end need the same number of digits")
        if (int(end) - int(beg)) // step >= MAX_HOSTS:
            raise ValueError(f"range {pattern!r} expands to more than {MAX_HOSTS} hosts")
        seq = [str(n).zfill(width) for n in range(int(beg), int(end) + 1, step)]
    else:
        raise ValueError(f"range {pattern!r}: begin and end must both be numbers or both letters")
    if not seq:
        raise ValueError(f"range {pattern!r} is empty")
    return [h for s in seq for h in expand_hosts(f"{head}{s}{tail}")]


def _host_and_port(word: str) -> tuple[str, dict[str, Any]]:
    """``host:port`` / ``[v6addr]:port`` on an INI host line (a bare IPv6 address has no port)."""
    v6 = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?", word)
    if v6:
        return v6.group(1), ({"ansible_port": int(v6.group(2))} if v6.group(2) else {})
    m = re.fullmatch(r"((?:[^:\[\]]|\[[^\]]*\])+):(\d+)", word)
    return (m.group(1), {"ansible_port": int(m.group(2))}) if m else (word, {})


def _literal(raw: str) -> Any:
    """INI host-line values are Python literals when they parse as one, else strings (as Ansible)."""
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return raw


def _parse_ini(inv: _Inventory, text: str) -> None:
    section, kind = "ungrouped", "hosts"
    for lineno, raw in enumerate(text.splitlines(), 1):
        line, where = raw.strip(), f"{inv.path}:{lineno}"
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            m = re.fullmatch(r"\[([^\]:\s]+)(?::(\w+))?\]\s*(?:[#;].*)?", line)
            if not m:
                inv.problems.append(f"{where}: a section header is [group], [group:vars] or [group:children]")
                section, kind = "", "bad"
                continue
            section, kind = m.group(1), m.group(2) or "hosts"
            if kind not in ("hosts", "vars", "children"):
                inv.problems.append(f"{where}: unknown section kind :{kind} (hosts, vars or children)")
                kind = "bad"
            inv.group(section)
            continue
        if kind == "bad":
            continue
        if kind == "vars":
            key, sep, val = line.partition("=")
            if not sep or not key.strip():
                inv.problems.append(f"{where}: expected key=value in [{section}:vars]")
                continue
            val = val.strip()
            if len(val) >= 2 and val[0] == val[-1] and val[0] in "\"'":
                val = val[1:-1]
            inv.add_vars(section, {key.strip(): val}, f"{where} [{section}:vars]")
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            inv.problems.append(f"{where}: {exc}")
            continue
        if not words:
            continue
        if kind == "children":
            inv.group(section).children.append(words[0])
            inv.group(words[0])
            continue
        name, values = _host_and_port(words[0])
        for word in words[1:]:
            key, sep, val = word.partition("=")
            if not sep:
                inv.problems.append(f"{where}: expected key=value after the host name, got {word.split('=')[0]!r}")
                continue
            values[key] = _literal(val)
        try:
            names = expand_hosts(name)
        except ValueError as exc:
            inv.problems.append(f"{where}: {exc}")
            continue
        for host in names:
            inv.add_host(host, section, dict(values), where)


def _mapping(node: Any, what: str, inv: _Inventory) -> dict[str, Any]:
    if node is None:
        return {}
    if isinstance(node, dict):
        return node
    inv.problems.append(f"{inv.path}: {what} must be a mapping (got {type(node).__name__}; in YAML write "
                        "each name as 'name:' on its own line)")
    return {}


def _walk_yaml(inv: _Inventory, group: str, node: Any, depth: int = 0) -> None:
    if depth > 50:
        inv.problems.append(f"{inv.path}: group {group}: children nested more than 50 deep")
        return
    node = _mapping(node, f"group {group}", inv)
    inv.group(group)
    for key in sorted(set(node) - {"hosts", "vars", "children"}):
        inv.problems.append(f"{inv.path}: group {group}: unknown key {key!r} (hosts, vars or children)")
    for pattern, hv in _mapping(node.get("hosts"), f"group {group}: hosts", inv).items():
        try:
            names = expand_hosts(str(pattern))
        except ValueError as exc:
            inv.problems.append(f"{inv.path}: group {group}: {exc}")
            continue
        for host in names:
            inv.add_host(host, group, dict(_mapping(hv, f"host {host}", inv)), f"{inv.path} group {group}")
    inv.add_vars(group, _mapping(node.get("vars"), f"group {group}: vars", inv), f"{inv.path} group {group} vars")
    for child, sub in _mapping(node.get("children"), f"group {group}: children", inv).items():
        if str(child) not in inv.group(group).children:
            inv.group(group).children.append(str(child))
        _walk_yaml(inv, str(child), sub, depth + 1)


def _vars_files(inv: _Inventory, kind: str, name: str) -> dict[str, Any]:
    """``group_vars/<name>`` or ``host_vars/<name>`` next to the inventory (file, .yml/.yaml/.json, or dir)."""
    if (kind, name) in inv.var_files:
        return inv.var_files[(kind, name)]
    merged: dict[str, Any] = inv.var_files.setdefault((kind, name), {})
    base = inv.path.parent / kind
    if not base.is_dir():
        return merged
    candidates = [base / f"{name}{ext}" for ext in ("", ".yml", ".yaml", ".json")]
    files = [c for c in candidates if c.is_file()]
    if (base / name).is_dir():
        files += sorted(p for p in (base / name).rglob("*")
                        if p.is_file() and p.suffix in ("", ".yml", ".yaml", ".json"))
    for f in files:
        try:
            data = yaml.load(read_text(f, "variables file"), Loader=_VarsLoader)  # noqa: S506 - SafeLoader
        except FileProblem as exc:
            inv.problems.append(f"{f}: {exc}")
            continue
        except yaml.YAMLError:
            inv.problems.append(f"{f}: invalid YAML")
            continue
        merged.update(inv.vet(str(f), _mapping(data, "a variables file", inv)))
    return merged


class _VarsLoader(yaml.SafeLoader):
    """group_vars files may hold ``!vault`` values: kept opaque, an error only where runbooks needs one."""


_VarsLoader.add_constructor("!vault", lambda loader, node: _Vault())


def _depths(inv: _Inventory) -> dict[str, int]:
    """Longest path from ``all`` (top-level groups are children of ``all``); a cycle is a problem."""
    parents: dict[str, set[str]] = {g: set() for g in inv.groups}
    for g, grp in inv.groups.items():
        for child in grp.children:
            parents.setdefault(child, set()).add(g)
    depth: dict[str, int] = {}

    def walk(g: str, stack: tuple[str, ...]) -> int:
        if g in stack:
            inv.problems.append(f"{inv.path}: groups form a cycle: {' -> '.join((*stack, g))}")
            return 0
        if g not in depth:
            ps = parents.get(g, set()) - {"all"}
            depth[g] = 0 if g == "all" else 1 + max((walk(p, (*stack, g)) for p in ps), default=0)
        return depth[g]

    for g in list(inv.groups):
        walk(g, ())
    return depth


def _member_of(inv: _Inventory) -> dict[str, set[str]]:
    member: dict[str, set[str]] = {h: {"all"} for h in inv.hostvars}

    def hosts_of(g: str, seen: set[str]) -> set[str]:
        if g in seen:
            return set()
        seen.add(g)
        out = set(inv.groups.get(g, _Group()).hosts)
        for child in inv.groups.get(g, _Group()).children:
            out |= hosts_of(child, seen)
        return out

    for g in inv.groups:
        for h in hosts_of(g, set()):
            member.setdefault(h, {"all"}).add(g)
    for gs in member.values():
        if gs <= {"all", "ungrouped"}:
            gs.add("ungrouped")
    return member


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


def _entry(inv: _Inventory, name: str, merged: dict[str, Any], groups: set[str]) -> dict[str, Any]:
    for var in USED_VARS:
        value = merged.get(var)
        if isinstance(value, _Vault):
            inv.problems.append(f"{inv.path}: host {name}: {var} is vault-encrypted; runbooks does not decrypt "
                                "vaults, give it in clear (it is not a secret)")
        elif isinstance(value, str) and ("{{" in value or "{%" in value):
            inv.problems.append(f"{inv.path}: host {name}: {var} is a Jinja2 template; runbooks does not "
                                "evaluate templates, give a plain value")
    entry: dict[str, Any] = {
        "name": name,
        "address": str(merged.get("ansible_host") or merged.get("ansible_ssh_host") or name),
        "roles": _roles(groups, merged),
    }
    port = merged.get("ansible_port") or merged.get("ansible_ssh_port")
    if port is not None:
        try:
            entry["port"] = int(port)
        except (TypeError, ValueError):
            inv.problems.append(f"{inv.path}: host {name}: ansible_port {port!r} is not a number")
    user = merged.get("ansible_user") or merged.get("ansible_ssh_user")
    if user:
        entry["user"] = str(user)
    key = merged.get("ansible_ssh_private_key_file")
    if key:
        key_path = Path(str(key)).expanduser()
        entry["key"] = str(key_path if key_path.is_absolute() else (inv.path.parent / key_path))
    if str(merged.get("runbooks_lab", "")).lower() in ("true", "yes", "1"):
        entry["lab"] = True
    return entry


def load_ansible_inventory(path: Path) -> list[dict[str, Any]]:
    """Host entries (dicts for the params schema) from an Ansible inventory file."""
    try:
        text = read_text(path, "inventory file")
    except FileProblem as exc:
        raise InventoryError([f"{path}: {exc}"]) from None
    inv = _Inventory(path)
    first = next((ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    if path.suffix in (".yml", ".yaml", ".json") or first.startswith("---") or re.fullmatch(r"[\w.-]+:", first):
        try:
            data = load_yaml(text)
        except FileProblem as exc:
            raise InventoryError([f"{path}: {exc}"]) from None
        for group, node in _mapping(data, "the top level (groups)", inv).items():
            _walk_yaml(inv, str(group), node)
    else:
        _parse_ini(inv, text)
    depth = _depths(inv)
    member_of = _member_of(inv)
    dir_all = _vars_files(inv, "group_vars", "all")
    entries = []
    for name, own in inv.hostvars.items():
        groups = member_of[name]
        order = sorted(groups, key=lambda g: (depth.get(g, 1), _priority(inv, g), g))
        merged: dict[str, Any] = {}
        for g in order:
            merged.update(inv.groups[g].vars)
        merged.update(dir_all)
        for g in order:
            if g != "all":
                merged.update(_vars_files(inv, "group_vars", g))
        merged.update(own)
        merged.update(_vars_files(inv, "host_vars", name))
        entries.append(_entry(inv, name, merged, groups))
    if not entries and not inv.problems:
        inv.problems.append(f"{path}: no hosts found (are they all commented out?)")
    if len(entries) > MAX_HOSTS:
        inv.problems.append(f"{path}: more than {MAX_HOSTS} hosts")
    if inv.problems:
        raise InventoryError(list(dict.fromkeys(inv.problems)))
    return entries


def _priority(inv: _Inventory, group: str) -> int:
    try:
        return int(inv.groups[group].vars.get("ansible_group_priority", 1))
    except (TypeError, ValueError):
        return 1

def node_hosts(nodes: list[Any], hosts: list[Any]) -> dict[str, str]:
    """Map cluster node names to inventory hosts: same name, else same address (InternalIP)."""
    by_name = {h.name: h.name for h in hosts}
    by_addr = {h.address: h.name for h in hosts}
    out: dict[str, str] = {}
    for n in nodes:
        host = by_name.get(n.name) or (by_addr.get(n.internal_ip) if n.internal_ip else None)
        if host:
            out[n.name] = host
    return out
