"""Helpers against the API double: apply (dry-run and real), patch, rollout, waits, exec, cleanup."""

from __future__ import annotations

import time

import pytest

from runbooks_lib import kube
from runbooks_lib.evidence import Recorder
from runbooks_lib.lab.apiserver.seed import KUBE_PROXY_CONFIG, name_suffix


@pytest.fixture
def kc(api_double):
    return kube.KubeClient.from_kubeconfig(api_double[0], recorder=Recorder())


def deployment(replicas: int = 1, image: str = "nginx:1.27") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "trial-web", "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "trial-web"}},
                     "template": {"metadata": {"labels": {"app": "trial-web"}},
                                  "spec": {"containers": [{"name": "web", "image": image}]}}}}


def test_apply_dry_run_persists_nothing_then_real_apply(kc, api_double):
    _, _, double = api_double
    [res] = kc.apply([deployment()], dry_run=True)
    assert (res.action, res.dry_run) == ("created", True)
    assert "+  replicas: 1" in res.diff.replace("    ", "  ") or "replicas: 1" in res.diff
    assert double.object("Deployment", "trial-web", "default") is None
    assert any(r.verb == "apply" and "dryRun=All" in r.query and r.status == 201 for r in double.requests)
    [res] = kc.apply([deployment()])
    stored = double.object("Deployment", "trial-web", "default")
    assert res.action == "created" and stored is not None
    owners = {(m["manager"], m["operation"]): m["fieldsV1"] for m in stored["metadata"]["managedFields"]}
    assert "f:replicas" in owners[("runbooks", "Apply")]["f:spec"]
    assert kc.apply([deployment()])[0].action == "unchanged"
    rv = stored["metadata"]["resourceVersion"]
    [res] = kc.apply([deployment(replicas=3)], dry_run=True)
    assert res.action == "configured" and "-  replicas: 1" in res.diff and "+  replicas: 3" in res.diff
    assert double.object("Deployment", "trial-web", "default")["spec"]["replicas"] == 1
    kc.apply([deployment(replicas=3)])
    after = double.object("Deployment", "trial-web", "default")
    assert after["spec"]["replicas"] == 3 and int(after["metadata"]["resourceVersion"]) > int(rv)
    assert after["metadata"]["generation"] == 2


def test_apply_conflict_with_another_field_manager(kc):
    kc.apply([deployment()])
    kc.patch("Deployment", "trial-web", "default", {"spec": {"replicas": 2}}, field_manager="kubectl-scale")
    with pytest.raises(kube.KubeConflict) as err:
        kc.apply([deployment(replicas=1)])
    assert 'conflict with "kubectl-scale"' in str(err.value) and ".spec.replicas" in str(err.value)
    kc.apply([deployment(replicas=1)], force=True)
    assert kc.get("Deployment", "trial-web", "default")["spec"]["replicas"] == 1


def test_wrong_field_fails_offline_with_zero_requests(kc, api_double):
    _, _, double = api_double
    bad = deployment()
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    before = double.request_count()
    with pytest.raises(kube.ManifestInvalid) as err:
        kc.apply([deployment(), bad], dry_run=True)
    assert "imagePullPolice" in str(err.value) and "Deployment default/trial-web" in str(err.value)
    assert double.request_count() == before


def test_custom_resources_are_skipped_with_a_note():
    [v] = kube.validate_manifests([{"apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool",
                                    "metadata": {"name": "pool"}, "spec": {"cidr": "10.244.0.0/16"}}], "1.30")
    assert v.outcome == "skipped" and "custom resource" in v.detail


def test_patch_configmap_key_and_no_change(kc, api_double):
    _, _, double = api_double
    rv0 = int(double.object("ConfigMap", "kube-proxy", "kube-system")["metadata"]["resourceVersion"])
    new = KUBE_PROXY_CONFIG.replace('mode: ""', 'mode: "nftables"')
    ch = kc.patch_configmap_key("kube-proxy", "kube-system", "config.conf", new)
    assert ch.changed and ch.before == KUBE_PROXY_CONFIG
    assert ch.diff.count("\n-mode") == 1 and '+mode: "nftables"' in ch.diff
    cm = double.object("ConfigMap", "kube-proxy", "kube-system")
    assert cm["data"]["config.conf"] == new and int(cm["metadata"]["resourceVersion"]) > rv0
    patches = sum(r.method == "PATCH" for r in double.requests)
    again = kc.patch_configmap_key("kube-proxy", "kube-system", "config.conf", new)
    assert not again.changed and sum(r.method == "PATCH" for r in double.requests) == patches
    assert any(r.command.startswith("no change: configmap kube-system/kube-proxy") for r in kc.recorder.records)


@pytest.mark.parametrize("kind,name,desired", [("DaemonSet", "kube-proxy", 3), ("Deployment", "coredns", 2)])
def test_rollout_restart_and_wait(kc, api_double, kind, name, desired):
    _, _, double = api_double
    old_pods = {p["metadata"]["uid"] for p in double.objects("Pod", "kube-system", "k8s-app=kube-proxy")}
    res = kc.rollout_restart(kind, name, "kube-system", timeout=30, progress=False)
    assert (res.desired, res.updated, res.ready) == (desired, desired, desired)
    assert res.duration_s < 15
    obj = double.object(kind, name, "kube-system")
    assert "kubectl.kubernetes.io/restartedAt" in obj["spec"]["template"]["metadata"]["annotations"]
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"] == 2
    if kind == "DaemonSet":  # every pod was replaced, one node at a time
        new_pods = {p["metadata"]["uid"] for p in double.objects("Pod", "kube-system", "k8s-app=kube-proxy")}
        assert len(new_pods) == 3 and not new_pods & old_pods


def test_wait_for_a_condition_that_never_comes(kc):
    kc.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "trial-claim", "namespace": "default"},
               "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    t0 = time.monotonic()
    with pytest.raises(kube.KubeTimeout) as err:
        kc.wait_pvc_bound("trial-claim", "default", timeout=1.0)
    assert 1.0 <= time.monotonic() - t0 < 5
    text = str(err.value)
    assert text.startswith("PersistentVolumeClaim default/trial-claim: Bound did not happen within 1 s")
    assert "last seen: phase Pending" in text and "FailedBinding" in text
    kc.create(kube.probe_pod("stuck", "default", "no-such-node", "r1"))
    with pytest.raises(kube.KubeTimeout, match=r"Pod default/stuck: condition Ready=True did not happen within 0.5 s"):
        kc.wait_pod_ready("stuck", "default", timeout=0.5)


def test_wait_condition_apiservice_available(kc):
    obj = kc.wait_apiservice_available("v1beta1.metrics.k8s.io", timeout=5)
    assert kube.condition(obj, "Available")["status"] == "True"


def test_exec_captures_output_and_exit_codes(kc):
    kc.apply([kube.probe_pod("probe", "default", "w1", "r1")])
    kc.wait_pod_ready("probe", "default", timeout=5)
    res = kc.exec("probe", "default", ["echo", "hello", "world"])
    assert (res.stdout, res.exit_code, res.ok) == ("hello world\n", 0, True)
    assert kc.exec("probe", "default", ["sh", "-c", "exit 3"]).exit_code == 3
    missing = kc.exec("probe", "default", ["ipvsadm", "-Ln"])
    assert missing.exit_code == 127 and "not found" in missing.stderr
    rec = [r for r in kc.recorder.records if r.target == "pod/default/probe"]
    assert rec[0].command == "echo hello world" and rec[0].stdout == "hello world\n"


def test_events_for_an_object(kc):
    kc.rollout_restart("DaemonSet", "kube-proxy", "kube-system", timeout=30, progress=False)
    events = kc.events_for("DaemonSet", "kube-proxy", "kube-system")
    reasons = [e["reason"] for e in events]
    assert "SuccessfulDelete" in reasons and "SuccessfulCreate" in reasons
    assert all(e["source"] == "daemonset-controller" for e in events)


def test_cleanup_deletes_only_the_runs_objects(kc, api_double):
    _, _, double = api_double
    kc.apply([kube.probe_pod("mine-a", "default", "w1", "run-a"),
              kube.with_run_label({"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"name": "mine-b", "namespace": "default"}, "data": {}}, "run-a"),
              kube.probe_pod("other", "default", "w1", "run-b"),
              {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "unlabelled", "namespace": "default"}}])
    deleted = kc.delete_by_run_label("run-a")
    assert sorted(deleted) == ["ConfigMap default/mine-b", "Pod default/mine-a"]
    assert double.object("Pod", "other", "default") and double.object("ConfigMap", "unlabelled", "default")
    assert len(double.objects("Pod", "kube-system")) == 9  # nothing else touched


def test_raw_get_paths(kc):
    assert "[+]etcd ok" in kc.raw_get("/readyz?verbose") and kc.raw_get("/readyz?verbose").endswith("check passed\n")
    nodes = kc.raw_get("/apis/metrics.k8s.io/v1beta1/nodes")
    assert nodes["kind"] == "NodeMetricsList" and [n["metadata"]["name"] for n in nodes["items"]] == ["cp1", "w1", "w2"]
    info = {n.name: n for n in kc.nodes()}
    assert info["cp1"].is_control_plane and info["w2"].kernel_version == "6.1.0-18-amd64"
    assert info["w1"].internal_ip == "192.0.2.21" and info["w1"].kubelet_version == "v1.30.4"
    df = kube.frame(kc.list_objects("Pod", "kube-system", label_selector="k8s-app in (kube-proxy,calico-node)",
                                    field_selector="spec.nodeName=w2"),
                    {"name": "metadata.name", "node": "spec.nodeName", "phase": "status.phase"})
    assert sorted(df["name"]) == [f"calico-node-{name_suffix('w2', 'calico-node')}",
                                  f"kube-proxy-{name_suffix('w2', 'kube-proxy')}"]
    assert set(df["phase"]) == {"Running"}


def test_double_api_semantics(kc):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sem", "namespace": "default"},
          "data": {"a": "1"}}
    created = kc.create(cm)
    with pytest.raises(kube.KubeConflict, match='configmaps "sem" already exists'):
        kc.create(cm)
    stale = dict(created, data={"a": "2"})
    kc.patch("ConfigMap", "sem", "default", {"data": {"a": "3"}})
    with pytest.raises(kube.KubeConflict, match="the object has been modified"):
        kc.request("PUT", "/api/v1/namespaces/default/configmaps/sem", body=stale)
    with pytest.raises(kube.KubeNotFound) as err:
        kc.get("Deployment", "nope", "kube-system")
    assert err.value.status["kind"] == "Status" and err.value.status["reason"] == "NotFound"
    with pytest.raises(kube.KubeNotFound, match='namespaces "ghost" not found'):
        kc.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "ghost"}})
    assert kc.delete("ConfigMap", "sem", "default") and not kc.delete("ConfigMap", "sem", "default")


def test_stale_resource_version_is_a_409_conflict(kc, api_double):
    cm = kc.get("ConfigMap", "kube-proxy", "kube-system")
    stale = cm["metadata"]["resourceVersion"]
    kc.patch("ConfigMap", "kube-proxy", "kube-system", {"data": {"touched": "1"}})
    with pytest.raises(kube.KubeConflict):
        kc.patch("ConfigMap", "kube-proxy", "kube-system",
                 {"metadata": {"resourceVersion": stale}, "data": {"touched": "2"}})
    assert kc.get("ConfigMap", "kube-proxy", "kube-system")["data"]["touched"] == "1"
