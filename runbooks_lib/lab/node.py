"""One lab node: a podman container running systemd and sshd, and the files it starts with.

Nodes are "privileged minus the dangerous bits": every capability except CAP_SYS_TIME and
CAP_SYS_MODULE, no seccomp/AppArmor confinement, /proc/sys writable only under net (see
files/runbooks-init.sh). podman 4.3 ignores --cap-drop together with --privileged (a node could
set the host's clock), so --privileged is deliberately not used.
"""

from __future__ import annotations

import io
import socket
import tarfile
import time
from dataclasses import dataclass, field

from .engine import Podman
from .image import INIT_PATH

LABEL = "runbooks.lab"
USER = "runbooks"
USER_UID = 1500  # fixed in files/node-setup.sh
DROPPED_CAPS = ("SYS_TIME", "SYS_MODULE")
CAP_BITS = {"SYS_MODULE": 16, "SYS_TIME": 25}
HOST_KEY_GLOB = "/etc/ssh/ssh_host_*_key.pub"
OPTIONAL_DEVICES = ("/dev/net/tun", "/dev/fuse")


@dataclass
class NodeSpec:
    """What a node is: its name, address and roles in the lab."""

    hostname: str
    ip: str
    roles: list[str]
    index: int

    @property
    def is_control_plane(self) -> bool:
        return "control-plane" in self.roles


def node_names(lab: str, count: int) -> list[str]:
    """<lab>-cp1 for node 1, then <lab>-w1, <lab>-w2, ..."""
    return [f"{lab}-cp1"] + [f"{lab}-w{i}" for i in range(1, count)]


def create_args(lab: str, spec: NodeSpec, network: str, image: str, hosts: dict[str, str],
                devices: tuple[str, ...] = ()) -> list[str]:
    """``podman create`` arguments for one node."""
    args = [
        "create", "--name", spec.hostname, "--hostname", spec.hostname,
        "--label", f"{LABEL}={lab}", "--label", f"runbooks.role={','.join(spec.roles)}",
        "--network", network, "--ip", spec.ip,
        "--systemd=always", "--cap-add", "ALL",
        "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
        "--security-opt", "label=disable", "--security-opt", "unmask=/proc/sys",
        "--stop-signal", "SIGRTMIN+3", "--stop-timeout", "10",
    ]
    for cap in DROPPED_CAPS:
        args += ["--cap-drop", cap]
    for dev in devices:
        args += ["--device", dev]
    for name, ip in sorted(hosts.items()):
        if name != spec.hostname:
            args += ["--add-host", f"{name}:{ip}"]
    return args + [image, INIT_PATH]


@dataclass
class SeedTar:
    """Files a node starts with, as a tar stream for ``podman cp -``."""

    buf: io.BytesIO = field(default_factory=io.BytesIO)

    def __post_init__(self) -> None:
        self.tar = tarfile.open(fileobj=self.buf, mode="w")
        self._dirs: set[str] = set()

    def dir(self, path: str, mode: int = 0o755, uid: int = 0) -> None:
        if path in self._dirs:
            return
        info = tarfile.TarInfo(path.lstrip("/"))
        info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.DIRTYPE, mode, uid, uid, time.time()
        self.tar.addfile(info)
        self._dirs.add(path)

    def file(self, path: str, data: bytes | str, mode: int = 0o644, uid: int = 0) -> None:
        raw = data.encode() if isinstance(data, str) else data
        info = tarfile.TarInfo(path.lstrip("/"))
        info.size, info.mode, info.uid, info.gid, info.mtime = len(raw), mode, uid, uid, time.time()
        self.tar.addfile(info, io.BytesIO(raw))

    def symlink(self, path: str, target: str) -> None:
        info = tarfile.TarInfo(path.lstrip("/"))
        info.type, info.linkname, info.mtime = tarfile.SYMTYPE, target, time.time()
        self.tar.addfile(info)

    def bytes(self) -> bytes:
        self.tar.close()
        return self.buf.getvalue()


def seed_files(lab: str, spec: NodeSpec, pubkey: str, subnet: str, cp_ip: str,
               etcd_files: dict[str, bytes] | None = None, etcd_unit: str | None = None) -> bytes:
    """The tar stream for one node: authorized keys, lab marker, chrony sources, etcd on the CP."""
    t = SeedTar()
    t.dir("/root/.ssh", 0o700)
    t.file("/root/.ssh/authorized_keys", pubkey + "\n", 0o600)
    t.dir("/home/runbooks", 0o755, USER_UID)
    t.dir("/home/runbooks/.ssh", 0o700, USER_UID)
    t.file("/home/runbooks/.ssh/authorized_keys", pubkey + "\n", 0o600, USER_UID)
    t.file("/etc/runbooks-lab", f"# a runbooks lab node: host-global steps are not applicable here\n"
                                f"lab={lab}\nnode={spec.hostname}\nroles={','.join(spec.roles)}\n")
    t.dir("/etc/chrony/conf.d")
    chrony = (f"# lab time: the control plane serves its clock (never set: chronyd -x)\nlocal stratum 10\n"
              f"allow {subnet}\n") if spec.is_control_plane else f"server {cp_ip} iburst\n"
    t.file("/etc/chrony/conf.d/runbooks-lab.conf", chrony)
    if etcd_files and etcd_unit:
        for d in ("/etc/kubernetes", "/etc/kubernetes/pki", "/etc/kubernetes/pki/etcd"):
            t.dir(d, 0o755)
        for rel, data in sorted(etcd_files.items()):
            t.file(f"/etc/kubernetes/pki/{rel}", data, 0o600 if rel.endswith(".key") else 0o644)
        t.file("/etc/systemd/system/etcd.service", etcd_unit)
        t.dir("/etc/systemd/system/multi-user.target.wants")
        t.symlink("/etc/systemd/system/multi-user.target.wants/etcd.service", "/etc/systemd/system/etcd.service")
    return t.bytes()


def wait_ssh_banner(ip: str, port: int = 22, timeout: float = 60.0) -> float:
    """Wait until sshd at ip:port sends its banner; seconds waited. TimeoutError otherwise."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    last = "no attempt"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((ip, port), timeout=2) as s:
                s.settimeout(2)
                if s.recv(64).startswith(b"SSH-"):
                    return time.monotonic() - t0
                last = "no SSH banner"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise TimeoutError(f"sshd at {ip}:{port} did not answer within {timeout:.0f}s ({last})")


def read_host_keys(podman: Podman, container: str, timeout: float = 60.0) -> str:
    """The node's public host keys, read through podman (not trust-on-first-use over the network)."""
    script = (f"for i in $(seq 1 {int(timeout * 5)}); do "
              "[ -s /etc/ssh/ssh_host_ed25519_key.pub ] && break; sleep 0.2; done; "
              f"cat {HOST_KEY_GLOB}")
    return podman("exec", container, "/bin/sh", "-c", script, timeout=timeout + 10).stdout


def bounding_caps(podman: Podman, container: str) -> int:
    """CapBnd of a process started in the node (as podman exec starts one)."""
    out = podman("exec", container, "/bin/sh", "-c", "grep CapBnd /proc/self/status").stdout
    return int(out.split()[1], 16)
