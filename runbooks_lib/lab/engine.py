"""Podman: detect how it runs on this machine (once), then invoke it the same way everywhere.

On an ordinary Linux host podman's defaults work. In some sandboxes the default runtime fails
with ``setrlimit ... Operation not permitted`` (no CAP_SYS_RESOURCE): there we switch to runc
and a containers.conf with ``default_ulimits = []``, exported as ``CONTAINERS_CONF`` for every
podman call. The probe runs a trivial container from a throw-away rootfs (no image needed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from ..params import PROJECT_ROOT

STATE_ROOT = PROJECT_ROOT / ".lab"
ENGINE_CACHE = STATE_ROOT / ".engine.json"
CONTAINERS_CONF_TEXT = "[containers]\ndefault_ulimits = []\n"
_RLIMIT_MARKERS = ("setrlimit", "error setting rlimit", "rlimit_nofile", "rlimit_nproc")
RUNC_CANDIDATES = ("/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc")


class EngineError(RuntimeError):
    """Podman is missing or cannot start containers here; the message says why."""


@dataclass(frozen=True)
class EngineConfig:
    """How podman must be called on this machine."""

    podman: str
    runtime: str | None  # None: podman's default runtime
    needs_conf: bool  # True: CONTAINERS_CONF with default_ulimits = []
    reason: str  # what the probe saw

    def describe(self) -> str:
        if self.runtime is None and not self.needs_conf:
            return "podman defaults"
        return f"--runtime {self.runtime} + CONTAINERS_CONF(default_ulimits = []) ({self.reason})"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def _probe_rootfs(where: Path) -> Path:
    """A minimal rootfs holding /bin/true and the libraries it links (from this machine)."""
    true = shutil.which("true") or "/bin/true"
    root = where / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(true, root / "bin" / "true")
    out = subprocess.run(["ldd", true], capture_output=True, text=True, timeout=10).stdout
    for word in out.split():
        if word.startswith("/") and Path(word).exists():
            dest = root / word.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(word, dest)
    return root


def _try_run(podman: str, rootfs: Path, runtime: str | None, conf: Path | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if conf is not None:
        env["CONTAINERS_CONF"] = str(conf)
    cmd = [podman]
    if runtime:
        cmd += ["--runtime", runtime]
    cmd += ["run", "--rm", "--network", "none", "--rootfs", str(rootfs), "/bin/true"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def detect(podman: str | None = None) -> EngineConfig:
    """Probe podman: defaults first, then runc + default_ulimits=[] if rlimits are refused."""
    exe = podman or shutil.which("podman")
    if not exe:
        raise EngineError("podman is not installed (apt-get install podman runc)")
    with tempfile.TemporaryDirectory(prefix="runbooks-probe-") as tmp:
        rootfs = _probe_rootfs(Path(tmp))
        first = _try_run(exe, rootfs, None, None)
        if first.returncode == 0:
            return EngineConfig(exe, None, False, "default runtime works")
        err = first.stderr.strip()
        if not any(m in err.lower() for m in _RLIMIT_MARKERS):
            raise EngineError(f"podman cannot run a trivial container: {err[-400:]}")
        runc = next((c for c in RUNC_CANDIDATES if Path(c).exists()), shutil.which("runc"))
        if not runc:
            raise EngineError("podman's default runtime fails to set rlimits here and runc is not "
                              "installed (apt-get install runc)")
        conf = Path(tmp) / "containers.conf"
        conf.write_text(CONTAINERS_CONF_TEXT)
        second = _try_run(exe, rootfs, runc, conf)
        if second.returncode != 0:
            raise EngineError(f"podman fails with the default runtime ({err[-200:]}) and with "
                              f"{runc} + default_ulimits=[] ({second.stderr.strip()[-200:]})")
        return EngineConfig(exe, runc, True, "default runtime cannot set rlimits")


_lock = threading.Lock()
_cached: EngineConfig | None = None


def config(refresh: bool = False) -> EngineConfig:
    """The detection result, cached in memory and on disk (per boot and podman binary)."""
    global _cached
    with _lock:
        if _cached is not None and not refresh:
            return _cached
        exe = shutil.which("podman")
        key = {"boot_id": _boot_id(), "podman": exe or ""}
        if not refresh and ENGINE_CACHE.exists():
            try:
                data = json.loads(ENGINE_CACHE.read_text())
                if data.get("key") == key:
                    _cached = EngineConfig(**data["config"])
                    return _cached
            except (ValueError, KeyError, TypeError):
                pass  # a corrupt cache is simply re-detected
        _cached = detect(exe)
        ENGINE_CACHE.parent.mkdir(parents=True, exist_ok=True)
        ENGINE_CACHE.write_text(json.dumps({"key": key, "config": asdict(_cached)}, indent=2))
        return _cached


class Podman:
    """Runs podman as detected; ``state_dir`` receives the containers.conf when one is needed."""

    def __init__(self, state_dir: Path | None = None, cfg: EngineConfig | None = None) -> None:
        self.cfg = cfg or config()
        self.state_dir = state_dir or STATE_ROOT
        self.env = dict(os.environ)
        self._conf: Path | None = self.state_dir / "containers.conf" if self.cfg.needs_conf else None
        self._ensure_conf()

    def _ensure_conf(self) -> None:
        """(Re)write the containers.conf (a `down` may have removed the state dir meanwhile)."""
        if self._conf is None:
            return
        if not self._conf.exists() or self._conf.read_text() != CONTAINERS_CONF_TEXT:
            self._conf.parent.mkdir(parents=True, exist_ok=True)
            self._conf.write_text(CONTAINERS_CONF_TEXT)
        self.env["CONTAINERS_CONF"] = str(self._conf)

    def argv(self, *args: str) -> list[str]:
        cmd = [self.cfg.podman]
        if self.cfg.runtime:
            cmd += ["--runtime", self.cfg.runtime]
        return cmd + list(args)

    def __call__(self, *args: str, check: bool = True, timeout: float = 120.0,
                 input: bytes | str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``podman ARGS``; raise EngineError (with stderr) when ``check`` and it fails."""
        data = input.encode() if isinstance(input, str) else input
        if self._conf is not None and not self._conf.exists():
            self._conf = STATE_ROOT / "containers.conf"
            self._ensure_conf()
        try:
            proc = subprocess.run(self.argv(*args), input=data, capture_output=True, timeout=timeout,
                                  env=self.env)
        except subprocess.TimeoutExpired as exc:
            raise EngineError(f"podman {' '.join(args[:3])}: no answer within {timeout:.0f}s") from exc
        res = subprocess.CompletedProcess(proc.args, proc.returncode,
                                          proc.stdout.decode("utf-8", "replace"),
                                          proc.stderr.decode("utf-8", "replace"))
        if check and res.returncode != 0:
            raise EngineError(f"podman {' '.join(args[:3])} failed ({res.returncode}): "
                              f"{res.stderr.strip()[-600:]}")
        return res
