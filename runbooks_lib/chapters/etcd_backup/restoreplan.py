"""Restore etcd from a snapshot: a plan of steps (pure), then its execution (destructive, confirmed).

kubeadm stacked etcd, as the Kubernetes and etcd docs describe it: stop the static pods of
the API server, controller-manager, scheduler and etcd on every control-plane node (move the
manifests away), restore the *same* snapshot on every member with its own ``--name`` and peer
URL, the full ``--initial-cluster`` and a new ``--initial-cluster-token`` into a NEW data dir
(0700, owned like the old one), point etcd.yaml's data ``hostPath`` at it, bring etcd back,
check health, members and revision, then the other components, then restart kubelet.

A systemd etcd (the lab): the same with ``systemctl stop etcd``, the unit's ``--data-dir``
repointed and ``systemctl start etcd``. The live data dir is never written to; it stays as it
was, for a rollback (put the old path back and restart).
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from dataclasses import dataclass, field

from . import config as cfgmod

q = shlex.quote
CONTROL_PLANE_MANIFESTS = ("kube-apiserver.yaml", "kube-controller-manager.yaml", "kube-scheduler.yaml")


@dataclass
class Step:
    host: str
    what: str
    command: str | None = None  # shell, run with sudo
    write_path: str | None = None  # or: write this file
    content: str | None = None
    mode: str = "0644"
    timeout: float = 120.0

    def row(self) -> dict[str, str]:
        cmd = self.command if self.command is not None else f"write {self.write_path} ({len(self.content or '')} bytes)"
        return {"host": self.host, "step": self.what, "command": cmd}


@dataclass
class Member:
    """One etcd member to restore: where it runs and how it is configured."""

    host: str
    config: cfgmod.EtcdConfig
    snapshot: str  # the snapshot's path on this host
    config_text: str  # manifest or unit file text, as read
    config_path: str  # where that text lives (etcd.yaml, or the unit/env file that sets the data dir)
    endpoint: str  # local client URL for the health check
    client_args: list[str] = field(default_factory=list)  # --cacert=... --cert=... --key=...


def new_data_dir(live: str, when: dt.datetime) -> str:
    """``<live>-restore-<UTC>``; a live dir that is itself a restore keeps one suffix, not two."""
    base = re.sub(r"-restore-\d{8}T\d{6}Z$", "", live.rstrip("/"))
    return f"{base}-restore-{when.strftime('%Y%m%dT%H%M%SZ')}"


def initial_cluster(members: list[Member]) -> str:
    parts = []
    for m in members:
        peer = (m.config.peer_urls or m.config.initial_cluster.get(m.config.name, "").split(",") or [""])[0]
        if not peer:
            raise cfgmod.ConfigError(f"{m.host}: no --initial-advertise-peer-urls for member {m.config.name}")
        parts.append(f"{m.config.name}={peer}")
    return ",".join(parts)


def _restore_cmd(restore_argv: list[str], m: Member, new_dir: str, cluster: str, token: str) -> str:
    peer = m.config.peer_urls[0] if m.config.peer_urls else cluster.split(f"{m.config.name}=", 1)[1].split(",")[0]
    argv = restore_argv + [f"--name={m.config.name}", f"--initial-cluster={cluster}",
                           f"--initial-advertise-peer-urls={peer}", f"--initial-cluster-token={token}",
                           f"--data-dir={new_dir}"]
    live = m.config.data_dir
    return (f"test ! -e {q(new_dir)} || {{ echo 'refusing: {new_dir} exists' >&2; exit 1; }}; "
            f"{shlex.join(argv)} && chown -R --reference={q(live)} {q(new_dir)} && chmod 0700 {q(new_dir)}")


def _wait_healthy(m: Member, etcdctl: str, timeout: float) -> str:
    health = shlex.join(["env", "ETCDCTL_API=3", etcdctl, f"--endpoints={m.endpoint}", "--dial-timeout=2s",
                         "--command-timeout=3s", *m.client_args, "endpoint", "health"])
    tries = max(1, int(timeout / 1.0))
    return (f"i=0; while [ $i -lt {tries} ]; do {health} && exit 0; i=$((i+1)); sleep 1; done; "
            "echo 'etcd not healthy in time' >&2; exit 1")


def check_not_live(members: list[Member], new_dir: str) -> None:
    for m in members:
        if new_dir.rstrip("/") == m.config.data_dir.rstrip("/"):
            raise ValueError(f"{m.host}: refusing to restore into the live data dir {new_dir}")


def plan_systemd(m: Member, restore_argv: list[str], etcdctl: str, new_dir: str, token: str, unit: str,
                 stamp: str, healthy_s: float = 120.0, restore_s: float = 600.0) -> list[Step]:
    """A systemd etcd (single member): stop, restore into NEW, repoint the unit, start, wait healthy."""
    check_not_live([m], new_dir)
    cluster = initial_cluster([m])
    repointed = cfgmod.repoint_unit(m.config_text, m.config.data_dir, new_dir)
    return [
        Step(m.host, f"restore the snapshot into the new data dir {new_dir}",
             _restore_cmd(restore_argv, m, new_dir, cluster, token), timeout=restore_s),
        Step(m.host, f"stop {unit}", f"systemctl stop {q(unit)}", timeout=restore_s),
        Step(m.host, f"keep a copy of {m.config_path}",
             f"cp -p {q(m.config_path)} {q(m.config_path + '.runbooks-bak-' + stamp)}"),
        Step(m.host, f"point {m.config_path} at {new_dir}", write_path=m.config_path, content=repointed),
        Step(m.host, f"start {unit}", f"systemctl daemon-reload && systemctl start {q(unit)}", timeout=restore_s),
        Step(m.host, "wait until etcd is healthy", _wait_healthy(m, etcdctl, healthy_s), timeout=healthy_s + 30),
    ]


def plan_kubeadm(members: list[Member], restore_argv: list[str], etcdctl: str, new_dir: str, token: str,
                 stamp: str, manifests_dir: str = "/etc/kubernetes/manifests", restart_kubelet: bool = True,
                 healthy_s: float = 120.0, restore_s: float = 600.0) -> list[Step]:
    """kubeadm stacked etcd on every control-plane member (see the module doc)."""
    check_not_live(members, new_dir)
    cluster = initial_cluster(members)
    parked = f"{manifests_dir.rstrip('/')}-runbooks-restore-{stamp}"
    steps: list[Step] = []
    names = " ".join(q(n) for n in (*CONTROL_PLANE_MANIFESTS, "etcd.yaml"))
    for m in members:
        steps.append(Step(m.host, f"stop the control plane: move its static pod manifests to {parked}",
                          f"mkdir -p {q(parked)} && cd {q(manifests_dir)} && for f in {names}; do "
                          f"[ -f \"$f\" ] && mv \"$f\" {q(parked)}/; done; ls {q(parked)}"))
    for m in members:
        steps.append(Step(m.host, "wait until the etcd and kube-apiserver containers are gone",
                          "i=0; while [ $i -lt 120 ]; do [ -z \"$(crictl ps -q --name '^(etcd|kube-apiserver)$' "
                          "2>/dev/null)\" ] && exit 0; i=$((i+1)); sleep 1; done; exit 1", timeout=180))
    for m in members:
        steps.append(Step(m.host, f"restore the same snapshot as member {m.config.name} into {new_dir}",
                          _restore_cmd(restore_argv, m, new_dir, cluster, token), timeout=restore_s))
    for m in members:
        steps.append(Step(m.host, f"etcd.yaml: data hostPath -> {new_dir}, back into {manifests_dir}",
                          write_path=f"{manifests_dir.rstrip('/')}/etcd.yaml",
                          content=cfgmod.repoint_manifest(m.config_text, new_dir), mode="0600"))
    for m in members:
        steps.append(Step(m.host, "wait until etcd is healthy", _wait_healthy(m, etcdctl, healthy_s),
                          timeout=healthy_s + 30))
    for m in members:
        back = " ".join(q(n) for n in CONTROL_PLANE_MANIFESTS)
        cmd = f"cd {q(parked)} && for f in {back}; do [ -f \"$f\" ] && mv \"$f\" {q(manifests_dir)}/; done; true"
        if restart_kubelet:
            cmd += " && systemctl restart kubelet"
        steps.append(Step(m.host, "start kube-apiserver, controller-manager, scheduler; restart kubelet", cmd,
                          timeout=restore_s))
    return steps
