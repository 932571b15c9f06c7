"""Contract tests: what the lab's API server promises, checked the same way against any cluster.

Without ``RUNBOOKS_CONTRACT_KUBECONFIG`` they run against a lab API server started here (127.0.0.1,
an ephemeral port). With it (``RUNBOOKS_CONTRACT_KUBECONFIG=path pytest -m contract tests/contract``)
they run against that cluster's current context, in a scratch namespace ``contract-<random>``;
every cluster-scoped object they create is named ``contract-<random>...`` and deleted at the end.
Each test's docstring cites the Kubernetes documentation it follows.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import kubernetes
import pytest

from runbooks_lib.lab.apiserver import ApiDouble

ENV = "RUNBOOKS_CONTRACT_KUBECONFIG"
#: an image every lab catalogue lists and every cluster can pull (the kubeadm sandbox image)
PAUSE = "registry.k8s.io/pause:3.9"


@dataclass
class Resp:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def message(self) -> str:
        return str((self.body or {}).get("message", "")) if isinstance(self.body, dict) else str(self.body)

    @property
    def warnings(self) -> list[str]:
        return [v for k, v in self.headers.items() if k.lower() == "warning"]


class Cluster:
    """Raw API requests (status, body, headers; errors are answers, not exceptions) in a scratch namespace."""

    def __init__(self, kubeconfig: Path, lab: ApiDouble | None) -> None:
        self.client = kubernetes.config.new_client_from_config(str(kubeconfig))
        self.lab = lab
        self.tag = f"contract-{secrets.token_hex(3)}"
        self.ns = self.tag
        self.cluster_scoped: list[str] = []

    def request(self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None,
                content_type: str = "application/json", accept: str = "application/json") -> Resp:
        headers = {"Accept": accept, "Content-Type": content_type}
        cfg = self.client.configuration
        token = cfg.get_api_key_with_prefix("BearerToken") if hasattr(cfg, "get_api_key_with_prefix") else None
        if token:
            headers["Authorization"] = token
        url = cfg.host + path + (f"?{urlencode(query)}" if query else "")
        resp = self.client.call_api(method, url, header_params=headers,
                                    body=body, _request_timeout=30)
        status, data, multi = resp.status, resp.read(), resp.headers
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data.decode() if isinstance(data, bytes) else data
        flat: dict[str, str] = {}
        for k in multi:
            values = multi.getlist(k) if hasattr(multi, "getlist") else [multi[k]]
            flat[k] = ", ".join(values)
        return Resp(int(status), parsed, flat)

    # -- conveniences
    def path(self, api: str, plural: str, name: str = "", namespaced: bool = True, sub: str = "") -> str:
        root = f"/api/{api}" if "/" not in api else f"/apis/{api}"
        out = f"{root}/namespaces/{self.ns}/{plural}" if namespaced else f"{root}/{plural}"
        return out + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")

    def create(self, api: str, plural: str, obj: dict, namespaced: bool = True, **query: str) -> Resp:
        if not namespaced:
            self.cluster_scoped.append(self.path(api, plural, obj["metadata"]["name"], False))
        return self.request("POST", self.path(api, plural, namespaced=namespaced), obj, query)

    def get(self, api: str, plural: str, name: str, namespaced: bool = True, sub: str = "") -> Resp:
        return self.request("GET", self.path(api, plural, name, namespaced, sub))

    def apply(self, api: str, plural: str, obj: dict, manager: str, force: bool = False, **query: str) -> Resp:
        q = {"fieldManager": manager, **({"force": "true"} if force else {}), **query}
        return self.request("PATCH", self.path(api, plural, obj["metadata"]["name"]), obj, q,
                            "application/apply-patch+yaml")

    def patch(self, api: str, plural: str, name: str, patch: Any, kind: str = "merge", sub: str = "",
              namespaced: bool = True, **query: str) -> Resp:
        return self.request("PATCH", self.path(api, plural, name, namespaced, sub), patch, query,
                            f"application/{kind}-patch+json")

    def delete(self, api: str, plural: str, name: str, namespaced: bool = True, **query: str) -> Resp:
        return self.request("DELETE", self.path(api, plural, name, namespaced), None, query)

    def name(self, what: str) -> str:
        return f"{self.tag}-{what}"


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    real = os.environ.get(ENV)
    lab: ApiDouble | None = None
    if real:
        kubeconfig = Path(real)
    else:
        lab = ApiDouble(rollout_step_s=0.1, pod_ready_s=0.1)
        lab.start()
        kubeconfig = lab.write_kubeconfig(tmp_path_factory.mktemp("contract") / "kubeconfig")
    c = Cluster(kubeconfig, lab)
    made = c.request("POST", "/api/v1/namespaces", {"metadata": {"name": c.ns, "labels": {"runbooks.io/contract": "1"}}})
    assert made.status == 201, made.body
    try:
        yield c
    finally:
        for path in reversed(c.cluster_scoped):
            c.request("DELETE", path)
        c.request("DELETE", f"/api/v1/namespaces/{c.ns}")
        if lab is not None:
            lab.stop()


@pytest.fixture
def timeout(cluster: Cluster) -> float:
    """How long a controller-driven change may take: seconds in the lab, longer on a real cluster."""
    return 15.0 if cluster.lab is not None else 120.0
