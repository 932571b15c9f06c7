"""Firewall: disable it, or open exactly the Kubernetes ports of the node's roles."""

from __future__ import annotations

from ..facts.firewall import Firewall
from . import Change, NoChange

#: kubeadm's documented ports per role (TCP)
ROLE_PORTS = {
    "control-plane": ("6443", "2379-2380", "10250", "10257", "10259"),
    "etcd": ("2379-2380",),
    "worker": ("10250", "10256", "30000-32767"),
}


def ports_for(roles: list[str]) -> list[str]:
    out: list[str] = []
    for role in roles:
        for p in ROLE_PORTS.get(role, ()):
            if f"{p}/tcp" not in out:
                out.append(f"{p}/tcp")
    return out


def change(fw: Firewall, mode: str, roles: list[str], unit_enabled: bool) -> Change | NoChange:
    if mode == "disable":
        if not fw.installed:
            return NoChange("firewall", f"{fw.tool} is not installed")
        if not fw.running and not unit_enabled:
            return NoChange("firewall", f"{fw.tool} is stopped and disabled")
        cmds = (["systemctl disable --now firewalld"] if fw.tool == "firewalld"
                else ["ufw disable", "systemctl disable --now ufw"])
        return Change("firewall", f"disable {fw.tool}", cmds)
    wanted = ports_for(roles)
    if not fw.installed or not fw.running:
        return NoChange("firewall", f"{fw.tool} is {'not installed' if not fw.installed else 'not running'}:"
                        " nothing blocks the Kubernetes ports")
    missing = [p for p in wanted if p not in fw.open_ports]
    if not missing:
        return NoChange("firewall", f"{fw.tool} allows {', '.join(wanted)}")
    if fw.tool == "firewalld":
        cmds = [f"firewall-cmd --permanent --add-port={p}" for p in missing] + ["firewall-cmd --reload"]
    else:
        cmds = [f"ufw allow {p.replace('-', ':')}" for p in missing]
    return Change("firewall", f"open {', '.join(missing)} in {fw.tool}", cmds)
