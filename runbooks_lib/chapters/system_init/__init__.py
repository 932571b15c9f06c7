"""Chapter 01 system-init: prepare nodes for kubeadm as a compliance engine.

``survey(run)`` reads every node (one composite command per node, nodes in parallel) and
evaluates each check; ``plan(run)`` records the verdict of that (read-only: what apply would change
is drift); ``apply(run)`` converges each node (apply the differing changes, re-read, repeat while
something is still applicable, at most 3 rounds), and the verdict is the re-read state, never exit
codes: what still differs fails. Destructive changes (swap off/mask, /etc/hosts, chrony and containerd
restarts) need ``confirm=<cluster name>``; without it apply leaves them as drift "needs confirm".
A host gets the lab relaxations only when its facts prove it is a lab node (``labproof``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import lazy_exports

if TYPE_CHECKING:  # the names, typed; at run time imported on first use (below)
    from .chapter import apply, plan, record
    from .steps import Applied, NodeResult, Result, applied_text, changes_text, context, converge, survey

_EXPORTS = {
    "apply": "chapter",
    "plan": "chapter",
    "record": "chapter",
    "Applied": "steps",
    "NodeResult": "steps",
    "Result": "steps",
    "applied_text": "steps",
    "changes_text": "steps",
    "context": "steps",
    "converge": "steps",
    "survey": "steps",
}
__all__ = ["apply", "plan", "record", "Applied", "NodeResult", "Result", "applied_text", "changes_text", "context", "converge", "survey"]

__getattr__ = lazy_exports(__name__, _EXPORTS)
