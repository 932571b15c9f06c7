"""/etc/hosts: a managed block naming every node of the inventory."""

from __future__ import annotations

from ..facts.hosts import PATH
from . import Change, NoChange
from .files import file_content, managed_block

BLOCK = "runbooks k8s nodes"


def render(current: str | None, nodes: list[tuple[str, str]]) -> str:
    return managed_block(current, BLOCK, [f"{addr} {name}" for name, addr in nodes])


def change(current: str | None, nodes: list[tuple[str, str]]) -> Change | NoChange:
    # in place: container runtimes bind-mount /etc/hosts, so a rename over it fails
    ch = file_content("hosts", PATH, current, render(current, nodes),
                      summary=f"name {len(nodes)} cluster nodes in {PATH}", in_place=True)
    if isinstance(ch, Change):
        ch.destructive = f"rewrites {PATH} (name resolution of the running node)"
    return ch
