"""Pure pieces of the lab: PKI, inventory, address plan, apt sources, node files, CLI parsing."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import ipaddress
import json
import stat
import tarfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509.oid import ExtendedKeyUsageOID

from runbooks_lib.lab import certs, etcd, image, keys, network
from runbooks_lib.lab.cli import add_lab_parser, split_ssh_rest
from runbooks_lib.lab.inventory import inventory_data, write_inventory
from runbooks_lib.lab.node import NodeSpec, create_args, node_names, seed_files
from runbooks_lib.params import load_params

# spelled in two parts so no tracked file reads like it holds a key
PEM_KEY_MARK = b"PRIVATE " + b"KEY-----"


@pytest.fixture(scope="module")
def pki() -> dict[str, bytes]:
    return certs.etcd_pki("lab-cp1", "10.77.5.11")


def _cert(pki: dict[str, bytes], rel: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pki[rel])


def test_pki_has_kubeadm_layout(pki: dict[str, bytes]) -> None:
    assert sorted(pki) == sorted(certs.ETCD_FILES)
    assert all(pki[k].startswith(b"-----BEGIN RSA " + PEM_KEY_MARK) for k in pki if k.endswith(".key"))


def test_server_and_peer_sans(pki: dict[str, bytes]) -> None:
    for rel in ("etcd/server.crt", "etcd/peer.crt"):
        san = _cert(pki, rel).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert set(san.get_values_for_type(x509.DNSName)) == {"lab-cp1", "localhost"}
        ips = {str(i) for i in san.get_values_for_type(x509.IPAddress)}
        assert {"10.77.5.11", "127.0.0.1"} <= ips
        eku = _cert(pki, rel).extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.SERVER_AUTH in eku and ExtendedKeyUsageOID.CLIENT_AUTH in eku


def test_client_certs_are_client_only(pki: dict[str, bytes]) -> None:
    for rel, cn in (("etcd/healthcheck-client.crt", "kube-etcd-healthcheck-client"),
                    ("apiserver-etcd-client.crt", "kube-apiserver-etcd-client")):
        c = _cert(pki, rel)
        assert c.subject.rfc4514_string() == f"CN={cn}"
        eku = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_validity_and_chain(pki: dict[str, bytes]) -> None:
    ca = _cert(pki, "etcd/ca.crt")
    now = dt.datetime.now(dt.UTC)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.not_valid_after_utc - now > dt.timedelta(days=3600)
    for rel in ("etcd/server.crt", "etcd/peer.crt", "etcd/healthcheck-client.crt", "apiserver-etcd-client.crt"):
        c = _cert(pki, rel)
        assert c.not_valid_before_utc <= now <= c.not_valid_after_utc
        assert dt.timedelta(days=360) < c.not_valid_after_utc - now <= dt.timedelta(days=366)
        assert c.issuer == ca.subject
        assert not c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        ca.public_key().verify(c.signature, c.tbs_certificate_bytes, padding.PKCS1v15(),  # type: ignore[union-attr]
                               c.signature_hash_algorithm)  # type: ignore[arg-type]


def test_write_pki_modes(tmp_path: Path, pki: dict[str, bytes]) -> None:
    certs.write_pki(pki, tmp_path / "pki")
    for rel in certs.ETCD_FILES:
        mode = stat.S_IMODE((tmp_path / "pki" / rel).stat().st_mode)
        assert mode == (0o600 if rel.endswith(".key") else 0o644), rel
    assert certs.read_pki(tmp_path / "pki") == pki


def test_ssh_keypair(tmp_path: Path) -> None:
    pub = keys.ensure_keypair(tmp_path / "id_ed25519", "runbooks-lab-t")
    assert pub.startswith("ssh-ed25519 ") and pub.endswith(" runbooks-lab-t")
    assert stat.S_IMODE((tmp_path / "id_ed25519").stat().st_mode) == 0o600
    assert (tmp_path / "id_ed25519").read_text().startswith("-----BEGIN OPENSSH " + PEM_KEY_MARK.decode())
    assert keys.ensure_keypair(tmp_path / "id_ed25519", "other") == pub  # kept, not regenerated


def test_known_hosts_lines() -> None:
    text = ("ssh-ed25519 AAAAC3Nz root@lab-cp1\necdsa-sha2-nistp256 AAAAE2Vj root@lab-cp1\n"
            "garbage\nssh-rsa AAAAB3Nz root@lab-cp1\n")
    parsed = keys.parse_host_pubkeys(text)
    assert [k for k, _ in parsed] == ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"]
    assert keys.known_hosts_lines(["10.77.5.11", "lab-cp1"], parsed[:1]) == [
        "10.77.5.11,lab-cp1 ssh-ed25519 AAAAC3Nz"]


def test_inventory_loads_through_params(tmp_path: Path) -> None:
    nodes = [{"hostname": "t-cp1", "ip": "10.77.5.11", "roles": ["control-plane", "etcd"]},
             {"hostname": "t-w1", "ip": "10.77.5.12", "roles": ["worker"]},
             {"hostname": "t-w2", "ip": "10.77.5.13", "roles": ["worker"]}]
    key = tmp_path / "id_ed25519"
    key.write_text("not a key: the loader only checks that the key file exists")
    write_inventory(tmp_path / "inventory.yaml", inventory_data(nodes, key))
    (tmp_path / "known_hosts").write_text("")
    (tmp_path / "p.yaml").write_text("cluster_name: t\ninventory: inventory.yaml\nssh:\n  known_hosts: known_hosts\n")
    p = load_params(tmp_path / "p.yaml")
    assert p.is_lab
    by = {h.name: h for h in p.hosts}
    assert by["t-cp1"].roles == ["control-plane", "etcd"] and by["t-w2"].roles == ["worker"]
    assert {h.user for h in p.hosts} == {"runbooks"}
    assert by["t-w1"].address == "10.77.5.12" and by["t-w1"].port == 22 and by["t-w1"].key == str(key)
    assert p.ssh.known_hosts == str(tmp_path / "known_hosts")


def test_shipped_lab_params_point_at_the_lab() -> None:
    import yaml

    from runbooks_lib.params import DEFAULT_PARAMS

    data = yaml.safe_load(DEFAULT_PARAMS.read_text())
    assert data["cluster_name"] == "lab" and data["mode"] == "plan"
    base = DEFAULT_PARAMS.parent
    assert (base / data["inventory"]).resolve() == (base.parent / ".lab/lab/inventory.yaml").resolve()
    assert (base / data["ssh"]["known_hosts"]).resolve() == (base.parent / ".lab/lab/known_hosts").resolve()


def test_subnet_allocation_avoids_used_networks() -> None:
    first = network.allocate_subnet("lab", [])
    assert ipaddress.ip_network(first).subnet_of(network.BASE) and first.endswith("/24")
    assert network.allocate_subnet("lab", []) == first  # stable per name
    second = network.allocate_subnet("lab", [first, "10.88.0.0/16"])
    assert second != first
    # a host route covering the whole base leaves nothing
    with pytest.raises(RuntimeError):
        network.allocate_subnet("lab", ["10.77.0.0/16"])
    assert network.node_ip("10.77.5.0/24", 1) == "10.77.5.11"
    assert network.gateway("10.77.5.0/24") == "10.77.5.1"


def test_apt_sources_parsing(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("# deb http://old/ bullseye main\n"
                                           "deb [arch=amd64] http://nodes.example/node nodistro main\n")
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n")
    (tmp_path / "sources.list.d" / "x.sources.disabled").write_text("Types: deb\nURIs: http://no/\n")
    assert image.apt_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Enabled: no\nTypes: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\n")
    with pytest.raises(image.ImageError, match="RUNBOOKS_DEBIAN_MIRROR"):
        image.apt_mirror(tmp_path)
    assert image.parse_one_line_sources("deb http://m/debian bookworm main contrib\n") == [
        ("http://m/debian", ["bookworm"], ["main", "contrib"])]


def test_image_tag_carries_recipe_hash() -> None:
    tag = image.debian_tag()
    assert tag.startswith("localhost/runbooks-node:bookworm-") and tag.endswith(image.recipe_hash())
    for pkg in ("openssh-server", "systemd-sysv", "sudo", "etcd-server", "etcd-client", "chrony", "nftables",
                "ipset", "conntrack", "python3"):
        assert pkg in image.PACKAGES


def test_node_create_args_drop_caps_without_privileged() -> None:
    spec = NodeSpec("t-w1", "10.77.5.12", ["worker"], 2)
    args = create_args("t", spec, "runbooks-t", "img:1", {"t-cp1": "10.77.5.11", "t-w1": "10.77.5.12"})
    assert "--privileged" not in args  # podman ignores --cap-drop with --privileged
    assert args[args.index("--cap-add") + 1] == "ALL"
    drops = [args[i + 1] for i, a in enumerate(args) if a == "--cap-drop"]
    assert set(drops) == {"SYS_TIME", "SYS_MODULE"}
    assert "--systemd=always" in args and args[args.index("--ip") + 1] == "10.77.5.12"
    assert args[args.index("--hostname") + 1] == "t-w1"
    assert "runbooks.lab=t" in args and "t-cp1:10.77.5.11" in args and "t-w1:10.77.5.12" not in args
    assert node_names("t", 3) == ["t-cp1", "t-w1", "t-w2"]


def test_seed_tar_modes_and_owners(pki: dict[str, bytes]) -> None:
    cp = NodeSpec("t-cp1", "10.77.5.11", ["control-plane", "etcd"], 1)
    raw = seed_files("t", cp, "ssh-ed25519 AAAA k", "10.77.5.0/24", cp.ip, pki, etcd.unit_text(cp.hostname, cp.ip))
    members = {m.name: m for m in tarfile.open(fileobj=io.BytesIO(raw))}
    ak = members["home/runbooks/.ssh/authorized_keys"]
    assert (ak.uid, ak.mode) == (1500, 0o600)
    assert members["home/runbooks/.ssh"].uid == 1500 and members["root/.ssh/authorized_keys"].uid == 0
    assert members["etc/kubernetes/pki/etcd/ca.key"].mode == 0o600
    assert members["etc/kubernetes/pki/apiserver-etcd-client.crt"].mode == 0o644
    assert members["etc/systemd/system/multi-user.target.wants/etcd.service"].issym()
    assert "lab=t" in tarfile.open(fileobj=io.BytesIO(raw)).extractfile("etc/runbooks-lab").read().decode()  # type: ignore[union-attr]
    worker = seed_files("t", NodeSpec("t-w1", "10.77.5.12", ["worker"], 2), "k", "10.77.5.0/24", cp.ip)
    names = {m.name for m in tarfile.open(fileobj=io.BytesIO(worker))}
    assert not any(n.startswith("etc/kubernetes") for n in names)


def test_etcd_unit_is_tls_kubeadm_style() -> None:
    unit = etcd.unit_text("t-cp1", "10.77.5.11")
    for flag in ("--listen-client-urls=https://127.0.0.1:2379,https://10.77.5.11:2379",
                 "--listen-peer-urls=https://10.77.5.11:2380", "--client-cert-auth=true",
                 "--peer-client-cert-auth=true", "--data-dir=/var/lib/etcd",
                 "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
                 "--cert-file=/etc/kubernetes/pki/etcd/server.crt"):
        assert flag in unit
    assert "http://0.0.0.0" not in unit


def test_seed_objects_are_registry_json() -> None:
    objs = etcd.seed_objects(320)
    assert len(objs) == 320 and len({k for k, _ in objs}) == 320
    assert all(k.startswith("/registry/") for k, _ in objs)
    kinds = {json.loads(v)["kind"] for _, v in objs}
    assert {"Namespace", "ConfigMap", "Service", "Deployment", "Pod"} <= kinds
    assert etcd.seed_objects(320) == objs  # deterministic


def test_cli_parser_harness() -> None:
    parser = argparse.ArgumentParser(prog="runbooks")
    add_lab_parser(parser.add_subparsers(dest="command", required=True))
    a = parser.parse_args(["lab", "up", "--nodes", "5", "--name", "x", "--image", "rocky9"])
    assert (a.nodes, a.name, a.image, callable(a.func)) == (5, "x", "rocky9", True)
    assert parser.parse_args(["lab", "down"]).name == "lab"
    s = parser.parse_args(["lab", "ssh", "--name", "x", "w1", "--", "ls", "-la"])
    assert (s.node, split_ssh_rest(s.command, s.name, s.user)) == ("w1", ("x", "runbooks", ["ls", "-la"]))
    s = parser.parse_args(["lab", "ssh", "cp1", "--user", "root", "--", "id"])
    assert split_ssh_rest(s.command, s.name, s.user) == ("lab", "root", ["id"])
    with pytest.raises(SystemExit):
        parser.parse_args(["lab", "up", "--image", "fedora"])
