"""A real etcd with client TLS on 127.0.0.1, in a temp dir, for tests and the benchmark.

Certificates come from :mod:`runbooks_lib.lab.certs` (kubeadm layout); ports are free loopback
ports; :meth:`LocalEtcd.stop` always kills the process it started (by its pid) and waits.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from ..chapters.etcd_backup.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalEtcd:
    def __init__(self, root: Path, name: str = "local") -> None:
        self.root = root
        self.name = name
        self.pki = root / "pki"
        self.data = root / "data"
        self.client_port, self.peer_port, self.metrics_port = free_port(), free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.client_port}"

    def ca(self, name: str) -> str:
        return str(self.pki / "etcd" / name)

    def start(self, timeout: float = 30.0, extra: list[str] | None = None) -> LocalEtcd:
        from . import certs

        if not self.pki.exists():
            certs.write_pki(certs.etcd_pki("localhost", "127.0.0.1"), self.pki)
        peer = f"https://127.0.0.1:{self.peer_port}"
        args = [
            shutil.which("etcd") or "etcd", f"--name={self.name}", f"--data-dir={self.data}",
            f"--listen-client-urls={self.endpoint}", f"--advertise-client-urls={self.endpoint}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster={self.name}={peer}", f"--listen-metrics-urls=http://127.0.0.1:{self.metrics_port}",
            "--client-cert-auth=true", f"--trusted-ca-file={self.ca('ca.crt')}",
            f"--cert-file={self.ca('server.crt')}", f"--key-file={self.ca('server.key')}",
            "--peer-client-cert-auth=true", f"--peer-trusted-ca-file={self.ca('ca.crt')}",
            f"--peer-cert-file={self.ca('peer.crt')}", f"--peer-key-file={self.ca('peer.key')}",
            "--quota-backend-bytes=4294967296", *(extra or []),
        ]
        log = (self.root / "etcd.log").open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"etcd exited: {(self.root / 'etcd.log').read_text()[-500:]}")
            if self.ctl("endpoint", "health", timeout=5).returncode == 0:
                return self
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"local etcd not healthy within {timeout}s")

    def ctl(self, *args: str, timeout: float = 30.0, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        cmd = ["etcdctl", f"--endpoints={self.endpoint}", f"--cacert={self.ca('ca.crt')}",
               f"--cert={self.ca('healthcheck-client.crt')}", f"--key={self.ca('healthcheck-client.key')}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin:/usr/local/bin"})

    def settings(self, **kw: object) -> Settings:
        base: dict[str, object] = {
            "endpoint": self.endpoint, "cacert": self.ca("ca.crt"), "cert": self.ca("healthcheck-client.crt"),
            "key": self.ca("healthcheck-client.key"), "remote_dir": str(self.root / "backups"),
            "manifest": str(self.root / "no-manifest.yaml"), "unit": "runbooks-no-such-unit",
            "local_dir": str(self.root / "local"),
        }
        base.update(kw)
        return Settings.model_validate(base)

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self.proc = None
