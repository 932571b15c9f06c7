"""containerd: version, /etc/containerd/config.toml (structurally, via tomllib), CRI plugin status,
and /etc/crictl.yaml.

Config layouts: version 2 (containerd 1.6/1.7: plugins."io.containerd.grpc.v1.cri"), version 3
(containerd 2.x: plugins."io.containerd.cri.v1.images" / ."io.containerd.cri.v1.runtime"), and the
version-less v1 layout (plugins.cri) that the containerd.io package's stub implies.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Any

import yaml

CONFIG = "/etc/containerd/config.toml"
CRICTL = "/etc/crictl.yaml"
VERSION = "containerd --version"
#: the default config, only when the node's config has no CRI section to edit (it is the base then)
DEFAULT = ("command -v containerd >/dev/null && { grep -qsE "
           "\"^[[:space:]]*\\[plugins\\.['\\\"]io\\.containerd\\.(grpc\\.v1\\.cri|cri\\.v1\\.runtime)['\\\"]\" "
           f"{CONFIG} || containerd config default; }}")
PLUGINS = "command -v ctr >/dev/null && timeout 10 ctr plugins ls"

V2_CRI = "io.containerd.grpc.v1.cri"
V3_IMAGES = "io.containerd.cri.v1.images"
V3_RUNTIME = "io.containerd.cri.v1.runtime"
#: names under which disabled_plugins can switch the CRI off
CRI_NAMES = ("cri", V2_CRI, V3_IMAGES, V3_RUNTIME)


def parse_version(text: str) -> str | None:
    """"containerd github.com/containerd/containerd 1.6.20~ds1 ..." -> "1.6.20"."""
    for word in text.split()[2:3] or text.split():
        m = re.match(r"^v?(\d+\.\d+\.\d+)", word)
        if m:
            return m.group(1)
    return None


def major(version: str | None) -> int | None:
    return int(version.split(".")[0]) if version else None


def parse_config(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """(config dict, None) or (None, TOML error)."""
    try:
        return tomllib.loads(text), None
    except tomllib.TOMLDecodeError as exc:
        return None, str(exc)


def _get(d: dict[str, Any], *path: str) -> Any:
    cur: Any = d
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


@dataclass(frozen=True)
class CriConfig:
    """What matters to kubeadm in a containerd config."""

    version: int
    has_cri_table: bool
    default_runtime: str
    systemd_cgroup: bool | None
    sandbox_image: str | None
    disabled_cri: tuple[str, ...]
    runtime_type: str | None = None


def runtime_table(cfg: dict[str, Any]) -> tuple[str, ...]:
    """The path of the CRI ``containerd`` table for this layout."""
    v = int(cfg.get("version", 1))
    if v >= 3:
        return ("plugins", V3_RUNTIME, "containerd")
    return ("plugins", V2_CRI if v == 2 else "cri", "containerd")


def sandbox_path(cfg: dict[str, Any]) -> tuple[str, ...]:
    v = int(cfg.get("version", 1))
    if v >= 3:
        return ("plugins", V3_IMAGES, "pinned_images", "sandbox")
    return ("plugins", V2_CRI if v == 2 else "cri", "sandbox_image")


def cri_config(cfg: dict[str, Any]) -> CriConfig:
    v = int(cfg.get("version", 1))
    rt = runtime_table(cfg)
    default_runtime = _get(cfg, *rt, "default_runtime_name") or "runc"
    runtime = _get(cfg, *rt, "runtimes", default_runtime) or {}
    options = runtime.get("options") or {}
    has_table = (_get(cfg, "plugins", V3_RUNTIME) is not None if v >= 3
                 else _get(cfg, "plugins", V2_CRI if v == 2 else "cri") is not None)
    disabled = tuple(p for p in cfg.get("disabled_plugins", []) if p in CRI_NAMES)
    return CriConfig(v, has_table, default_runtime, options.get("SystemdCgroup"),
                     _get(cfg, *sandbox_path(cfg)), disabled, runtime.get("runtime_type"))


def parse_plugins(text: str) -> dict[tuple[str, str], str]:
    """``ctr plugins ls``: (type, id) -> status ("ok", "skip", "error")."""
    out: dict[tuple[str, str], str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] != "TYPE":
            out[(parts[0], parts[1])] = parts[-1]
    return out


def cri_status(plugins: dict[tuple[str, str], str]) -> str | None:
    """Status of the CRI gRPC service plugin, None when not loaded at all."""
    return plugins.get(("io.containerd.grpc.v1", "cri"))


def parse_crictl(text: str) -> dict[str, Any] | None:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None
