"""pytest plugin: ``api_double`` starts the HTTP(S) Kubernetes API double and writes a kubeconfig.

Register with ``pytest_plugins = ["kube_double.fixture"]`` in tests/conftest.py (tests/ is on
sys.path), or import the fixtures into a test module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from runbooks_lib.lab.apiserver import ApiDouble
from runbooks_lib.run import Run

SAMPLES = Path(__file__).resolve().parent / "samples"


@pytest.fixture
def api_double(tmp_path: Path) -> Iterator[tuple[Path, str, ApiDouble]]:
    """(kubeconfig path, server URL, the double) — a fresh seeded cluster per test, fast controllers."""
    double = ApiDouble(rollout_step_s=0.1, pod_ready_s=0.1)
    url = double.start()
    kubeconfig = double.write_kubeconfig(tmp_path / "kubeconfig")
    try:
        yield kubeconfig, url, double
    finally:
        double.stop()


def make_run(tmp_path: Path, kubeconfig: Path, *, apply: bool = False, context: str | None = None,
             name: str = "run") -> Run:
    """A Run whose parameters point kube.kubeconfig at ``kubeconfig`` (apply + confirm when asked)."""
    params = {"cluster_name": "double", "kube": {"kubeconfig": str(kubeconfig), "request_timeout": 10}}
    if context:
        params["kube"]["context"] = context
    if apply:
        params.update(mode="apply", confirm="double")
    path = tmp_path / f"{name}-params.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return Run.start("kube-proxy-modes", str(path), [], str(tmp_path / f"{name}-dir"))


@pytest.fixture
def kube_run(tmp_path: Path, api_double: tuple[Path, str, ApiDouble]) -> Run:
    """A plan-mode Run against the double."""
    return make_run(tmp_path, api_double[0])


@pytest.fixture
def kube_apply_run(tmp_path: Path, api_double: tuple[Path, str, ApiDouble]) -> Run:
    """An apply-mode, confirmed Run against the double."""
    return make_run(tmp_path, api_double[0], apply=True, name="apply")
