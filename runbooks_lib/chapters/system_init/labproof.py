"""A host counts as a lab node only when its facts prove it, never because the inventory says so.

Proof = a container (systemd-detect-virt -c, /run/.containerenv or PID 1's container=), the marker file
the lab writes (``/etc/runbooks-lab``, naming the lab and this node), and one of the node's SSH host keys
in that lab's known_hosts (``.lab/<name>/known_hosts``, written by ``runbooks lab up``). A host flagged
``lab`` whose facts disagree is an ``error`` naming the host, and gets none of the lab relaxations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ...facts.lab import MARKER, LabFacts, known_host_keys
from .checks import Finding, Node

CHECK = "host.lab"


def missing_proof(facts: LabFacts, hostname: str, known_hosts: Callable[[str], str | None]) -> list[str]:
    """What is missing for ``facts`` to prove a lab node ([] when proven)."""
    missing = []
    if not facts.container:
        missing.append("not a container (systemd-detect-virt -c, /run/.containerenv, PID 1 container=)")
    name = facts.lab_name
    if name is None:
        missing.append(f"no lab marker {MARKER}")
        return missing
    if facts.marker.get("node") != hostname:
        missing.append(f"{MARKER} names node {facts.marker.get('node')!r}, this is {hostname!r}")
    text = known_hosts(name)
    if text is None:
        missing.append(f"no known_hosts for lab {name!r} on this machine (.lab/{name}/known_hosts)")
    elif not set(facts.host_keys) & known_host_keys(text):
        missing.append(f"none of its SSH host keys is in lab {name!r}'s known_hosts")
    return missing


def prove(node: Node, facts: LabFacts, hostname: str, known_hosts: Callable[[str], str | None]
          ) -> tuple[Node, Finding]:
    """The node as the checks should treat it (``lab`` only when proven) and the host.lab finding."""
    missing = missing_proof(facts, hostname, known_hosts)
    if not node.lab:
        return node, Finding(CHECK, "n/a", "not flagged lab: every check applies")
    if missing:
        return replace(node, lab=False), Finding(
            CHECK, "error", f"{node.name} is flagged lab but its facts do not prove it: {'; '.join(missing)}. "
            "Lab relaxations are not applied to it.")
    return node, Finding(CHECK, "pass", f"lab node of {facts.lab_name!r}: {facts.container}; {MARKER}; "
                         f"host key in .lab/{facts.lab_name}/known_hosts")


def lab_known_hosts(name: str) -> str | None:
    """The known_hosts `runbooks lab up` wrote for lab ``name`` on this machine (None: no such lab)."""
    from ...lab.lab import state_dir

    path = state_dir(name) / "known_hosts"
    return path.read_text(encoding="utf-8") if path.is_file() else None
