"""Chapter etcd-backup: verified snapshots, retention, restore drill, real restore, scheduled runs.

Layers: ``config`` (pure parsers of kubeadm's etcd.yaml and systemd units), ``etcdctl`` (command
lines, output parsers, failure diagnosis), ``retention`` (pure policy), ``node`` (steps on a node
through a transport), ``restoreplan`` (the restore plan), ``chapter`` (what the notebook calls),
``store`` (backup locations: listing, re-check against sidecars, retention), ``remote/`` (the programs
run on the node). A real TLS etcd on 127.0.0.1 for tests and the benchmark is the lab's
(:mod:`runbooks_lib.lab.localetcd`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import lazy_exports

if TYPE_CHECKING:  # the names, typed; at run time imported on first use (below)
    from .chapter import (
        BackupResult,
        Pinned,
        RestorePlan,
        backup,
        discover,
        drill,
        history,
        node_name,
        pin_restore,
        plan_restore,
        plot_history,
        record_figures,
        restore,
        retain,
        retention_frame,
    )

_EXPORTS = {
    "BackupResult": "chapter",
    "Pinned": "chapter",
    "RestorePlan": "chapter",
    "backup": "chapter",
    "discover": "chapter",
    "drill": "chapter",
    "history": "chapter",
    "node_name": "chapter",
    "pin_restore": "chapter",
    "plan_restore": "chapter",
    "plot_history": "chapter",
    "record_figures": "chapter",
    "restore": "chapter",
    "retain": "chapter",
    "retention_frame": "chapter",
}
__all__ = ["BackupResult", "Pinned", "RestorePlan", "backup", "discover", "drill", "history", "node_name", "pin_restore", "plan_restore", "plot_history", "record_figures", "restore", "retain", "retention_frame"]

__getattr__ = lazy_exports(__name__, _EXPORTS)
