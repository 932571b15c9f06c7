"""Chapter 02: PKI audit (expiry, SANs, CA hash) on certificates made like kubeadm's, and preflight rules."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess

from runbooks_lib.chapters.kubeadm import config, pki, preflight
from runbooks_lib.chapters.kubeadm.nodes import KubeadmRun, KubeState, NodeFacts
from runbooks_lib.facts.firewall import Firewall
from runbooks_lib.facts.lab import LabFacts
from runbooks_lib.facts.ports import Listener
from runbooks_lib.facts.selinux import SELinux
from runbooks_lib.lab import certs


def test_lab_pki_is_complete_and_the_apiserver_covers_the_expected_sans() -> None:
    files = certs.kubeadm_pki("cp1", "10.1.2.3")
    for rel in (*pki.CERTS, *pki.PUBLIC_KEYS, "ca.key", "sa.key", "front-proxy-ca.key"):
        assert rel in files, rel
    api = pki.load("apiserver.crt", files["apiserver.crt"].decode())
    wanted = pki.expected_sans(None, [("cp1", "10.1.2.3")], ["127.0.0.1"], "10.96.0.0/16", "cluster.local")
    assert "10.96.0.1" in wanted and pki.missing_sans(api, wanted) == []
    assert pki.missing_sans(api, wanted + ["vip.example", "10.1.2.99"]) == ["vip.example", "10.1.2.99"]
    assert 364 < api.days_left(dt.datetime.now(dt.UTC)) <= 365
    assert pki.load("ca.crt", files["ca.crt"].decode()).is_ca
    assert pki.public_key_ok(files["sa.pub"].decode()) and not pki.public_key_ok("garbage")


def test_ca_hash_is_sha256_of_the_spki_as_openssl_computes_it() -> None:
    ca = certs.kubeadm_pki("cp1", "10.1.2.3")["ca.crt"]
    # the kubeadm docs' recipe: openssl x509 -pubkey | openssl rsa -pubin -outform der | sha256sum
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=ca, capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, capture_output=True,
                         check=True).stdout
    assert pki.ca_cert_hash(ca.decode()) == "sha256:" + hashlib.sha256(der).hexdigest()


def facts(**kw: object) -> NodeFacts:
    base: dict[str, object] = dict(
        host="n1", family="rhel", hostname="n1", resolved=["10.0.0.1"], nproc=2, mem_mb=4000, listeners=[],
        swaps=0, cgroup_fs="cgroup2fs", tools={t: f"/usr/bin/{t}" for t in ("crictl", "ip", "iptables", "mount",
                                                                            "nsenter", "ebtables", "ethtool",
                                                                            "socat", "tc")},
        firewall=Firewall("firewalld", True, False), selinux=SELinux("permissive", "permissive", ""),
        ip_forward="1", proxy={}, kube=KubeState(), cri={"socket", "answers"}, files={}, certs={}, lab=LabFacts(),
        fio={"p90": 1.0, "p99": 3.0}, kubeadm=KubeadmRun(False))
    base.update(kw)
    return NodeFacts(**base)  # type: ignore[arg-type]


def ctx(**kw: object) -> preflight.Context:
    base: dict[str, object] = dict(role="control-plane", lab=False, initialised=False,
                                   target=config.Version.parse("1.30.2"), pod_cidr="10.244.0.0/16",
                                   service_cidr="10.96.0.0/16", node_addresses=["10.0.0.1"])
    base.update(kw)
    return preflight.Context(**base)  # type: ignore[arg-type]


def statuses(rows: list[tuple[str, str, str]]) -> dict[str, str]:
    return {n: s for n, s, _ in rows}


def test_a_ready_control_plane_passes_every_check() -> None:
    got = statuses(preflight.evaluate(facts(), ctx()))
    assert set(got.values()) == {"pass"}, got
    assert {"NumCPU", "Mem", "Port-6443", "Port-2379", "Swap", "CRI", "FileExisting-crictl", "EtcdDisk",
            "SELinux", "HTTPProxyCIDR"} <= set(got)


def test_kubeadm_errors_fail_chapter01_items_drift_and_lab_etcd_is_na() -> None:
    f = facts(nproc=1, listeners=[Listener("0.0.0.0", 6443, ("haproxy",)), Listener("0.0.0.0", 2379, ("etcd",))],
              swaps=1, ip_forward="0", cri=set(), selinux=SELinux("enforcing", "enforcing", ""),
              fio={"p90": 30.0, "p99": 40.0}, proxy={"https_proxy": "http://p:3128", "no_proxy": "10.0.0.1,localhost"})
    got = statuses(preflight.evaluate(f, ctx()))
    assert got["NumCPU"] == "fail" and got["Port-6443"] == "fail" and got["Port-2379"] == "fail"
    assert got["EtcdDisk"] == "fail" and got["HTTPProxyCIDR"] == "warn"
    assert {got[k] for k in ("Swap", "FileContent--proc-sys-net-ipv4-ip_forward", "CRI", "SELinux")} == {"drift"}
    lab = statuses(preflight.evaluate(facts(listeners=[Listener("10.0.0.1", 2379, ("etcd",))],
                                            tools={"ip": "/sbin/ip"}), ctx(lab=True)))
    assert lab["Port-2379"] == "n/a in lab" and lab["FileExisting-crictl"] == "n/a in lab"
    assert lab["FileExisting-nsenter"] == "drift"
    initialised = statuses(preflight.evaluate(f, ctx(initialised=True)))
    assert "fail" not in initialised.values() and initialised["Port-6443"] == "warn"


def test_kubeadm_preflight_output_becomes_checks() -> None:
    run = KubeadmRun(True, 0, "", 1, "\t[ERROR Port-10250]: Port 10250 is in use\n\t[WARNING Firewalld]: x\n")
    got = statuses(preflight.evaluate(facts(kubeadm=run), ctx()))
    assert got["kubeadm:Port-10250"] == "fail" and got["kubeadm:Firewalld"] == "warn"
    assert statuses(preflight.evaluate(facts(cgroup_fs="tmpfs"), ctx(target=config.Version.parse("1.35.0"))))[
        "SystemVerification"] == "fail"


def _csr(user: str, dns: list[str], ips: list[str]) -> dict[str, object]:
    import base64
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    req = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user)]))
           .add_extension(x509.SubjectAlternativeName(sans), critical=False).sign(key, hashes.SHA256()))
    pem = req.public_bytes(serialization.Encoding.PEM)
    return {"metadata": {"name": "csr-x"}, "spec": {"signerName": "kubernetes.io/kubelet-serving", "username": user,
                                                     "request": base64.b64encode(pem).decode()}}


def test_kubelet_serving_csr_is_approvable_only_with_the_nodes_own_sans() -> None:
    from runbooks_lib.chapters.kubeadm.verify import csr_rows, serving_csr_matches

    nodes = {"w1": {"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.21"},
                                             {"type": "Hostname", "address": "w1"}]}}}
    assert serving_csr_matches(_csr("system:node:w1", ["w1"], ["10.0.0.21"]), nodes)[0]
    ok, why = serving_csr_matches(_csr("system:node:w1", ["w1", "evil.example"], ["10.0.0.21"]), nodes)
    assert not ok and "evil.example" in why
    assert not serving_csr_matches(_csr("system:node:w1", ["w1"], ["10.0.0.99"]), nodes)[0]
    assert not serving_csr_matches(_csr("system:node:w9", ["w9"], []), nodes)[0]
    assert not serving_csr_matches(_csr("mallory", ["w1"], []), nodes)[0]
    rows = csr_rows([_csr("system:node:w1", ["w1"], ["10.0.0.21"]),
                     {**_csr("system:node:w1", ["x"], []), "status": {"conditions": [{"type": "Approved"}]}}], nodes)
    assert len(rows) == 1 and rows[0][2] == "warn" and "approvable" in rows[0][3]
