"""A lab test module's own lab: brought up unless it is up, taken down afterwards when this brought it up
(kept with RUNBOOKS_KEEP_LAB), and the parameter file that points a run at it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from runbooks_lib.lab import lab


@contextlib.contextmanager
def own_lab(name: str, nodes: int) -> Iterator[lab.LabState]:
    started = not lab.is_up(name)
    state = lab.up(name, nodes=nodes)
    try:
        yield state
    finally:
        if started and not os.environ.get("RUNBOOKS_KEEP_LAB"):
            lab.down(name)


def params_file(state: lab.LabState, path: Path) -> Path:
    """cluster_name, inventory, known_hosts and the lab API server's kubeconfig, written to ``path``."""
    path.write_text(f"cluster_name: {state.name}\ninventory: {state.inventory}\n"
                    f"ssh: {{known_hosts: {state.known_hosts}}}\nkube: {{kubeconfig: {state.kubeconfig}}}\n")
    return path
