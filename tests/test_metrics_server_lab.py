"""Chapter 05 on its own 2-node lab `msrv`: the kubelet TLS leg read from real files over SSH. The lab has no
kubelet, so a node without files is "n/a in lab"; on one node the test writes what kubeadm's kubelet writes
by default (self-signed serving certificate with the hostname as only SAN, a KubeletConfiguration without
serverTLSBootstrap) and the plan reaches a real cluster's verdict: secure mode needs serverTLSBootstrap."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_support import own_lab, params_file
from test_metrics_server_rules import make_cert, pem

from runbooks_lib.chapters.metrics_server import chapter, tls
from runbooks_lib.run import Run
from runbooks_lib.verdict import verdict_for

pytestmark = [pytest.mark.lab, pytest.mark.slow]
LAB = "msrv"
KUBELET_CONFIG = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\n"


@pytest.fixture(scope="module")
def lab_params(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with own_lab(LAB, nodes=2) as state:
        yield params_file(state, tmp_path_factory.mktemp(LAB) / f"{LAB}.yaml")


def by(run: Run) -> dict[tuple[str, str], tuple[str, str]]:
    return {(c.check, c.host): (c.status, c.detail) for c in run.checks}


def test_fresh_lab_plan_is_pass_with_kubelet_legs_na_in_lab(lab_params: Path, tmp_path: Path) -> None:
    run = Run.start("metrics-server", str(lab_params), [], str(tmp_path / "run"))
    r = chapter.run_chapter(run)
    got = by(run)
    assert verdict_for(run.checks) == "PASS", [c for c in run.checks if c.failed or c.drift]
    for node in (f"{LAB}-cp1", f"{LAB}-w1"):
        assert got[("tls.kubelet", node)][0] == "n/a in lab"
    assert got[("aggregation.flags", f"{LAB}-cp1")][0] == "n/a in lab"
    assert set(r.kubelets["node"]) == {f"{LAB}-cp1", f"{LAB}-w1"}


def test_kubeadm_default_kubelet_certificate_read_over_ssh_needs_server_tls_bootstrap(
        lab_params: Path, tmp_path: Path) -> None:
    node = f"{LAB}-w1"
    run = Run.start("metrics-server", str(lab_params), [], str(tmp_path / "run"))
    t = run.fleet().transports[node]
    cert, _key = make_cert(f"{node}@1764550000", [node])
    try:
        t.run("mkdir -p /var/lib/kubelet/pki", sudo=True)
        t.write_file(tls.SELF_SIGNED, pem(cert))
        t.write_file(tls.KUBELET_CONFIG, KUBELET_CONFIG)
        r = chapter.run_chapter(run)
        status, detail = by(run)[("tls.kubelet", node)]
        assert status == "drift" and "Secure mode needs serverTLSBootstrap" in detail
        assert "doesn't contain any IP SANs" in detail and "self-signed" in detail
        row = r.kubelets.set_index("node").loc[node]
        assert row["self_signed"] is True or row["self_signed"] == True  # noqa: E712 (numpy bool)
        assert row["serverTLSBootstrap"] is False or row["serverTLSBootstrap"] == False  # noqa: E712
        assert verdict_for(run.checks) == "DRIFT"
        # apply without confirm: the kubelet restart is withheld and named
        params = tmp_path / "apply.yaml"
        params.write_text(lab_params.read_text() + "mode: apply\n")
        applied = Run.start("metrics-server", str(params), [], str(tmp_path / "apply"))
        chapter.run_chapter(applied)
        status, detail = by(applied)[("kubelet_config.node", node)]
        assert status == "drift" and f"confirm={LAB}" in detail
    finally:
        t.run("rm -rf /var/lib/kubelet", sudo=True)


UNIT = "[Unit]\nDescription=stand-in kubelet (test)\n[Service]\nExecStart=/bin/sleep infinity\n"


def test_confirmed_apply_enables_server_tls_bootstrap_and_restarts_kubelet(lab_params: Path, tmp_path: Path) -> None:
    """The lab has no kubelet: a stand-in kubelet.service (sleep) lets the real node step run over SSH —
    backup, config written, `systemctl restart kubelet`, then the Node waited Ready in the API."""
    node = f"{LAB}-w1"
    params = tmp_path / "apply.yaml"
    params.write_text(lab_params.read_text() + f"mode: apply\nconfirm: {LAB}\n")
    run = Run.start("metrics-server", str(params), [], str(tmp_path / "apply"))
    t = run.fleet().transports[node]
    since = "systemctl show kubelet -p ActiveEnterTimestampMonotonic --value"
    try:
        t.run("mkdir -p /var/lib/kubelet/pki", sudo=True)
        t.write_file(tls.KUBELET_CONFIG, KUBELET_CONFIG)
        t.write_file("/etc/systemd/system/kubelet.service", UNIT)
        t.run("systemctl daemon-reload && systemctl start kubelet", sudo=True)
        before = t.run(since, sudo=True).stdout.strip()
        chapter.run_chapter(run)
        status, detail = by(run)[("kubelet_config.node", node)]
        assert status == "changed" and "Ready" in detail, detail
        assert tls.server_tls_bootstrap(t.read_file(tls.KUBELET_CONFIG)) is True
        assert t.read_file(tls.KUBELET_CONFIG + ".runbooks-bak") == KUBELET_CONFIG
        assert t.run(since, sudo=True).stdout.strip() != before          # kubelet really restarted
        assert (("kubelet_config.node", f"{LAB}-cp1")) not in by(run)     # no config there: nothing to change
        again = Run.start("metrics-server", str(params), [], str(tmp_path / "again"))
        chapter.run_chapter(again)
        assert ("kubelet_config.node", node) not in by(again)             # second apply: nothing to do
    finally:
        t.run("systemctl stop kubelet; rm -f /etc/systemd/system/kubelet.service; systemctl daemon-reload; "
              "rm -rf /var/lib/kubelet", sudo=True)
