"""etcd on the lab's control-plane node: the systemd unit, a TLS client over the gRPC gateway, seed data.

The unit runs Debian's etcd (3.4) with kubeadm's flags and file layout; the client talks to the
v3 JSON gateway on :2379 with the apiserver-etcd-client certificate, so the host needs no etcdctl.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import time
from pathlib import Path

PKI = "/etc/kubernetes/pki"
DATA_DIR = "/var/lib/etcd"


def unit_text(hostname: str, ip: str) -> str:
    """A systemd unit for a single-member etcd with client and peer TLS, kubeadm-style."""
    flags = [
        f"--name={hostname}",
        f"--data-dir={DATA_DIR}",
        f"--listen-client-urls=https://127.0.0.1:2379,https://{ip}:2379",
        f"--advertise-client-urls=https://{ip}:2379",
        f"--listen-peer-urls=https://{ip}:2380",
        f"--initial-advertise-peer-urls=https://{ip}:2380",
        f"--initial-cluster={hostname}=https://{ip}:2380",
        "--initial-cluster-state=new",
        "--listen-metrics-urls=http://127.0.0.1:2381",
        "--client-cert-auth=true",
        f"--trusted-ca-file={PKI}/etcd/ca.crt",
        f"--cert-file={PKI}/etcd/server.crt",
        f"--key-file={PKI}/etcd/server.key",
        "--peer-client-cert-auth=true",
        f"--peer-trusted-ca-file={PKI}/etcd/ca.crt",
        f"--peer-cert-file={PKI}/etcd/peer.crt",
        f"--peer-key-file={PKI}/etcd/peer.key",
        "--snapshot-count=10000",
    ]
    args = " \\\n  ".join(flags)
    return (
        "# written by runbooks lab up: etcd with TLS, laid out like a kubeadm control plane\n"
        "[Unit]\nDescription=etcd key-value store (runbooks lab)\nDocumentation=https://etcd.io/docs/\n"
        "After=network-online.target\nWants=network-online.target\n\n"
        "[Service]\nType=notify\n"
        f"ExecStartPre=/bin/sh -c 'install -d -m 0700 {DATA_DIR}'\n"
        f"ExecStart=/usr/bin/etcd \\\n  {args}\n"
        "Restart=on-failure\nRestartSec=5s\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", "monitoring", "payments",
               "web", "batch")
_APPS = ("api", "web", "worker", "cache", "db", "queue", "auth", "search")


def seed_objects(count: int = 320) -> list[tuple[str, str]]:
    """Deterministic /registry/... keys with Kubernetes-shaped JSON values (``count`` of them)."""
    out: list[tuple[str, str]] = []
    for ns in _NAMESPACES:
        out.append((f"/registry/namespaces/{ns}", json.dumps({
            "kind": "Namespace", "apiVersion": "v1",
            "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})))
        out.append((f"/registry/serviceaccounts/{ns}/default", json.dumps({
            "kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": "default", "namespace": ns}})))
    i = 0
    while len(out) < count:
        ns = _NAMESPACES[i % len(_NAMESPACES)]
        app = f"{_APPS[(i // len(_NAMESPACES)) % len(_APPS)]}-{i // (len(_NAMESPACES) * len(_APPS))}"
        kind = ("configmaps", "services/specs", "deployments", "pods")[i % 4]
        meta = {"name": app, "namespace": ns, "labels": {"app": app},
                "uid": f"00000000-0000-4000-8000-{i:012d}", "resourceVersion": str(1000 + i)}
        if kind == "configmaps":
            value = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": meta,
                     "data": {"LOG_LEVEL": "info", "REPLICAS": str(1 + i % 3), "app.conf": f"listen {8000 + i}\n"}}
        elif kind == "services/specs":
            value = {"kind": "Service", "apiVersion": "v1", "metadata": meta,
                     "spec": {"type": "ClusterIP", "clusterIP": f"10.96.{i // 250}.{i % 250 + 1}",
                              "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
                              "selector": {"app": app}}}
        elif kind == "deployments":
            value = {"kind": "Deployment", "apiVersion": "apps/v1", "metadata": meta,
                     "spec": {"replicas": 1 + i % 3, "selector": {"matchLabels": {"app": app}},
                              "template": {"metadata": {"labels": {"app": app}}, "spec": {"containers": [
                                  {"name": app, "image": f"registry.example/{app}:1.{i % 7}"}]}}}}
        else:
            value = {"kind": "Pod", "apiVersion": "v1", "metadata": meta,
                     "spec": {"nodeName": f"worker-{i % 3 + 1}", "containers": [
                         {"name": app, "image": f"registry.example/{app}:1.{i % 7}"}]},
                     "status": {"phase": "Running", "podIP": f"10.244.{i % 3}.{i % 250 + 2}"}}
        out.append((f"/registry/{kind}/{ns}/{app}", json.dumps(value, sort_keys=True)))
        i += 1
    return out[:count]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class EtcdGateway:
    """A tiny TLS client for etcd's v3 JSON gateway (one keep-alive connection)."""

    def __init__(self, host: str, pki_dir: Path, port: int = 2379, timeout: float = 5.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        ctx = ssl.create_default_context(cafile=str(pki_dir / "etcd" / "ca.crt"))
        ctx.load_cert_chain(str(pki_dir / "apiserver-etcd-client.crt"), str(pki_dir / "apiserver-etcd-client.key"))
        self.ctx = ctx
        self._conn: http.client.HTTPSConnection | None = None

    def _post(self, path: str, body: dict[str, object]) -> dict[str, object]:
        if self._conn is None:
            self._conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=self.timeout)
        try:
            self._conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
            resp = self._conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if resp.status != 200:
            raise RuntimeError(f"etcd {path}: HTTP {resp.status}: {data[:300]!r}")
        result: dict[str, object] = json.loads(data or b"{}")
        return result

    def health(self) -> bool:
        """True when etcd answers a linearizable read over TLS (what `endpoint health` does)."""
        try:
            self._post("/v3/kv/range", {"key": _b64("health")})
            return True
        except (OSError, http.client.HTTPException, RuntimeError, ValueError):
            return False

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.health():
            if time.monotonic() > deadline:
                raise TimeoutError(f"etcd at https://{self.host}:{self.port} not healthy within {timeout:.0f}s")
            time.sleep(0.3)

    def put(self, key: str, value: str) -> None:
        self._post("/v3/kv/put", {"key": _b64(key), "value": _b64(value)})

    def count(self, prefix: str) -> int:
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        res = self._post("/v3/kv/range", {"key": _b64(prefix), "range_end": _b64(end), "count_only": True})
        return int(str(res.get("count", 0)))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def seed(gw: EtcdGateway, count: int = 320) -> int:
    """Put the seed objects unless they are there already; the number of /registry/ keys after."""
    if gw.count("/registry/") >= count:
        return gw.count("/registry/")
    for key, value in seed_objects(count):
        gw.put(key, value)
    return gw.count("/registry/")
