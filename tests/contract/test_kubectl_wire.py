"""What kubectl needs from the server: content negotiation (protobuf bodies, Tables), OpenAPI v2/v3,
discovery with short names and categories, ``/scale``, pod logs, CSR approval."""

from __future__ import annotations

import base64

import pytest

from contract.conftest import PAUSE, Cluster, wait_for
from runbooks_lib.lab.apiserver.pki import csr_pem_b64

pytestmark = pytest.mark.contract
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def _varint(n: int) -> bytes:
    out = b""
    while True:
        low, n = n & 0x7F, n >> 7
        out += bytes([low | (0x80 if n else 0)])
        if not n:
            return out


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _protobuf_configmap(name: str, namespace: str, data: dict[str, str]) -> bytes:
    """A ConfigMap as kubectl's typed client sends it: ``k8s\\x00`` + runtime.Unknown{typeMeta, raw}."""
    meta = _field(1, name.encode()) + _field(3, namespace.encode())
    entries = b"".join(_field(2, _field(1, k.encode()) + _field(2, v.encode())) for k, v in data.items())
    raw = _field(1, meta) + entries
    return b"k8s\x00" + _field(1, _field(1, b"v1") + _field(2, b"ConfigMap")) + _field(2, raw)


def test_protobuf_request_body_is_decoded(cluster: Cluster):
    """Built-in types accept ``application/vnd.kubernetes.protobuf`` bodies (kubectl create sends them).
    https://kubernetes.io/docs/reference/using-api/api-concepts/#protobuf-encoding"""
    name = cluster.name("pb")
    body = _protobuf_configmap(name, cluster.ns, {"mode": "ipvs"})
    r = cluster.request("POST", cluster.path("v1", "configmaps"), body, content_type="application/vnd.kubernetes.protobuf")
    assert r.status == 201, r.body
    got = cluster.get("v1", "configmaps", name)
    assert got.body["data"] == {"mode": "ipvs"}


def test_table_output_has_the_printer_columns(cluster: Cluster):
    """``as=Table`` answers a meta.k8s.io/v1 Table with the kind's printer columns (-o wide: priority 1).
    https://kubernetes.io/docs/reference/using-api/api-concepts/#receiving-resources-as-tables"""
    nodes = cluster.request("GET", "/api/v1/nodes", accept=TABLE)
    assert nodes.status == 200 and nodes.body["kind"] == "Table"
    cols = [c["name"] for c in nodes.body["columnDefinitions"] if c["priority"] == 0]
    assert cols == ["Name", "Status", "Roles", "Age", "Version"]
    assert {r["cells"][1] for r in nodes.body["rows"]} <= {"Ready", "NotReady", "Ready,SchedulingDisabled"}
    assert all(r["object"]["kind"] == "PartialObjectMetadata" for r in nodes.body["rows"])
    pods = cluster.request("GET", "/api/v1/namespaces/kube-system/pods", accept=TABLE)
    assert [c["name"] for c in pods.body["columnDefinitions"]][:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    svc = cluster.request("GET", "/api/v1/namespaces/default/services/kubernetes", accept=TABLE)
    assert svc.body["rows"][0]["cells"][:2] == ["kubernetes", "ClusterIP"]


def test_openapi_v2_and_v3(cluster: Cluster):
    """``/openapi/v3`` lists each group-version's document; ``/openapi/v2`` serves the definitions (JSON).
    https://kubernetes.io/docs/concepts/overview/kubernetes-api/#openapi-interface-definition"""
    index = cluster.request("GET", "/openapi/v3")
    assert index.status == 200, index.body
    url = index.body["paths"]["apis/apps/v1"]["serverRelativeURL"]
    path, _, query = url.partition("?")
    doc = cluster.request("GET", path, query=dict([query.split("=", 1)]) if query else None)
    deployment = doc.body["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]
    assert {"group": "apps", "version": "v1", "kind": "Deployment"} in deployment["x-kubernetes-group-version-kind"]
    spec = doc.body["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert spec["x-kubernetes-patch-merge-key"] == "name"
    v2 = cluster.request("GET", "/openapi/v2")
    assert v2.status == 200 and v2.body["swagger"] == "2.0"
    assert "io.k8s.api.core.v1.Pod" in v2.body["definitions"]


def test_discovery_short_names_categories_and_verbs(cluster: Cluster):
    """Discovery carries short names, categories and verbs (``kubectl get deploy``, ``get all``).
    https://kubernetes.io/docs/reference/using-api/api-concepts/#discovery"""
    apps = {r["name"]: r for r in cluster.request("GET", "/apis/apps/v1").body["resources"]}
    assert apps["deployments"]["shortNames"] == ["deploy"] and "all" in apps["deployments"]["categories"]
    assert "watch" in apps["deployments"]["verbs"]
    assert apps["deployments/scale"]["kind"] == "Scale" and apps["deployments/scale"]["group"] == "autoscaling"
    core = {r["name"]: r for r in cluster.request("GET", "/api/v1").body["resources"]}
    assert core["pods"]["shortNames"] == ["po"] and core["services"]["shortNames"] == ["svc"]
    assert "pods/log" in core


def test_scale_subresource(cluster: Cluster, timeout: float):
    """``/scale`` reads and writes a Deployment's replicas as an autoscaling/v1 Scale.
    https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/"""
    name = cluster.name("scale")
    labels = {"app": name}
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
           "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels},
                                 "spec": {"containers": [{"name": "p", "image": PAUSE}]}}}}
    assert cluster.create("apps/v1", "deployments", dep).status == 201
    scale = cluster.get("apps/v1", "deployments", name, sub="scale")
    assert scale.body["kind"] == "Scale" and scale.body["spec"]["replicas"] == 1
    r = cluster.patch("apps/v1", "deployments", name, {"spec": {"replicas": 2}}, sub="scale")
    assert r.status == 200 and r.body["spec"]["replicas"] == 2
    assert cluster.get("apps/v1", "deployments", name).body["spec"]["replicas"] == 2
    wait_for(lambda: cluster.get("apps/v1", "deployments", name, sub="scale").body["status"]["replicas"] == 2,
             timeout, "the Scale's status.replicas to reach 2")


def test_pod_log_of_a_running_container(cluster: Cluster, timeout: float):
    """``pods/log`` answers text for a running container (the pause container writes nothing).
    https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#get-read-log-of-the-specified-pod"""
    name = cluster.name("log")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"containers": [{"name": "p", "image": PAUSE}]}}
    assert cluster.create("v1", "pods", pod).status == 201
    wait_for(lambda: cluster.get("v1", "pods", name).body["status"].get("phase") == "Running", timeout, "Running")
    r = cluster.request("GET", cluster.path("v1", "pods", name, sub="log"), accept="*/*")
    assert r.status == 200, r.body
    assert not r.body


def test_csr_approval_subresource(cluster: Cluster):
    """``/approval`` sets a CSR's Approved or Denied condition; the requestor is recorded on create.
    https://kubernetes.io/docs/reference/access-authn-authz/certificate-signing-requests/#approval-rejection"""
    name = cluster.name("csr")
    csr = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": name},
           "spec": {"request": csr_pem_b64(name, "contract"), "signerName": "kubernetes.io/kube-apiserver-client",
                    "usages": ["client auth"]}}
    made = cluster.create("certificates.k8s.io/v1", "certificatesigningrequests", csr, namespaced=False)
    assert made.status == 201, made.body
    assert made.body["spec"]["username"]
    assert base64.b64decode(made.body["spec"]["request"]).startswith(b"-----BEGIN CERTIFICATE REQUEST")
    approved = {**made.body, "status": {"conditions": [{"type": "Approved", "status": "True", "reason": "Contract",
                                                        "message": "approved by the contract suite"}]}}
    path = cluster.path("certificates.k8s.io/v1", "certificatesigningrequests", name, False, "approval")
    r = cluster.request("PUT", path, approved)
    assert r.status == 200, r.body
    assert [c["type"] for c in r.body["status"]["conditions"]][:1] == ["Approved"]


def test_pod_eviction_deletes_the_pod(cluster: Cluster, timeout: float):
    """``pods/eviction`` (policy/v1 Eviction, what ``kubectl drain`` posts) deletes a pod no budget protects.
    https://kubernetes.io/docs/concepts/scheduling-eviction/api-eviction/"""
    name = cluster.name("evict")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"containers": [{"name": "p", "image": PAUSE}], "terminationGracePeriodSeconds": 0}}
    assert cluster.create("v1", "pods", pod).status == 201
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": cluster.ns}}
    r = cluster.request("POST", cluster.path("v1", "pods", name, sub="eviction"), eviction)
    assert r.status == 201, r.body
    wait_for(lambda: cluster.get("v1", "pods", name).status == 404, timeout, "the evicted pod to be gone")
