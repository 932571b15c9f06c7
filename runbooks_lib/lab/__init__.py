"""The podman lab: real nodes (systemd, sshd, etcd with TLS) on this machine.

Python API: ``up(name="lab", nodes=3, image="debian") -> LabState``, ``down(name)``,
``status(name)``, ``is_up(name)``; the CLI hook is :func:`runbooks_lib.lab.cli.add_lab_parser`.
"""

from .lab import LabError, LabState, NodeState, down, is_up, load_state, status, up

__all__ = ["LabError", "LabState", "NodeState", "down", "is_up", "load_state", "status", "up"]
