"""Parameters of the etcd-backup chapter (the `etcd_backup:` section of a parameter file).

Every field has a default that works on the lab (Debian's etcd 3.4 with kubeadm's certificate
layout) and on a kubeadm control-plane node that has etcdctl installed.
"""

from __future__ import annotations

import posixpath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PKI = "/etc/kubernetes/pki/etcd"

#: directories a backup location must never be: the chapter creates its directory 0700 and deletes
#: snapshots in it, which would break (or empty) a shared system directory
SYSTEM_DIRS = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/media", "/mnt", "/opt", "/proc", "/root",
    "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/local", "/var", "/var/backups", "/var/lib", "/var/log",
    "/var/run", "/var/tmp", "/var/cache", "/var/spool", "/etc/kubernetes", "/etc/kubernetes/pki",
    "/etc/kubernetes/pki/etcd", "/etc/kubernetes/manifests", "/var/lib/etcd", "/var/lib/kubelet",
})


def refuse_system_dir(path: str, absolute: bool = True) -> str:
    """``path`` unless it is (normalized) a system directory; with ``absolute``, it must be absolute."""
    if absolute and not path.startswith("/"):
        raise ValueError(f"{path!r} must be an absolute path on the node")
    norm = posixpath.normpath(path) if path.startswith("/") else path
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    if norm in SYSTEM_DIRS:
        raise ValueError(f"{path!r} is a system directory; give a directory of its own for snapshots "
                         "(e.g. /var/backups/etcd): the chapter makes it 0700 and deletes old snapshots in it")
    return path


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Retention(_Strict):
    """Which snapshots to keep in every backup location (the newest verified one is always kept)."""

    policy: Literal["count", "exponential"] = Field(
        "count", description="count: the N newest; exponential: all of the last hour, hourly for 24 h, "
                             "daily for 7 d, weekly for 4 weeks (Gardener's scheme)")
    keep: int = Field(3, ge=1, le=10_000, description="N for policy=count")


class Timeouts(_Strict):
    """Every wait is bounded (seconds)."""

    dial_s: float = Field(3.0, gt=0, le=60, description="etcdctl --dial-timeout")
    command_s: float = Field(15.0, gt=0, le=600, description="short etcdctl calls (status, health, count)")
    snapshot_s: float = Field(900.0, gt=0, le=86_400, description="snapshot save (streams the whole db)")
    verify_s: float = Field(600.0, gt=0, le=86_400, description="snapshot status + sha256 on the node")
    copy_s: float = Field(1800.0, gt=0, le=86_400, description="copy to a backup location")
    drill_start_s: float = Field(60.0, gt=0, le=3600, description="throwaway etcd must answer within this")
    drill_max_s: float = Field(900.0, gt=0, le=86_400,
                               description="the throwaway etcd is killed by `timeout` after this, whatever happens")
    restore_s: float = Field(600.0, gt=0, le=86_400, description="one restore step (restore, stop, start)")
    healthy_s: float = Field(120.0, gt=0, le=3600, description="etcd healthy again after a restore")


class RestoreSettings(_Strict):
    """The real restore (mode=apply and confirm=<cluster name>); never into the live data dir."""

    enabled: bool = Field(False, description="run the restore step (still needs mode=apply + confirm)")
    snapshot: str = Field("latest", description='"latest" (newest verified snapshot in remote_dir) or a path '
                                                "on the node")
    data_dir: str | None = Field(None, description="new data dir; default <live data dir>-restore-<UTC time>")
    restart_kubelet: bool = Field(True, description="kubeadm: restart kubelet after the manifests are back")


class Settings(_Strict):
    """etcd snapshot, verify, ship, retain, restore drill, restore."""

    node: str | None = Field(None, description="control-plane host to back up from; default the first host "
                                               "with role control-plane (or etcd)")
    endpoint: str | None = Field(
        None, description="etcd client URL; None = discover from the static pod manifest (kubeadm) or the "
                          "systemd unit, else https://127.0.0.1:2379")
    manifest: str = Field("/etc/kubernetes/manifests/etcd.yaml", description="kubeadm's etcd static pod")
    unit: str = Field("etcd", description="systemd unit of a non-kubeadm etcd (the lab)")
    cacert: str = Field(f"{PKI}/ca.crt", description="CA of etcd's serving certificate")
    cert: str = Field(f"{PKI}/healthcheck-client.crt",
                      description="client certificate (falls back to server.crt when this one is missing)")
    key: str = Field(f"{PKI}/healthcheck-client.key", description="its private key (a path, never the key)")
    etcdctl: str = Field("etcdctl", description="etcdctl on the node (API v3)")
    etcdutl: str = Field("etcdutl", description="etcdutl on the node (etcd 3.5+); used when present")
    etcd_binary: str = Field("etcd", description="etcd binary on the node for the restore drill")
    remote_dir: str = Field("/var/backups/etcd", description="snapshot directory on the node")
    local_dir: str | None = Field(
        None, description="copy on the runner (SFTP); None = backups/etcd/<cluster> "
                          "(git-ignored); empty string = no local copy")
    copy_to_host: str | None = Field(None, description="inventory host that keeps a second copy")
    copy_to_dir: str = Field("/var/backups/etcd-copies", description="directory on copy_to_host")
    retention: Retention = Retention()
    gzip: bool = Field(False, description="store snapshots gzip-compressed (after verification and drill)")
    drill: bool = Field(True, description="restore drill on every run: restore + throwaway etcd + compare")
    free_space_factor: float = Field(
        1.5, ge=1.0, le=10.0, description="need db size x this free in every backup location before writing")
    timeouts: Timeouts = Timeouts()
    restore: RestoreSettings = RestoreSettings()

    @field_validator("remote_dir", "copy_to_dir")
    @classmethod
    def _node_dir(cls, v: str) -> str:
        return refuse_system_dir(v)

    @field_validator("local_dir")
    @classmethod
    def _local_dir(cls, v: str | None) -> str | None:
        if not v:
            return v
        import os.path

        return refuse_system_dir(os.path.abspath(os.path.expanduser(v)), absolute=False) and v
