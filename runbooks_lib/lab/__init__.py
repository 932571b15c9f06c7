"""The podman lab: real nodes (systemd, sshd, etcd with TLS) on this machine.

Python API: ``up(name="lab", nodes=3, image="debian") -> LabState``, ``down(name)``,
``status(name)``, ``is_up(name)``; the CLI hook is :func:`runbooks_lib.lab.cli.add_lab_parser`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .lab import LabError, LabState, NodeState, down, is_up, load_state, status, up

__all__ = ["LabError", "LabState", "NodeState", "down", "is_up", "load_state", "status", "up"]


def __getattr__(name: str) -> Any:
    """Lazy, so ``python -m runbooks_lib.lab.apiserver`` does not import the lab (and every chapter)."""
    if name in __all__:
        from . import lab

        return getattr(lab, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
