"""Find etcd on a control-plane node and check it before a backup: discover (endpoint, certificates,
tools), preflight (endpoint status), free space.

Every function takes the node's :class:`~runbooks_lib.transport.Transport` and the chapter's
:class:`Settings`; commands run with sudo and a timeout and are recorded as evidence by the transport.
A step returns its checks as ``(check, host, status, detail)`` rows; :mod:`.chapter` records them.
"""

from __future__ import annotations

import datetime as dt
import shlex
import time
from dataclasses import dataclass, field
from typing import Any

from ...transport import Transport
from . import config as cfgmod
from .etcdctl import (
    Client,
    Diagnosis,
    EndpointStatus,
    diagnose,
    parse_df,
    parse_endpoint_status,
    parse_listening_ports,
)
from .settings import Settings

CheckRow = tuple[str, str, str, str]
q = shlex.quote


class EtcdError(RuntimeError):
    """A step failed; ``diagnosis`` says why (its status is fail or unreachable)."""

    def __init__(self, diagnosis: Diagnosis) -> None:
        super().__init__(str(diagnosis))
        self.diagnosis = diagnosis


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- discover


@dataclass
class Target:
    """etcd as seen from one node: how to reach it and which tools the node has."""

    node: str
    client: Client
    config: cfgmod.EtcdConfig | None
    discovered_from: str
    tools: dict[str, str | None]
    notes: list[str] = field(default_factory=list)

    def status_argv(self, path: str) -> list[str]:
        """Snapshot status: etcdutl when the node has it (3.5+), else etcdctl (3.4)."""
        if self.tools.get("etcdutl"):
            return [str(self.tools["etcdutl"]), "snapshot", "status", path, "-w", "json"]
        return ["env", "ETCDCTL_API=3", self.client.etcdctl, "snapshot", "status", path, "-w", "json"]

    def restore_argv(self, path: str, *args: str) -> list[str]:
        if self.tools.get("etcdutl"):
            return [str(self.tools["etcdutl"]), "snapshot", "restore", path, *args]
        return ["env", "ETCDCTL_API=3", self.client.etcdctl, "snapshot", "restore", path, *args]

    @property
    def status_tool(self) -> str:
        return "etcdutl" if self.tools.get("etcdutl") else "etcdctl"

    def summary(self) -> dict[str, Any]:
        return {"node": self.node, "endpoint": self.client.endpoint, "cacert": self.client.cacert,
                "cert": self.client.cert, "key": self.client.key, "discovered_from": self.discovered_from,
                "data_dir": self.config.data_dir if self.config else None,
                "member": self.config.name if self.config else None,
                "status_tool": self.status_tool, "etcdctl": self.tools.get("etcdctl"),
                "etcd": self.tools.get("etcd"), "notes": "; ".join(self.notes)}


def read_config(t: Transport, s: Settings) -> cfgmod.EtcdConfig | None:
    """etcd's configuration on the node: kubeadm's manifest, else the systemd unit, else None."""
    text = t.read_file(s.manifest)
    if text is not None:
        return cfgmod.parse_manifest(text, s.manifest)
    res = t.run(["systemctl", "cat", "--no-pager", s.unit], timeout=30)
    if res.ok and "ExecStart" in res.stdout:
        envs = {}
        for f in cfgmod.environment_files(res.stdout):
            f = f.replace("%p", s.unit.removesuffix(".service"))
            content = t.read_file(f)
            if content is not None:
                envs[f] = content
        return cfgmod.parse_unit(res.stdout, s.unit, envs)
    return None


def discover(t: Transport, s: Settings) -> Target:
    """Endpoint and certificates from the settings, else from the manifest/unit on the node."""
    notes: list[str] = []
    cfg = read_config(t, s)
    tools_res = t.run(
        " ; ".join(f"printf '%s=%s\\n' {name} \"$(command -v {q(path)} 2>/dev/null)\""
                   for name, path in (("etcdctl", s.etcdctl), ("etcdutl", s.etcdutl), ("etcd", s.etcd_binary))),
        timeout=30)
    tools: dict[str, str | None] = {}
    for line in tools_res.stdout.splitlines():
        k, _, v = line.partition("=")
        tools[k] = v.strip() or None
    if s.endpoint:
        endpoint, source = s.endpoint, "parameters"
    elif cfg is not None and cfg.local_client_url():
        endpoint, source = str(cfg.local_client_url()), cfg.source
    else:
        endpoint, source = "https://127.0.0.1:2379", "default (no manifest or unit found)"
    cacert, cert, key = s.cacert, s.cert, s.key
    defaults = type(s)()
    if cfg is not None and not s.endpoint and cfg.tls.get("cacert") and s.cacert == defaults.cacert:
        cacert = str(cfg.tls["cacert"])
    if cert == defaults.cert and key == defaults.key:
        probe = t.run(f"test -r {q(cert)} && test -r {q(key)}", timeout=30)
        server = (cfg.tls if cfg else {}) or {}
        scrt = server.get("cert") or defaults.cert.replace("healthcheck-client", "server")
        skey = server.get("key") or defaults.key.replace("healthcheck-client", "server")
        if not probe.ok and t.run(f"test -r {q(str(scrt))} && test -r {q(str(skey))}", timeout=30).ok:
            notes.append(f"{cert} not found: using etcd's server certificate {scrt} (it has client auth)")
            cert, key = str(scrt), str(skey)
    if endpoint.startswith("http://"):
        cacert_opt = cert_opt = key_opt = None
    else:
        cacert_opt, cert_opt, key_opt = cacert, cert, key
    client = Client(tools.get("etcdctl") or s.etcdctl, endpoint, cacert_opt, cert_opt, key_opt, s.timeouts.dial_s)
    return Target(t.name, client, cfg, source, tools, notes)


# ----------------------------------------------------------------------------- preflight


@dataclass
class Preflight:
    status: EndpointStatus
    duration_s: float
    free_bytes: int | None = None  # free space in ``space_dir`` (or its nearest existing parent), when asked


def explain_failure(t: Transport, target: Target, s: Settings, failed_output: str = "") -> Diagnosis:
    """Re-run a cheap call with --debug and name the cause (missing file, CA, SAN, port, ...).

    When that call works, the connection is fine and the failed command's own error is the cause.
    """
    if not target.tools.get("etcdctl"):
        return Diagnosis("etcdctl_missing", "fail", f"{s.etcdctl} is not installed on {t.name} (etcd-client / "
                                                    "etcd release tarball)")
    for label, path in (("cacert", target.client.cacert), ("cert", target.client.cert), ("key", target.client.key)):
        if path and not t.run(f"test -e {q(path)}", timeout=30).ok:
            return Diagnosis("cert_file_missing", "fail", f"{label} file {path} is missing on {t.name}")
    res = t.run(target.client.argv("endpoint", "status", "-w", "json", timeout_s=min(5.0, s.timeouts.command_s),
                                   debug=True),
                timeout=s.timeouts.dial_s + s.timeouts.command_s + 15,
                display=target.client.shell("endpoint", "status", "-w", "json", debug=True) + "  # diagnosis")
    if res.ok:
        last = [ln for ln in failed_output.strip().splitlines() if ln.strip() and '"level"' not in ln]
        return Diagnosis("command_failed", "fail", "etcd is reachable over TLS, but the command failed: "
                         + (last[-1][:300] if last else "no output"))
    diag = diagnose(res.stdout + "\n" + res.stderr, target.client)
    if diag.cause == "refused":
        ports = parse_listening_ports(t.run("ss -ltnH", timeout=30).stdout)
        port = int(target.client.endpoint.rsplit(":", 1)[-1].split("/")[0]) if ":" in target.client.endpoint else 2379
        if 2379 in ports and port != 2379:
            return Diagnosis("wrong_port", "fail", f"nothing listens on port {port}, but port 2379 (etcd's client "
                                                   "port) does: fix the endpoint's port")
    return diag


def preflight(t: Transport, target: Target, s: Settings, space_dir: str | None = None,
              create: bool = False) -> Preflight:
    """``endpoint status`` over TLS; on failure, the named cause (raises EtcdError).

    With ``space_dir``, the same command reads its free space (``df``); with ``create`` it creates the
    directory (0700) when missing, else (plan) it reads the nearest existing parent and writes nothing.
    """
    t0 = time.monotonic()
    if not target.tools.get("etcdctl"):
        raise EtcdError(explain_failure(t, target, s))
    cmd = shlex.join(target.client.argv("endpoint", "status", "-w", "json", timeout_s=s.timeouts.command_s))
    if space_dir is not None:
        cmd = f"{cmd}; rc=$?; echo {_DF_MARK}; {_df_cmd(space_dir, create)} || exit 1; exit $rc"
    res = t.run(cmd, timeout=s.timeouts.dial_s + s.timeouts.command_s + 15)
    out, _, df = res.stdout.partition(f"{_DF_MARK}\n")
    if not res.ok:
        if res.exit_code == 1 and space_dir is not None and not df.strip():
            raise EtcdError(Diagnosis("backup_dir", "fail", f"cannot create or read {space_dir}: "
                                      + res.stderr.strip()[-200:]))
        raise EtcdError(explain_failure(t, target, s))
    st = parse_endpoint_status(out)
    if not st:
        raise EtcdError(Diagnosis("unknown", "fail", "endpoint status returned nothing"))
    return Preflight(st[0], time.monotonic() - t0, parse_df(df) if space_dir is not None else None)


# ----------------------------------------------------------------------------- space


_DF_MARK = "--- df"


def mkdir_owned(path: str) -> str:
    """Shell: create ``path`` 0700 when it does not exist; an existing directory is left as it is."""
    return f"{{ [ -d {q(path)} ] || {{ mkdir -p {q(path)} && chmod 0700 {q(path)}; }}; }}"


def _df_cmd(path: str, create: bool) -> str:
    if create:
        return f"{mkdir_owned(path)} && df -PB1 {q(path)}"
    return f"d={q(path)}; while [ ! -d \"$d\" ]; do d=$(dirname \"$d\"); done; df -PB1 \"$d\""


def free_bytes(t: Transport, path: str, create: bool = False) -> int:
    """Free bytes in ``path`` (created 0700 when missing and ``create``; else its nearest existing parent)."""
    return parse_df(t.run(_df_cmd(path, create), timeout=30, check=True).stdout)


def space_rows(needed: int, available: dict[str, int]) -> list[CheckRow]:
    """A check per location: enough free space for ``needed`` bytes?"""
    rows = []
    for where, free in available.items():
        ok = free >= needed
        rows.append(("free space before writing", where, "pass" if ok else "fail",
                     f"{mb(free)} free, need {mb(needed)}" + ("" if ok else ": backup disk full; nothing written")))
    return rows


def mb(n: int | float) -> str:
    return f"{n / 1e6:.1f} MB"
