"""Chapter etcd-backup: verified snapshots, retention, restore drill, real restore, scheduled runs.

Layers: ``config`` (pure parsers of kubeadm's etcd.yaml and systemd units), ``etcdctl`` (command
lines, output parsers, failure diagnosis), ``retention`` (pure policy), ``node`` (steps on a node
through a transport), ``restoreplan`` (the restore plan), ``chapter`` (what the notebook calls),
``store`` (backup locations: listing, re-check against sidecars, retention), ``localetcd`` (a real
TLS etcd on 127.0.0.1 for tests and the benchmark).
"""

from __future__ import annotations

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

__all__ = [
    "BackupResult", "Pinned", "RestorePlan", "backup", "discover", "drill", "history", "node_name", "pin_restore",
    "plan_restore",
    "plot_history", "record_figures", "restore", "retain", "retention_frame",
]
