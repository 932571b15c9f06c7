"""Pure parsers of etcd's configuration: kubeadm's static pod manifest and systemd units."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbooks_lib.chapters.etcd_backup import config as c

F = Path(__file__).parent / "fixtures" / "etcd"


@pytest.mark.written_fixture
def test_kubeadm_manifest_single_member() -> None:
    cfg = c.parse_manifest((F / "manifests" / "kubeadm-1.30-single.yaml").read_text())
    assert cfg.kind == "manifest"
    assert cfg.name == "k8s-master1"
    assert cfg.data_dir == "/var/lib/etcd"
    assert cfg.local_client_url() == "https://127.0.0.1:2379"
    assert cfg.tls == {"cacert": "/etc/kubernetes/pki/etcd/ca.crt", "cert": "/etc/kubernetes/pki/etcd/server.crt",
                       "key": "/etc/kubernetes/pki/etcd/server.key"}
    assert cfg.peer_urls == ["https://192.168.13.137:2380"]
    assert cfg.initial_cluster == {"k8s-master1": "https://192.168.13.137:2380"}


@pytest.mark.written_fixture
def test_kubeadm_manifest_joined_member() -> None:
    cfg = c.parse_manifest((F / "manifests" / "kubeadm-1.30-member3.yaml").read_text())
    assert cfg.name == "k8s-master3"
    assert cfg.get("initial-cluster-state") == "existing"
    assert list(cfg.initial_cluster) == ["k8s-master1", "k8s-master2", "k8s-master3"]


@pytest.mark.written_fixture
def test_repoint_manifest_changes_only_the_data_hostpath() -> None:
    text = (F / "manifests" / "kubeadm-1.30-single.yaml").read_text()
    out = c.repoint_manifest(text, "/var/lib/etcd-restore-20250101T000000Z")
    cfg = c.parse_manifest(out)
    assert cfg.data_dir == "/var/lib/etcd-restore-20250101T000000Z"
    assert cfg.get("data-dir") == "/var/lib/etcd"  # the container path stays; only the hostPath moves
    changed = [(a, b) for a, b in zip(text.splitlines(), out.splitlines(), strict=True) if a != b]
    assert changed == [("      path: /var/lib/etcd", "      path: /var/lib/etcd-restore-20250101T000000Z")]


def test_manifest_errors() -> None:
    with pytest.raises(c.ConfigError):
        c.parse_manifest("kind: Deployment\n")
    with pytest.raises(c.ConfigError):
        c.parse_manifest("{{{")


def test_lab_unit_as_systemctl_cat_prints_it() -> None:
    text = (F / "lab-etcd.unit.txt").read_text()
    cfg = c.parse_unit(text)
    assert cfg.kind == "unit" and cfg.name == "etcd-cp1"
    assert cfg.data_dir == "/var/lib/etcd"
    assert cfg.local_client_url() == "https://127.0.0.1:2379"
    assert cfg.peer_urls == ["https://10.77.149.11:2380"]
    assert c.unit_paths(text) == ["/etc/systemd/system/etcd.service"]


def test_repoint_lab_unit() -> None:
    text = (F / "lab-etcd.unit.txt").read_text()
    out = c.repoint_unit(text, "/var/lib/etcd", "/var/lib/etcd-restore-X")
    assert c.parse_unit(out).data_dir == "/var/lib/etcd-restore-X"
    assert "install -d -m 0700 /var/lib/etcd-restore-X" in out
    assert "/etc/kubernetes/pki/etcd/ca.crt" in out  # other paths under /etc untouched
    with pytest.raises(c.ConfigError):
        c.repoint_unit(text, "/srv/other", "/srv/new")


def test_debian_packaged_unit_with_environment() -> None:
    text = (F / "debian-etcd-server.unit.txt").read_text()
    assert c.environment_files(text) == ["/etc/default/%p"]
    cfg = c.parse_unit(text)
    assert cfg.data_dir == "/var/lib/etcd/default"


@pytest.mark.written_fixture
def test_rocky_unit_with_environment_file_from_the_seed() -> None:
    unit = (F / "rocky-etcd.unit.txt").read_text()
    env = (F / "rocky-etcd.conf").read_text()
    cfg = c.parse_unit(unit, env_files={"/etc/etcd/etcd.conf": env})
    assert cfg.name == "etcd0"
    assert cfg.data_dir == "/var/lib/etcd/etcd0"
    assert cfg.local_client_url() == "http://127.0.0.1:2379"
    assert len(cfg.initial_cluster) == 3
    out = c.repoint_unit(env, "/var/lib/etcd/etcd0", "/var/lib/etcd/etcd0-restore")
    assert 'ETCD_DATA_DIR="/var/lib/etcd/etcd0-restore"' in out


def test_parse_flags_forms() -> None:
    assert c.parse_flags(["--a=1", "--b", "2", "--c", "--d=x=y"]) == {"a": "1", "b": "2", "c": "true", "d": "x=y"}
