"""The lab node image: Debian bookworm built with debootstrap, imported into podman, cached.

No image registry is reachable on the machines this project runs on, so the image is built
from the Debian archive that the machine's apt already uses. The tag carries a hash of the
recipe (suite, packages, setup scripts): change the recipe and a new image is built. A tarball
cache under /var/cache/runbooks lets a wiped podman store re-import in seconds.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from importlib import resources
from pathlib import Path

from .engine import EngineError, Podman

SUITE = "bookworm"
PACKAGES = (
    "openssh-server", "systemd", "systemd-sysv", "dbus", "sudo", "iproute2", "iptables", "nftables",
    "ipset", "conntrack", "chrony", "curl", "jq", "procps", "kmod", "etcd-server", "etcd-client",
    "python3", "ca-certificates",
)
RECIPE_VERSION = "1"
CACHE_DIR = Path(os.environ.get("RUNBOOKS_IMAGE_CACHE", "/var/cache/runbooks"))
REPO = "localhost/runbooks-node"
ROCKY9_TAG = f"{REPO}:rocky9"
INIT_PATH = "/usr/local/sbin/runbooks-init"
MIRROR_ENV = "RUNBOOKS_DEBIAN_MIRROR"


class ImageError(RuntimeError):
    """The node image could not be built or found; the message says what to do."""


def _file(name: str) -> str:
    return resources.files("runbooks_lib.lab").joinpath("files", name).read_text(encoding="utf-8")


def recipe_hash() -> str:
    """Content hash of everything that goes into the Debian image (not the mirror host)."""
    h = hashlib.sha256()
    for part in (RECIPE_VERSION, SUITE, " ".join(PACKAGES), _file("node-setup.sh"), _file("runbooks-init.sh")):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def debian_tag() -> str:
    return f"{REPO}:{SUITE}-{recipe_hash()}"


# ----------------------------------------------------------------------------- apt sources

def parse_one_line_sources(text: str) -> list[tuple[str, list[str], list[str]]]:
    """(uri, suites, components) of ``deb`` lines in a sources.list file."""
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        words = re.sub(r"\[[^\]]*\]", "", line).split()
        if len(words) >= 3:
            out.append((words[1], [words[2]], words[3:]))
    return out


def parse_deb822_sources(text: str) -> list[tuple[str, list[str], list[str]]]:
    """(uri, suites, components) of enabled ``Types: deb`` stanzas in a .sources file."""
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            out.append((uri, fields.get("suites", "").split(), fields.get("components", "").split()))
    return out


def apt_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian archive URL this machine's apt uses for ``SUITE`` main (env override first)."""
    if os.environ.get(MIRROR_ENV):
        return os.environ[MIRROR_ENV]
    entries: list[tuple[str, list[str], list[str]]] = []
    main = apt_dir / "sources.list"
    if main.exists():
        entries += parse_one_line_sources(main.read_text(encoding="utf-8", errors="replace"))
    d = apt_dir / "sources.list.d"
    if d.is_dir():
        for f in sorted(d.iterdir()):
            if f.suffix == ".list":
                entries += parse_one_line_sources(f.read_text(encoding="utf-8", errors="replace"))
            elif f.suffix == ".sources":
                entries += parse_deb822_sources(f.read_text(encoding="utf-8", errors="replace"))
    for uri, suites, comps in entries:
        if SUITE in suites and "main" in comps:
            return uri
    raise ImageError(f"no Debian {SUITE} 'main' archive found in {apt_dir}/sources.list*; "
                     f"set {MIRROR_ENV}=<archive URL> to build the lab image")


def _apt_proxy_env() -> dict[str, str]:
    """http(s)_proxy from apt's configuration, so debootstrap goes the way apt goes."""
    env: dict[str, str] = {}
    if not shutil.which("apt-config"):
        return env
    for scheme in ("http", "https"):
        try:
            out = subprocess.run(["apt-config", "shell", "P", f"Acquire::{scheme}::Proxy"],
                                 capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        m = re.search(r"P='([^']+)'", out)
        if m and m.group(1).upper() != "DIRECT":
            env[f"{scheme}_proxy"] = m.group(1)
    return env


# ----------------------------------------------------------------------------- build

def image_exists(podman: Podman, tag: str) -> bool:
    return podman("image", "exists", tag, check=False).returncode == 0


def _log(msg: str) -> None:
    print(f"[lab image] {msg}", flush=True)


def build_rootfs(rootfs: Path, mirror: str, timeout: float = 1800.0) -> None:
    """debootstrap ``SUITE`` with ``PACKAGES`` into ``rootfs`` and run the node setup in it."""
    if not shutil.which("debootstrap"):
        raise ImageError("debootstrap is not installed (apt-get install debootstrap)")
    env = dict(os.environ, **_apt_proxy_env())
    cmd = ["debootstrap", "--variant=minbase", "--components=main", f"--include={','.join(PACKAGES)}",
           SUITE, str(rootfs), mirror]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip()[-1500:]
        log = rootfs / "debootstrap" / "debootstrap.log"
        if log.exists():
            tail += "\n" + log.read_text(errors="replace")[-1500:]
        raise ImageError(f"debootstrap failed ({proc.returncode}):\n{tail}")
    init = rootfs / INIT_PATH.lstrip("/")
    init.parent.mkdir(parents=True, exist_ok=True)
    init.write_text(_file("runbooks-init.sh"))
    init.chmod(0o755)
    setup = rootfs / "tmp" / "runbooks-node-setup.sh"
    setup.write_text(_file("node-setup.sh"))
    proc = subprocess.run(["chroot", str(rootfs), "/bin/sh", "/tmp/runbooks-node-setup.sh"],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise ImageError(f"node setup in the rootfs failed ({proc.returncode}): {proc.stderr[-1500:]}")
    setup.unlink(missing_ok=True)


def cached_tarball(tag: str) -> Path:
    return CACHE_DIR / f"{tag.rsplit('/', 1)[-1].replace(':', '-')}.tar"


def ensure_debian_image(podman: Podman, *, rebuild: bool = False) -> str:
    """The Debian node image's tag; import from the tarball cache or build it when absent."""
    tag = debian_tag()
    if not rebuild and image_exists(podman, tag):
        return tag
    tarball = cached_tarball(tag)
    if rebuild or not tarball.exists():
        mirror = apt_mirror()
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        _log(f"building {tag} with debootstrap from {mirror} (a few minutes, once)")
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="build-", dir=CACHE_DIR) as tmp:
            rootfs = Path(tmp) / "rootfs"
            build_rootfs(rootfs, mirror)
            part = tarball.with_suffix(".tar.part")
            proc = subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(part),
                                   "."], capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                part.unlink(missing_ok=True)
                raise ImageError(f"tar of the rootfs failed: {proc.stderr[-800:]}")
            part.replace(tarball)
        _log(f"rootfs built in {time.monotonic() - t0:.0f}s; cached at {tarball}")
    _log(f"importing {tarball.name} as {tag}")
    try:
        podman("import", "--change", f"CMD={INIT_PATH}", "--change", "STOPSIGNAL=SIGRTMIN+3",
               str(tarball), tag, timeout=600)
    except EngineError as exc:
        raise ImageError(f"podman import failed: {exc}") from exc
    return tag


def ensure_rocky9_image(podman: Podman) -> str:
    """Build the Rocky Linux 9 image from Containerfile.rocky9; needs ``rockylinux:9`` pullable."""
    if image_exists(podman, ROCKY9_TAG):
        return ROCKY9_TAG
    with tempfile.TemporaryDirectory(prefix="runbooks-rocky9-") as tmp:
        ctx = Path(tmp)
        (ctx / "Containerfile").write_text(
            resources.files("runbooks_lib.lab").joinpath("Containerfile.rocky9").read_text(encoding="utf-8"))
        (ctx / "runbooks-init.sh").write_text(_file("runbooks-init.sh"))
        res = podman("build", "-t", ROCKY9_TAG, "-f", str(ctx / "Containerfile"), str(ctx),
                     check=False, timeout=1800)
    if res.returncode != 0:
        why = res.stderr.strip().splitlines()[-1:] or ["unknown error"]
        raise ImageError(
            "--image rocky9 builds Containerfile.rocky9 FROM docker.io/rockylinux/rockylinux:9, which must be "
            "pulled from a registry this machine cannot reach; use --image debian (built locally with "
            f"debootstrap) here. podman said: {why[0]}")
    return ROCKY9_TAG


def ensure_image(podman: Podman, kind: str = "debian") -> str:
    if kind == "debian":
        return ensure_debian_image(podman)
    if kind == "rocky9":
        return ensure_rocky9_image(podman)
    raise ImageError(f"unknown lab image {kind!r}: use debian or rocky9")
