"""Chapter 02: parsers of kubeadm's output, on real outputs from public material (tests/fixtures/kubeadm,
sources in PROVENANCE.md), and the node-fact parsers on written samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runbooks_lib.chapters.kubeadm import nodes, parse

FIX = Path(__file__).parent / "fixtures" / "kubeadm"


def read(name: str) -> str:
    return (FIX / name).read_text()


def test_check_expiration_tables_from_kubeadm_issue_2866() -> None:
    rows = parse.parse_check_expiration(read("check-expiration-kubeadm-2866.txt"))
    certs = [r for r in rows if not r.is_ca]
    cas = [r for r in rows if r.is_ca]
    assert [r.name for r in certs] == ["admin.conf", "apiserver", "apiserver-kubelet-client",
                                       "controller-manager.conf", "front-proxy-client", "scheduler.conf"]
    assert certs[4].authority == "front-proxy-ca" and certs[0].residual == "348d" and not certs[0].externally_managed
    assert [(r.name, r.residual) for r in cas] == [("ca", "6y"), ("front-proxy-ca", "6y")]
    assert parse.residual_days("348d") == 348 and parse.residual_days("6y") == 6 * 365
    assert parse.residual_days("<invalid>") is None


def test_check_expiration_with_stacked_etcd_rows() -> None:
    rows = parse.parse_check_expiration(read("check-expiration-csdn-etcd.txt"))
    assert len(rows) == 10
    assert {r.name for r in rows if r.authority == "etcd-ca"} == {
        "apiserver-etcd-client", "etcd-healthcheck-client", "etcd-peer", "etcd-server"}


def test_init_output_join_commands_and_certificate_key_sealos_409() -> None:
    out = parse.parse_init(read("init-sealos-409.txt"))
    cp, worker = out.control_plane_join, out.worker_join
    assert cp is not None and worker is not None
    assert cp.endpoint == "apiserver.cluster.local:6443" and cp.token == "kly2r1.fsakderiys0a7idn"
    assert cp.ca_hashes == ["sha256:c33fd6c9271e1269170d448bd48352d8bb45c85cecd2015c37905e9dcfc84ee2"]
    assert out.certificate_key == "6a08913b76edd4901e39217a227b7accb29b2fd75908a84e5aceb73db64c1c45"
    shown = cp.shown()
    assert all(s not in shown for s in cp.secrets()) and "--certificate-key <certificate-key>" in shown
    assert not worker.control_plane and worker.certificate_key is None


def test_upload_certs_key_and_init_token_openyurt_866() -> None:
    text = read("upload-certs-openyurt-866.txt")
    assert parse.parse_upload_certs(text) == "b35d5196705e3bf0661a7765b86e9774618197299793ccd30d8cd50a71f113be"
    assert parse.parse_token_create("[bootstrap-token] Using token: m4gcnu.0e0v6pp9v1dv1cmr") == \
        "m4gcnu.0e0v6pp9v1dv1cmr"


def test_token_create_print_join_command_kubeadm_1974() -> None:
    got = parse.parse_token_create(read("token-create-kubeadm-1974.txt"))
    assert isinstance(got, parse.JoinCommand)
    assert got.token == "l5evt9.83dwwp8jzvyud9w8" and got.control_plane
    assert got.ca_hashes == ["sha256:6b2f470e8e7a46f4ae7768bb781fbf71ece0876d10ce54e8c6f6e04dbc9639a7"]


def test_preflight_errors_and_warnings_from_issue_threads() -> None:
    errors = parse.parse_preflight(read("preflight-exoscale-224.txt"))
    assert [e.name for e in errors][:3] == ["Port-6443", "Port-10259", "Port-10257"]
    assert {e.level for e in errors} == {"ERROR"} and len(errors) == 11
    assert errors[-1].name == "DirAvailable--var-lib-etcd" and errors[-1].message == "/var/lib/etcd is not empty"
    warnings = parse.parse_preflight(read("preflight-kubeadm-1974.txt"))
    assert [w.name for w in warnings] == ["IsDockerSystemdCheck", "FileExisting-socat", "Hostname", "Hostname"]
    mixed = parse.parse_preflight(read("preflight-learnitguide-2.txt"))
    assert [(m.level, m.name) for m in mixed] == [("WARNING", "Firewalld"), ("ERROR", "Port-6443"),
                                                  ("ERROR", "Port-10251"), ("ERROR", "Port-10252")]


@pytest.mark.written_fixture
def test_fio_fdatasync_percentiles_written_sample() -> None:
    doc = {"jobs": [{"jobname": "etcd-disk", "sync": {"lat_ns": {"percentile": {
        "90.000000": 2_400_000, "99.000000": 8_700_000}}}}]}
    assert nodes.parse_fio("fio-3.33\n" + json.dumps(doc)) == {"p90": 2.4, "p99": 8.7}
    assert nodes.parse_fio("absent\n") == "fio not installed"
    assert isinstance(nodes.parse_fio("{}"), str)


@pytest.mark.written_fixture
def test_node_sections_written_sample() -> None:
    kube = nodes.parse_kube("present /var/lib/kubelet/config.yaml\nkubeadm v1.30.2\nkubelet Kubernetes v1.30.2\n"
                            "manifests etcd.yaml kube-apiserver.yaml \netcd-data member \nnm active\n")
    assert kube.kubeadm == "v1.30.2" and kube.kubelet == "v1.30.2" and kube.network_manager
    assert kube.manifests == ["etcd.yaml", "kube-apiserver.yaml"] and kube.etcd_data == ["member"]
    proxy = nodes.parse_proxy("HTTPS_PROXY=http://proxy:3128\nno_proxy='10.0.0.0/8'\n")
    assert proxy == {"https_proxy": "http://proxy:3128", "no_proxy": "10.0.0.0/8"}
    run = nodes.parse_kubeadm("@@validate\nok\n@@rc 0\n@@preflight\n\t[ERROR Swap]: running with swap on\n@@rc 1\n")
    assert run.available and run.validate_rc == 0 and run.preflight_rc == 1 and "[ERROR Swap]" in run.preflight_out
    assert not nodes.parse_kubeadm("absent\n").available
