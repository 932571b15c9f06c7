"""What etcd runs with: flags from kubeadm's static pod manifest or from a systemd unit (pure parsers).

kubeadm writes /etc/kubernetes/manifests/etcd.yaml with the flags as ``--name=value`` items of the
container's ``command``; the data dir is a ``hostPath`` volume (``etcd-data``) mounted at the same
path. A systemd etcd (the lab, hand-built clusters) has the same flags on ``ExecStart`` or as
``ETCD_*`` environment variables. Both end up in one :class:`EtcdConfig`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import yaml


class ConfigError(ValueError):
    """The manifest or unit cannot be read as an etcd configuration."""


@dataclass
class EtcdConfig:
    """The parts of etcd's configuration the backup and restore need."""

    source: str  # "manifest:/etc/kubernetes/manifests/etcd.yaml" or "unit:etcd"
    flags: dict[str, str] = field(default_factory=dict)
    host_data_dir: str | None = None  # the host directory holding the data (hostPath for kubeadm)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.flags.get(name, default)

    @property
    def kind(self) -> str:
        return self.source.split(":", 1)[0]

    @property
    def name(self) -> str:
        return self.flags.get("name", "default")

    @property
    def data_dir(self) -> str:
        """The data dir on the host (for kubeadm: the hostPath behind the container's --data-dir)."""
        return self.host_data_dir or self.flags.get("data-dir") or f"{self.name}.etcd"

    @property
    def client_urls(self) -> list[str]:
        return _urls(self.flags.get("listen-client-urls") or self.flags.get("advertise-client-urls") or "")

    @property
    def peer_urls(self) -> list[str]:
        return _urls(self.flags.get("initial-advertise-peer-urls") or "")

    @property
    def initial_cluster(self) -> dict[str, str]:
        """{member name: peer URL} from --initial-cluster (as the member was started)."""
        out: dict[str, str] = {}
        for part in _urls(self.flags.get("initial-cluster") or ""):
            name, sep, url = part.partition("=")
            if sep:
                out[name] = url
        return out

    @property
    def tls(self) -> dict[str, str | None]:
        return {"cacert": self.flags.get("trusted-ca-file"), "cert": self.flags.get("cert-file"),
                "key": self.flags.get("key-file")}

    def local_client_url(self) -> str | None:
        """The client URL to use on the node itself: loopback first, https first."""
        urls = self.client_urls
        if not urls:
            return None

        def rank(u: str) -> tuple[int, int]:
            s = urlsplit(u)
            return (0 if s.hostname in ("127.0.0.1", "localhost", "::1") else 1, 0 if s.scheme == "https" else 1)

        best = sorted(urls, key=rank)[0]
        s = urlsplit(best)
        if s.hostname in ("0.0.0.0", "::"):
            best = f"{s.scheme}://127.0.0.1:{s.port or 2379}"
        return best


def _urls(value: str) -> list[str]:
    return [u.strip() for u in value.split(",") if u.strip()]


def parse_flags(args: list[str]) -> dict[str, str]:
    """``--a=b``, ``--a b`` and bare ``--flag`` (true) into {a: b}; anything else is ignored."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            key, sep, value = arg[2:].partition("=")
            if not sep:
                if i + 1 < len(args) and not args[i + 1].startswith("--"):
                    value = args[i + 1]
                    i += 1
                else:
                    value = "true"
            out[key] = value
        i += 1
    return out


def parse_manifest(text: str, path: str = "/etc/kubernetes/manifests/etcd.yaml") -> EtcdConfig:
    """kubeadm's etcd static pod: the etcd container's flags and the data dir's hostPath."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not YAML: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("kind") != "Pod":
        raise ConfigError(f"{path}: not a Pod manifest")
    containers = (doc.get("spec") or {}).get("containers") or []
    etcd = next((c for c in containers if c.get("name") == "etcd"), containers[0] if containers else None)
    if etcd is None:
        raise ConfigError(f"{path}: no containers")
    args = [str(a) for a in (etcd.get("command") or []) + (etcd.get("args") or [])]
    flags = parse_flags(args)
    for env in etcd.get("env") or []:
        _env_flag(flags, str(env.get("name", "")), str(env.get("value", "")))
    container_dir = flags.get("data-dir", "/var/lib/etcd")
    host_dir = _host_path_for(doc, etcd, container_dir)
    return EtcdConfig(source=f"manifest:{path}", flags=flags, host_data_dir=host_dir)


def _host_path_for(doc: dict, container: dict, container_path: str) -> str | None:
    """The hostPath behind the volume mounted at ``container_path`` (or a parent of it)."""
    volumes = {v.get("name"): v for v in (doc.get("spec") or {}).get("volumes") or []}
    best: tuple[int, str] | None = None
    for m in container.get("volumeMounts") or []:
        mp = str(m.get("mountPath", "")).rstrip("/")
        if container_path == mp or container_path.startswith(mp + "/"):
            hp = (volumes.get(m.get("name")) or {}).get("hostPath", {}).get("path")
            if hp and (best is None or len(mp) > best[0]):
                best = (len(mp), str(hp).rstrip("/") + container_path[len(mp):])
    return best[1] if best else None


def _data_volume(doc: dict) -> tuple[dict, str]:
    """(the volume holding etcd's data dir, the part of --data-dir below its mount point)."""
    containers = (doc.get("spec") or {}).get("containers") or []
    container = next((c for c in containers if c.get("name") == "etcd"), containers[0] if containers else {})
    flags = parse_flags([str(a) for a in (container.get("command") or []) + (container.get("args") or [])])
    cdir = flags.get("data-dir", "/var/lib/etcd")
    volumes = {v.get("name"): v for v in (doc.get("spec") or {}).get("volumes") or []}
    for m in container.get("volumeMounts") or []:
        mp = str(m.get("mountPath", "")).rstrip("/")
        if (cdir == mp or cdir.startswith(mp + "/")) and m.get("name") in volumes:
            return volumes[m["name"]], cdir[len(mp):]
    raise ConfigError("no hostPath volume is mounted at etcd's --data-dir")


def repoint_manifest(text: str, new_host_dir: str) -> str:
    """The manifest with the data volume's hostPath set to ``new_host_dir``; nothing else changes.

    Edited as text (the one ``path:`` line of that volume) so comments and layout survive; the
    result is parsed again to prove the data dir moved.
    """
    doc = yaml.safe_load(text)
    volume, suffix = _data_volume(doc)
    old = str((volume.get("hostPath") or {}).get("path", ""))
    if not old:
        raise ConfigError(f"volume {volume.get('name')} has no hostPath.path")
    pattern = re.compile(rf"^(\s*path:\s*)[\"']?{re.escape(old)}[\"']?(\s*)$", re.M)
    if len(pattern.findall(text)) != 1:
        raise ConfigError(f"hostPath {old} appears more than once as a volume path; edit the manifest by hand")
    out = pattern.sub(lambda m: f"{m.group(1)}{new_host_dir.rstrip('/')}{m.group(2)}", text)
    want = new_host_dir.rstrip("/") + suffix
    if parse_manifest(out).data_dir != want:
        raise ConfigError("repointing the manifest did not move the data dir")
    return out


_ENV = re.compile(r"^ETCD_([A-Z0-9_]+)$")


def _env_flag(flags: dict[str, str], name: str, value: str) -> None:
    m = _ENV.match(name)
    if m and m.group(1) not in ("API", "UNSUPPORTED_ARCH"):
        flags.setdefault(m.group(1).lower().replace("_", "-"), value.strip().strip('"'))


def parse_unit(text: str, unit: str = "etcd", env_files: dict[str, str] | None = None) -> EtcdConfig:
    """``systemctl cat UNIT`` output (unit file + drop-ins): flags from the last ExecStart and ETCD_* env.

    ``env_files`` maps EnvironmentFile paths to their content (e.g. /etc/default/etcd).
    """
    text = re.sub(r"\\\n", " ", text)  # line continuations
    exec_start = ""
    env: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("ExecStart="):
            value = line[len("ExecStart="):].lstrip("-@:+!")
            exec_start = value  # an empty ExecStart= resets; the last one wins
        elif line.startswith("Environment="):
            for item in shlex.split(line[len("Environment="):]):
                k, _, v = item.partition("=")
                env[k] = v
    for content in (env_files or {}).values():
        for raw in content.splitlines():
            line = raw.strip()
            if line and not line.startswith("#") and "=" in line:
                k, _, v = line.partition("=")
                env[k.strip()] = v.strip().strip('"').strip("'")
    if not exec_start:
        raise ConfigError(f"unit {unit}: no ExecStart")
    argv = shlex.split(exec_start)
    flags = parse_flags(argv[1:])
    for k, v in env.items():
        _env_flag(flags, k, v)
    return EtcdConfig(source=f"unit:{unit}", flags=flags)


def environment_files(text: str) -> list[str]:
    """EnvironmentFile= paths named in ``systemctl cat`` output (leading '-' = optional)."""
    return [line.split("=", 1)[1].strip().lstrip("-") for line in text.splitlines()
            if line.strip().startswith("EnvironmentFile=")]


def unit_paths(text: str) -> list[str]:
    """The files ``systemctl cat`` printed (``# /path`` header lines), unit file first."""
    return [line[2:].strip() for line in text.splitlines() if line.startswith("# /")]


def repoint_unit(text: str, old_dir: str, new_dir: str) -> str:
    """A unit file's text with etcd's data dir moved from ``old_dir`` to ``new_dir``.

    Replaces ``--data-dir=OLD``, ``--data-dir OLD`` and ``ETCD_DATA_DIR=OLD``; any other
    mention of the old path (e.g. an ``install -d`` in ExecStartPre) follows, as a whole path.
    """
    old = re.escape(old_dir.rstrip("/"))
    out, n = re.subn(rf"(?<![\w/.-]){old}(?=[\s'\"]|/?$)", new_dir.rstrip("/"), text, flags=re.M)
    if n == 0 or not re.search(rf"(--data-dir[= ]|ETCD_DATA_DIR=)[\"']?{re.escape(new_dir.rstrip('/'))}", out):
        raise ConfigError(f"the unit does not set --data-dir={old_dir}; cannot repoint it")
    return out
