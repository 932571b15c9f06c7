"""containerd config.toml, edited structurally from ``containerd config default`` (or from the
node's own full config, so an operator's other settings survive) and written with a TOML writer."""

from __future__ import annotations

import copy
from typing import Any

from ..facts.containerd import CONFIG, CRI_NAMES, CriConfig, cri_config, runtime_table, sandbox_path
from . import Change, NoChange
from .files import file_content
from .toml import dumps


def compliant(cri: CriConfig, sandbox_image: str) -> list[str]:
    """What is wrong with a config (empty: nothing)."""
    problems = []
    if not cri.has_cri_table:
        problems.append("no CRI plugin section")
    if cri.disabled_cri:
        problems.append(f"CRI plugin disabled (disabled_plugins = {list(cri.disabled_cri)})")
    if cri.systemd_cgroup is not True:
        problems.append(f"SystemdCgroup = {str(cri.systemd_cgroup).lower() if cri.systemd_cgroup is not None else 'unset'}")
    if cri.has_cri_table and not cri.runtime_type:
        problems.append(f"runtime {cri.default_runtime} has no runtime_type")
    if cri.sandbox_image != sandbox_image:
        problems.append(f"sandbox image {cri.sandbox_image or 'unset'} (want {sandbox_image})")
    return problems


def _set(d: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    cur = d
    for p in path[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = cur[p] = {}
        cur = nxt
    cur[path[-1]] = value


def _table(d: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """The table at ``path``, created as needed."""
    cur = d
    for p in path:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = cur[p] = {}
        cur = nxt
    return cur


def edit(base: dict[str, Any], sandbox_image: str, default: dict[str, Any] | None = None) -> dict[str, Any]:
    """``base`` with SystemdCgroup = true on the default runtime, the sandbox image, CRI enabled.
    A runtime table created or left without ``runtime_type`` gets it (from ``default``, else runc v2):
    a TOML runtime entry replaces containerd's built-in one rather than merging with it."""
    cfg = copy.deepcopy(base)
    if "disabled_plugins" in cfg:
        cfg["disabled_plugins"] = [p for p in cfg["disabled_plugins"] if p not in CRI_NAMES]
    cri = cri_config(cfg)
    rt = runtime_table(cfg)
    runtime = (*rt, "runtimes", cri.default_runtime)
    node = _table(cfg, runtime)
    if "runtime_type" not in node:
        from_default = _table(copy.deepcopy(default), runtime).get("runtime_type") if default else None
        node["runtime_type"] = from_default or "io.containerd.runc.v2"
    _set(cfg, (*rt, "runtimes", cri.default_runtime, "options", "SystemdCgroup"), True)
    _set(cfg, sandbox_path(cfg), sandbox_image)
    return cfg


def choose_base(current: dict[str, Any] | None, default: dict[str, Any] | None) -> dict[str, Any] | None:
    """The node's config when it is a full one (versioned, with the CRI section), else the default."""
    if current is not None and "version" in current and cri_config(current).has_cri_table:
        return current
    return default


def config_change(current_text: str | None, current: dict[str, Any] | None, default: dict[str, Any] | None,
                  sandbox_image: str) -> Change | NoChange:
    if current is not None and not compliant(cri_config(current), sandbox_image):
        return NoChange("containerd.config", f"{CONFIG}: CRI on, SystemdCgroup = true, sandbox {sandbox_image}")
    base = choose_base(current, default)
    if base is None:
        return Change("containerd.config", "containerd is not installed: the config is rendered from "
                      "`containerd config default` after the package step", [])
    text = dumps(edit(base, sandbox_image, default))
    ch = file_content("containerd.config", CONFIG, current_text, text,
                      summary="containerd config: CRI on, SystemdCgroup = true, sandbox image",
                      commands=["systemctl restart containerd"])
    if isinstance(ch, Change):
        ch.destructive = "restarts containerd (running containers' shims reconnect)"
    return ch


def crictl_desired(socket: str, timeout: int = 10) -> dict[str, Any]:
    return {"runtime-endpoint": socket, "image-endpoint": socket, "timeout": timeout, "debug": False,
            "pull-image-on-create": True, "disable-pull-on-run": False}


def render_crictl(desired: dict[str, Any]) -> str:
    def v(x: Any) -> str:
        return ("true" if x else "false") if isinstance(x, bool) else (f'"{x}"' if isinstance(x, str) else str(x))

    return "".join(f"{k}: {v(x)}\n" for k, x in desired.items())


def crictl_change(current_text: str | None, current: dict[str, Any] | None, desired: dict[str, Any]
                  ) -> Change | NoChange:
    if current == desired:
        return NoChange("crictl.config", f"/etc/crictl.yaml points at {desired['runtime-endpoint']}")
    return file_content("crictl.config", "/etc/crictl.yaml", current_text, render_crictl(desired),
                        summary=f"crictl -> {desired['runtime-endpoint']}")
