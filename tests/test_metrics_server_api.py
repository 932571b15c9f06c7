"""Chapter 05 against the lab's API server (api_double): plan verdict, install from the operator's manifest
twice (second apply: no changes), secure mode by default and the insecure choice warned on every run,
an incompatible manifest refused, the HPA trap named, the lab's seeded metrics never passed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from runbooks_lib.chapters.metrics_server import chapter
from runbooks_lib.kube.client import KubeClient
from runbooks_lib.run import Run
from runbooks_lib.verdict import verdict_for

MANIFEST = Path(__file__).parent / "fixtures" / "metrics_server" / "components-v0.7.2.yaml"
pytestmark = pytest.mark.written_fixture


def start(tmp_path: Path, kubeconfig: Path, name: str, apply: bool = False, **ms: Any) -> Run:
    params: dict[str, Any] = {"cluster_name": "double", "kube": {"kubeconfig": str(kubeconfig), "request_timeout": 10},
                              "metrics_server": {"timeout_s": 20, **ms}}
    if apply:
        params.update(mode="apply", confirm="double")
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return Run.start("metrics-server", str(path), [], str(tmp_path / name))


def by(run: Run) -> dict[tuple[str, str], str]:
    return {(c.check, c.host): c.status for c in run.checks}


def remove_seeded(kubeconfig: Path) -> None:
    """A cluster without metrics-server: the lab seeds one (owned by other field managers)."""
    kc = KubeClient.from_kubeconfig(kubeconfig)
    kc.delete("APIService", chapter.APISERVICE, None)
    kc.delete("Deployment", "metrics-server", "kube-system")
    kc.delete("Service", "metrics-server", "kube-system")


def test_plan_without_manifest_audits_the_installed_one(api_double: tuple, tmp_path: Path) -> None:
    run = start(tmp_path, api_double[0], "plan")
    r = chapter.run_chapter(run)
    got = by(run)
    assert verdict_for(run.checks) == "PASS", [c for c in run.checks if c.failed]
    assert got[("compat.installed", "cluster")] == "pass"
    assert got[("args.defaults", "cluster")] == "warn"          # the seeded Deployment has no args at all
    assert got[("tls.mode", "cluster")] == "info" and got[("tls.apiservice", "cluster")] == "warn"
    assert got[("csr.pending", "cluster")] == "pass"  # the lab serves CSRs (none pending)
    assert got[("verify.apiservice_available", "cluster")] == "pass"
    # seeded numbers are never shown nor passed
    assert got[("verify.metrics_api", "cluster")] == "n/a in lab" and r.top_nodes.empty
    assert not any(c.check.startswith("object ") for c in run.checks)


def test_install_from_manifest_then_second_apply_changes_nothing(api_double: tuple, tmp_path: Path) -> None:
    kubeconfig, _url, double = api_double
    remove_seeded(kubeconfig)
    plan = start(tmp_path, kubeconfig, "plan", manifest=str(MANIFEST))
    chapter.run_chapter(plan)
    assert verdict_for(plan.checks) == "DRIFT"
    assert by(plan)[("compat.installed", "cluster")] == "drift"
    assert double.object("Deployment", "metrics-server", "kube-system") is None   # plan created nothing
    first = start(tmp_path, kubeconfig, "apply1", apply=True, manifest=str(MANIFEST), image_mirror="registry.k8s.io/metrics-server")
    chapter.run_chapter(first)
    got = by(first)
    assert got[("object Deployment kube-system/metrics-server", "kube-system")] == "changed"
    assert got[("object APIService v1beta1.metrics.k8s.io", "cluster")] == "changed"
    assert got[("verify.apiservice_available", "cluster")] == "pass", first.checks
    dep = double.object("Deployment", "metrics-server", "kube-system")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "registry.k8s.io/metrics-server/metrics-server:v0.7.2"
    assert "--metric-resolution=15s" in c["args"] and "--kubelet-insecure-tls" not in c["args"]
    second = start(tmp_path, kubeconfig, "apply2", apply=True, manifest=str(MANIFEST))
    chapter.run_chapter(second)
    objs = [c for c in second.checks if c.check.startswith("object ")]
    assert len(objs) == 9 and all(c.status == "pass" and c.detail == "no change" for c in objs)
    assert verdict_for(second.checks) == "PASS", [c for c in second.checks if c.failed or c.drift]


def test_insecure_tls_only_when_asked_and_warned_every_run(api_double: tuple, tmp_path: Path) -> None:
    kubeconfig = api_double[0]
    remove_seeded(kubeconfig)
    for i in range(2):
        run = start(tmp_path, kubeconfig, f"insecure{i}", apply=True, manifest=str(MANIFEST), kubelet_insecure_tls=True)
        r = chapter.run_chapter(run)
        assert by(run)[("tls.mode", "cluster")] == "warn"
        assert r.cluster.desired is not None and r.cluster.desired.args[-1] == "--kubelet-insecure-tls"
        assert r.cluster.desired.args[:5] == r.cluster.desired.manifest_args   # added, defaults kept
    # back to the default: the installed flag is drift (apply removes it)
    secure = start(tmp_path, kubeconfig, "secure", manifest=str(MANIFEST))
    chapter.run_chapter(secure)
    assert by(secure)[("args.insecure", "cluster")] == "drift"
    assert by(secure)[("tls.mode", "cluster")] == "info"


def test_incompatible_manifest_fails_the_plan(api_double: tuple, tmp_path: Path) -> None:
    newer = tmp_path / "components-v0.8.1.yaml"
    newer.write_text(MANIFEST.read_text().replace("metrics-server:v0.7.2", "metrics-server:v0.8.1"))
    run = start(tmp_path, api_double[0], "newer", manifest=str(newer))
    chapter.run_chapter(run)
    status = [c for c in run.checks if c.check == "compat.manifest"][0]
    assert status.status == "fail" and "needs Kubernetes 1.31+" in status.detail


def test_hpa_on_pods_without_requests_is_named(api_double: tuple, tmp_path: Path) -> None:
    kc = KubeClient.from_kubeconfig(api_double[0])
    kc.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}},
                                     "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
    kc.create({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
               "metadata": {"name": "web", "namespace": "default"},
               "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                        "minReplicas": 1, "maxReplicas": 3,
                        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                            "type": "Utilization", "averageUtilization": 50}}}]}})
    kc.wait_rollout("Deployment", "web", "default", timeout=20)
    run = start(tmp_path, api_double[0], "hpa")
    r = chapter.run_chapter(run)
    check = [c for c in run.checks if c.check == "verify.hpa"][0]
    assert check.host == "default/web" and check.status == "fail"
    assert "web-" in check.detail and "cpu" in check.detail and len(r.hpas) == 1


def test_accuracy_probe_never_passes_on_seeded_metrics_and_cleans_up(api_double: tuple, tmp_path: Path) -> None:
    kubeconfig, _url, double = api_double
    plan = start(tmp_path, kubeconfig, "probe-plan", probe_on_lab_api=True, probe_image="busybox:1.36")
    chapter.run_chapter(plan)
    assert by(plan)[("verify.accuracy", "cluster")] == "info"          # plan: creates nothing
    assert double.object("Deployment", "ms-probe-cpu", "default") is None
    run = start(tmp_path, kubeconfig, "probe", apply=True, probe_on_lab_api=True, probe_image="busybox:1.36",
                timeout_s=5)
    r = chapter.run_chapter(run)
    got = {c.check: c for c in run.checks if c.check.startswith("verify.accuracy") or c.check.startswith("HPA")}
    # the lab's seeded 3m / 21 MiB are read back and fail the 50m / 50 MiB probe: never passed
    assert got["verify.accuracy.cpu"].status == "fail" and "expected 50m" in got["verify.accuracy.cpu"].detail
    assert got["verify.accuracy.memory"].status == "fail"
    assert any(c.status == "fail" and "ScalingActive" in c.check + c.detail for c in run.checks)  # no HPA controller
    assert got["verify.accuracy.cleanup"].status == "pass" and len(r.trial) == 3
    assert double.object("Deployment", "ms-probe-cpu", "default") is None
    assert double.object("HorizontalPodAutoscaler", "ms-probe-cpu", "default") is None
    assert double.object("Pod", "ms-probe-memory", "default") is None


def test_kubelet_config_configmap_gets_server_tls_bootstrap_once(api_double: tuple, tmp_path: Path) -> None:
    kc = KubeClient.from_kubeconfig(api_double[0])
    kubelet = ("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\n"
               "rotateCertificates: true\n")   # as kubeadm writes kube-system/kubelet-config
    kc.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kubelet-config", "namespace": "kube-system"},
               "data": {"kubelet": kubelet}})
    plan = start(tmp_path, api_double[0], "cm-plan")
    chapter.run_chapter(plan)
    assert by(plan)[("kubelet_config.configmap", "cluster")] == "drift"
    assert "serverTLSBootstrap" not in api_double[2].object("ConfigMap", "kubelet-config", "kube-system")["data"]["kubelet"]
    first = start(tmp_path, api_double[0], "cm-apply", apply=True)
    chapter.run_chapter(first)
    assert by(first)[("kubelet_config.configmap", "cluster")] == "changed"
    text = api_double[2].object("ConfigMap", "kubelet-config", "kube-system")["data"]["kubelet"]
    assert yaml.safe_load(text) == {**yaml.safe_load(kubelet), "serverTLSBootstrap": True}
    second = start(tmp_path, api_double[0], "cm-apply2", apply=True)
    chapter.run_chapter(second)
    assert by(second)[("kubelet_config.configmap", "cluster")] == "pass"
    # insecure mode asks for no kubelet change at all
    insecure = start(tmp_path, api_double[0], "cm-insecure", apply=True, kubelet_insecure_tls=True)
    chapter.run_chapter(insecure)
    assert ("kubelet_config.configmap", "cluster") not in by(insecure)


def _kubelet_serving_csr(node: str, sans: list[str]) -> str:
    """A kubelet's serving CSR request (CN=system:node:<node>, O=system:nodes, SANs), PEM then base64."""
    import base64
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    names: list[x509.GeneralName] = []
    for s in sans:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(s)))
        except ValueError:
            names.append(x509.DNSName(s))
    req = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                                    x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}")]))
           .add_extension(x509.SubjectAlternativeName(names), critical=False)
           .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()))
    return base64.b64encode(req.public_bytes(serialization.Encoding.PEM)).decode()


def test_apply_approves_only_the_csr_whose_sans_match_its_node(api_double: tuple, tmp_path: Path) -> None:
    """Issue 16: kubelet-serving CSRs approved through /approval only when requestor and SANs match the node;
    one with a foreign SAN stays pending (kubernetes.io/docs/reference/access-authn-authz/kubelet-tls-bootstrapping/
    "the kube-controller-manager does not approve kubelet serving certificates")."""
    from runbooks_lib.chapters.metrics_server.actions import CSR_PATH
    from runbooks_lib.lab.apiserver.names import CSR

    def csr(n: str) -> dict[str, Any]:
        return dict(kc.request("GET", f"{CSR_PATH}/{n}").data)

    kubeconfig, _url, double = api_double
    kc = KubeClient.from_kubeconfig(kubeconfig)
    node = kc.list_objects("Node")[0]
    name = node["metadata"]["name"]
    addrs = [a["address"] for a in node["status"]["addresses"]]
    for csr_name, sans in (("csr-good", [name, *addrs]), ("csr-foreign", [name, "203.0.113.77"])):
        # stored as the API server records a kubelet's request (requestor from its client certificate)
        with double.store.lock:
            double.store.put_raw(CSR, {
                "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                "metadata": {"name": csr_name},
                "spec": {"request": _kubelet_serving_csr(name, sans), "signerName": "kubernetes.io/kubelet-serving",
                         "usages": ["digital signature", "server auth"], "username": f"system:node:{name}",
                         "groups": ["system:nodes", "system:authenticated"]}}, "kubelet")
    plan = start(tmp_path, kubeconfig, "csr-plan")
    chapter.run_chapter(plan)
    assert sorted(c.status for c in plan.checks if c.check == "csr.pending") == ["drift", "warn"]
    assert not any(c.check == "csr.approve" for c in plan.checks)
    assert not (csr("csr-good").get("status") or {}).get("conditions")
    applied = start(tmp_path, kubeconfig, "csr-apply", apply=True)
    chapter.run_chapter(applied)
    approved = [c for c in applied.checks if c.check == "csr.approve"]
    assert [(c.host, c.status) for c in approved] == [(name, "changed")] and "csr-good" in approved[0].detail
    good = csr("csr-good")["status"]["conditions"]
    assert [(c["type"], c["status"]) for c in good] == [("Approved", "True")]
    foreign = csr("csr-foreign")
    assert not (foreign.get("status") or {}).get("conditions")
    again = start(tmp_path, kubeconfig, "csr-apply2", apply=True)
    chapter.run_chapter(again)
    assert not any(c.check == "csr.approve" for c in again.checks)  # nothing left to approve
