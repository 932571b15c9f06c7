"""Chapter 05's pure rules: compatibility matrix, argument audit and patches, both TLS legs from real
certificates (made here with cryptography, as kubelet and the cluster CA make them), CSR approval
rules, APIService failure reasons, the HPA "missing request" trap."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from runbooks_lib.chapters.metrics_server import compat, metrics, tls

NOW = dt.datetime.now(dt.UTC)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = ([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)] if org else []) + \
        [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    return x509.Name(attrs)


def make_cert(subject: str, sans: list[str], issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
              days: int = 365) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    gen: list[x509.GeneralName] = []
    for s in sans:
        try:
            gen.append(x509.IPAddress(ipaddress.ip_address(s)))
        except ValueError:
            gen.append(x509.DNSName(s))
    b = (x509.CertificateBuilder().subject_name(_name(subject))
         .issuer_name(issuer[0].subject if issuer else _name(subject)).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(days=1))
         .not_valid_after(NOW + dt.timedelta(days=days)))
    if gen:
        b = b.add_extension(x509.SubjectAlternativeName(gen), critical=False)
    return b.sign(issuer[1] if issuer else key, hashes.SHA256()), key


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_compatibility_matrix_against_the_server_version() -> None:
    assert compat.compatibility((0, 9, 0), (1, 34))[0] == "pass"
    assert compat.compatibility((0, 9, 0), (1, 33))[0] == "fail"
    assert compat.compatibility((0, 8, 1), (1, 30))[0] == "fail"
    status, detail = compat.compatibility((0, 7, 2), (1, 34))
    assert status == "pass" and "0.9.x is the newest line" in detail
    assert compat.compatibility((0, 7, 2), (1, 30)) == ("pass", "metrics-server 0.7.2 on Kubernetes 1.30: 0.7.x supports 1.27+")
    assert compat.compatibility(None, (1, 30))[0] == "warn"
    assert compat.image_version("registry.k8s.io/metrics-server/metrics-server:v0.7.2") == (0, 7, 2)
    assert compat.image_version("my.reg:5000/metrics-server@sha256:" + "0" * 64) is None


def test_args_added_never_replace_the_defaults_and_the_audit_names_missing_ones() -> None:
    added = compat.add_args(compat.UPSTREAM_ARGS, ["--kubelet-insecure-tls", "--metric-resolution=30s"])
    assert added[:4] == compat.UPSTREAM_ARGS[:4] and "--metric-resolution=30s" in added
    assert added[-1] == "--kubelet-insecure-tls" and len(added) == len(compat.UPSTREAM_ARGS) + 1
    # the kustomize trap: args replaced by one flag drop --metric-resolution=15s silently
    d = compat.diff_args(compat.UPSTREAM_ARGS, ["--kubelet-insecure-tls", "--secure-port=4443"])
    assert "--metric-resolution=15s" in d.missing and ("--secure-port=10250", "--secure-port=4443") in d.replaced
    assert d.added == ["--kubelet-insecure-tls"]
    assert compat.mirrored("registry.k8s.io/metrics-server/metrics-server:v0.7.2",
                           "registry.aliyuncs.com/google_containers") == \
        "registry.aliyuncs.com/google_containers/metrics-server:v0.7.2"


def test_kubelet_leg_self_signed_without_ip_san_is_drift_ca_issued_with_ip_passes() -> None:
    # kubelet's default: self-signed, CN <hostname>@<timestamp>, the hostname as the only SAN
    self_signed, _ = make_cert("w1@1700000000", ["w1"])
    ca = make_cert("kubernetes", [])
    c = tls.serving_cert(tls.SELF_SIGNED, pem(self_signed), pem(ca[0]))
    leg = tls.judge_kubelet("192.0.2.12", False, c, insecure=False)
    assert leg.status == "drift" and "doesn't contain any IP SANs" in leg.detail and "signed by unknown" in leg.detail
    assert tls.judge_kubelet("192.0.2.12", False, c, insecure=True).status == "warn"
    issued, _ = make_cert("system:node:w1", ["w1", "192.0.2.12"], issuer=ca)
    c2 = tls.serving_cert(tls.BOOTSTRAPPED, pem(issued), pem(ca[0]))
    assert c2.by_cluster_ca is True and c2.ip_sans == ["192.0.2.12"]
    assert tls.judge_kubelet("192.0.2.12", True, c2, insecure=False).status == "pass"
    # issued by another CA: not verifiable
    other = make_cert("other-ca", [])
    c3 = tls.serving_cert(tls.BOOTSTRAPPED, pem(make_cert("system:node:w1", ["192.0.2.12"], issuer=other)[0]),
                          pem(ca[0]))
    assert c3.by_cluster_ca is False and tls.judge_kubelet("192.0.2.12", True, c3, False).status == "drift"
    expired, _ = make_cert("system:node:w1", ["192.0.2.12"], issuer=ca, days=-1)
    assert tls.judge_kubelet("192.0.2.12", True, tls.serving_cert("x", pem(expired), None), False).status == "fail"
    assert tls.server_tls_bootstrap("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n") is False
    assert tls.server_tls_bootstrap("kind: KubeletConfiguration\nserverTLSBootstrap: true\n") is True


def csr(node: str, sans: list[str], *, user: str | None = None, cn: str | None = None,
        signer: str = tls.SIGNER, usages: tuple[str, ...] = ("digital signature", "server auth")) -> dict:
    """A CSR object as kubelet sends it with serverTLSBootstrap (certificates.k8s.io/v1 reference)."""
    key = ec.generate_private_key(ec.SECP256R1())
    gen = [x509.IPAddress(ipaddress.ip_address(s)) if s[0].isdigit() else x509.DNSName(s) for s in sans]
    req = (x509.CertificateSigningRequestBuilder().subject_name(_name(cn or f"system:node:{node}", "system:nodes"))
           .add_extension(x509.SubjectAlternativeName(gen), critical=False).sign(key, hashes.SHA256()))
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": f"csr-{node}"},
            "spec": {"request": base64.b64encode(req.public_bytes(serialization.Encoding.PEM)).decode(),
                     "signerName": signer, "usages": list(usages), "username": user or f"system:node:{node}",
                     "groups": ["system:nodes", "system:authenticated"]},
            "status": {}}


NODES = {"w1": ["w1", "192.0.2.12"], "w2": ["w2", "192.0.2.13"]}


def test_csr_approved_only_when_requestor_and_sans_match_the_node() -> None:
    assert tls.decide_csr(csr("w1", ["w1", "192.0.2.12"]), NODES).approve
    foreign = tls.decide_csr(csr("w1", ["w1", "192.0.2.12", "192.0.2.99"]), NODES)
    assert not foreign.approve and "192.0.2.99" in foreign.reason
    other_node = tls.decide_csr(csr("w1", ["w1", "192.0.2.13"]), NODES)   # w2's address in w1's request
    assert not other_node.approve
    assert not tls.decide_csr(csr("w1", ["w1"], user="system:serviceaccount:default:x"), NODES).approve
    assert not tls.decide_csr(csr("w1", ["w1"], cn="system:node:w2"), NODES).approve
    assert not tls.decide_csr(csr("w9", ["w9"]), NODES).approve
    assert not tls.decide_csr(csr("w1", ["w1"], signer="kubernetes.io/kube-apiserver-client-kubelet"), NODES).approve
    assert not tls.decide_csr(csr("w1", ["w1"], usages=("digital signature", "client auth")), NODES).approve
    assert tls.pending(csr("w1", ["w1"]))
    assert not tls.pending({"status": {"conditions": [{"type": "Approved", "status": "True"}]}})


@pytest.mark.parametrize(("reason", "message", "expect"), [
    ("MissingEndpoints", 'endpoints for service/metrics-server in "kube-system" have no addresses with port name "https"',
     "no ready endpoint"),
    ("FailedDiscoveryCheck", "failing or missing response from https://10.244.1.3:10250/apis/metrics.k8s.io/v1beta1: "
     "Get \"https://10.244.1.3:10250/apis/metrics.k8s.io/v1beta1\": dial tcp 10.244.1.3:10250: i/o timeout", "firewalld"),
    ("FailedDiscoveryCheck", "failing or missing response from https://10.244.1.3:10250/apis/metrics.k8s.io/v1beta1: "
     "bad status from https://10.244.1.3:10250/apis/metrics.k8s.io/v1beta1: 503", "cannot reach the pod on 10250"),
    ("FailedDiscoveryCheck", "failing or missing response from https://10.244.1.3:10250/apis/metrics.k8s.io/v1beta1: "
     "bad status from https://10.244.1.3:10250/apis/metrics.k8s.io/v1beta1: 403", "front-proxy"),
    ("FailedDiscoveryCheck", "x509: certificate signed by unknown authority", "requestheader-client-ca-file"),
    ("ServiceNotFound", 'service/metrics-server in "kube-system" is not present', "does not exist"),
])
def test_apiservice_failure_reasons_are_explained(reason: str, message: str, expect: str) -> None:
    obj = {"status": {"conditions": [{"type": "Available", "status": "False", "reason": reason, "message": message}]}}
    ok, r, m = metrics.available(obj)
    assert not ok and expect in metrics.explain(r, m)


def test_hpa_trap_pods_without_requests_are_named() -> None:
    hpa = {"metadata": {"name": "web", "namespace": "default"},
           "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                                                  "target": {"type": "Utilization", "averageUtilization": 50}}}]}}
    with_req = {"metadata": {"name": "web-a"}, "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "50m"}}}]}}
    without = {"metadata": {"name": "web-b"}, "spec": {"containers": [{"name": "c"}, {"name": "side", "resources": {}}]}}
    r = metrics.hpa_readiness(hpa, [with_req, without], lab=False)
    assert r.status == "fail" and "web-b: cpu" in r.detail and "web-a" not in r.detail
    ok = metrics.hpa_readiness(hpa | {"status": {"conditions": [{"type": "ScalingActive", "status": "True",
                                                                    "reason": "ValidMetricFound"}]}}, [with_req], lab=False)
    assert ok.status == "pass"
    assert metrics.hpa_readiness(hpa, [with_req], lab=True).status == "n/a in lab"


def test_aggregation_flags_from_the_apiserver_manifest() -> None:
    manifest = """apiVersion: v1
kind: Pod
metadata: {name: kube-apiserver, namespace: kube-system}
spec:
  containers:
  - name: kube-apiserver
    command:
    - kube-apiserver
    - --proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt
    - --proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key
    - --requestheader-allowed-names=front-proxy-client
    - --requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt
    - --requestheader-username-headers=X-Remote-User
"""
    flags = tls.apiserver_flags(manifest)
    assert flags is not None
    got = {c: s for c, s, _ in tls.judge_aggregation(flags, replicas=2)}
    assert got == {"aggregation.flags": "pass", "aggregation.routing": "warn"}
    del flags["--requestheader-client-ca-file"]
    assert tls.judge_aggregation(flags, 1)[0][1] == "fail"


def test_apiservice_tls_leg() -> None:
    assert tls.judge_apiservice({"spec": {"insecureSkipTLSVerify": True}})[0] == "warn"
    assert tls.judge_apiservice({"spec": {"caBundle": "LS0t"}})[0] == "pass"


def test_top_tables_from_metrics_api_objects() -> None:
    nm = [{"metadata": {"name": "w1"}, "usage": {"cpu": "250m", "memory": "1Gi"}}]
    nodes = [{"metadata": {"name": "w1"}, "status": {"allocatable": {"cpu": "2", "memory": "4Gi"}}}]
    row = metrics.top_nodes(nm, nodes).iloc[0].to_dict()
    assert row == {"node": "w1", "cpu_m": 250, "cpu_%": 12.5, "memory_Mi": 1024, "memory_%": 25.0}
    pm = [{"metadata": {"name": "p", "namespace": "d"}, "containers": [
        {"usage": {"cpu": "3m", "memory": "21504Ki"}}, {"usage": {"cpu": "2m", "memory": "0"}}]}]
    assert metrics.top_pods(pm).iloc[0].to_dict() == {"namespace": "d", "pod": "p", "cpu_m": 5, "memory_Mi": 21}


def test_accuracy_probe_tolerances_as_upstream_e2e() -> None:
    from runbooks_lib.chapters.metrics_server import probe

    def pm(cpu: str, mem: str) -> dict:
        return {"containers": [{"name": "c", "usage": {"cpu": cpu, "memory": mem}}]}

    assert probe.judge(pm("55m", "0"), "cpu")[0] == "pass"
    assert probe.judge(pm("61m", "0"), "cpu")[0] == "fail"
    assert probe.judge(pm("0", "52Mi"), "memory")[0] == "pass"
    assert probe.judge(pm("0", "21504Ki"), "memory") == ("fail", "memory 21 MiB (raw 21504Ki); expected 50 MiB ± 5 MiB")
    assert probe.judge(None, "cpu")[0] == "fail"
    objs = probe.manifests("default", "registry.k8s.io/e2e-test-images/resource-consumer:1.13", "run-1")
    assert [o["kind"] for o in objs] == ["Deployment", "HorizontalPodAutoscaler", "Pod"]
    assert all(o["metadata"]["labels"]["runbooks.io/run"] == "run-1" for o in objs)


def test_the_bootstrapped_certificate_is_the_one_kubelet_serves() -> None:
    from runbooks_lib.chapters.metrics_server.nodes import NodeFiles

    ca = make_cert("kubernetes", [])
    own, _ = make_cert("w1@1700000000", ["w1"])
    issued, _ = make_cert("system:node:w1", ["w1", "192.0.2.12"], issuer=ca)
    key_mark = "PRIVATE " + "KEY-----"  # in two parts, so no tracked file reads like it holds a key
    both = NodeFiles({tls.SELF_SIGNED: pem(own), tls.BOOTSTRAPPED: f"-----BEGIN EC {key_mark}\nx\n"
                      f"-----END EC {key_mark}\n" + pem(issued), tls.CLUSTER_CA: pem(ca[0])})
    cert = both.cert()
    assert cert is not None and cert.path == tls.BOOTSTRAPPED and cert.by_cluster_ca is True
    only_own = NodeFiles({tls.SELF_SIGNED: pem(own), tls.BOOTSTRAPPED: None})
    assert only_own.cert() is not None and only_own.cert().self_signed  # type: ignore[union-attr]
    assert NodeFiles({}).cert() is None
