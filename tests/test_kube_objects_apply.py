"""Plan, apply, prune and verify against the lab's API server over HTTPS with the real kubernetes
client (issue 13 §1)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from runbooks_lib import kube
from runbooks_lib.kube import helm, plan, verify
from runbooks_lib.kube.client import KubeClient
from runbooks_lib.kube.errors import KubeTimeout, ManifestInvalid
from runbooks_lib.lab.apiserver import ApiDouble
from runbooks_lib.run import Run

Obj = dict[str, Any]
LABEL = "app.kubernetes.io/part-of=objtest"


def base_set(value: str = "1") -> list[Obj]:
    labels = {"app.kubernetes.io/part-of": "objtest"}
    pod_labels = {"app": "web"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo", "labels": labels}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web", "namespace": "demo", "labels": labels}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "demo", "labels": labels},
         "data": {"a": value}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "demo", "labels": labels},
         "spec": {"replicas": 2, "selector": {"matchLabels": pod_labels}, "template": {
             "metadata": {"labels": pod_labels},
             "spec": {"serviceAccountName": "web", "containers": [{"name": "web", "image": "nginx:1.27"}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "demo", "labels": labels},
         "spec": {"selector": pod_labels, "ports": [{"port": 80, "targetPort": 80}]}},
    ]


@pytest.fixture
def kc(kube_run: Run) -> KubeClient:
    return kube.connect(kube_run)


def writes(double: ApiDouble, since: int) -> list[str]:
    """Persisting writes the server answered since request number ``since`` (dry runs excluded)."""
    return [f"{r.verb} {r.path}" for r in double.requests[since:]
            if r.verb in ("create", "update", "patch", "apply", "delete") and "dryRun=All" not in r.query]


def test_plan_apply_then_a_second_apply_changes_nothing(kc: KubeClient, api_double: tuple[Path, str, ApiDouble]) -> None:
    double = api_double[2]
    first = plan.plan(kc, base_set())
    assert [c.action for c in first.changes] == ["create"] * 5
    assert [c.ref.kind for c in first.changes] == ["Namespace", "ServiceAccount", "ConfigMap", "Service", "Deployment"]
    assert double.object("ConfigMap", "cfg", "demo") is None  # plan persisted nothing
    plan.apply(kc, first)
    assert all(c.applied for c in first.changes)
    assert double.object("ConfigMap", "cfg", "demo")["data"] == {"a": "1"}
    owners = {m["manager"] for m in double.object("ConfigMap", "cfg", "demo")["metadata"]["managedFields"]}
    assert owners == {"runbooks"}

    mark = len(double.requests)
    second = plan.plan(kc, base_set())
    plan.apply(kc, second)
    assert [c.action for c in second.changes] == ["unchanged"] * 5
    assert [c[2] for c in second.checks()] == ["pass"] * 5
    assert writes(double, mark) == []


def test_a_changed_field_is_an_update_with_its_diff(kc: KubeClient) -> None:
    plan.apply(kc, plan.plan(kc, base_set("1")))
    p = plan.plan(kc, base_set("2"))
    (change,) = [c for c in p.changes if c.action != "unchanged"]
    assert change.action == "update" and str(change.ref) == "ConfigMap demo/cfg"
    assert [str(f) for f in change.fields] == ["~ .data.a: 1 -> 2"]
    assert ("object ConfigMap demo/cfg", "demo", "drift", "update ConfigMap demo/cfg: ~ .data.a: 1 -> 2") in p.checks()
    plan.apply(kc, p)
    assert kc.get("ConfigMap", "cfg", "demo")["data"]["a"] == "2"


def test_a_field_of_another_manager_is_a_conflict_naming_it(kc: KubeClient) -> None:
    cm = base_set()[2]
    kc.request("PATCH", "/api/v1/namespaces/default/configmaps/cfg", body={**cm, "metadata": {"name": "cfg"}},
               content_type="application/apply-patch+yaml", query={"fieldManager": "helm"})
    mine = {**cm, "metadata": {"name": "cfg", "namespace": "default"}, "data": {"a": "9"}}
    p = plan.plan(kc, [mine])
    (change,) = p.changes
    assert change.action == "conflict"
    assert 'conflict with "helm"' in change.note and ".data.a" in change.note
    assert p.checks()[0][2] == "fail"


def test_a_broken_object_is_refused_before_any_request(kc: KubeClient, api_double: tuple[Path, str, ApiDouble]) -> None:
    double = api_double[2]
    objs = base_set()
    objs[3]["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 7
    objs[2]["spec"] = {"unknown": True}
    mark = len(double.requests)
    with pytest.raises(ManifestInvalid) as e:
        plan.plan(kc, objs)
    assert "Deployment demo/web" in str(e.value) and "ConfigMap demo/cfg" in str(e.value)
    assert double.requests[mark:] == []


def test_prune_candidates_are_deleted_only_with_prune_and_confirm(kc: KubeClient,
                                                                  api_double: tuple[Path, str, ApiDouble]) -> None:
    double = api_double[2]
    old = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "old", "namespace": "demo", "labels": {"app.kubernetes.io/part-of": "objtest"}}}
    plan.apply(kc, plan.plan(kc, [*base_set(), old]))
    p = plan.plan(kc, base_set(), prune_selector=LABEL)
    prunes = [c for c in p.changes if c.action == "prune"]
    assert [str(c.ref) for c in prunes] == ["ConfigMap demo/old"]
    plan.apply(kc, p, confirmed=False, prune=True)
    assert double.object("ConfigMap", "old", "demo") is not None
    assert "withheld" in prunes[0].note
    plan.apply(kc, plan.plan(kc, base_set(), prune_selector=LABEL), confirmed=True, prune=True)
    assert double.object("ConfigMap", "old", "demo") is None
    assert double.object("ConfigMap", "cfg", "demo") is not None


def test_helm_release_is_read_from_its_secret(kc: KubeClient) -> None:
    def secret(rev: int, version: str, status: str) -> Obj:
        release = {"name": "metrics", "namespace": "kube-system", "version": rev, "info": {"status": status},
                   "chart": {"metadata": {"name": "metrics-server", "version": version, "appVersion": "0.7.1"}},
                   "config": {"args": ["--kubelet-insecure-tls"]}, "manifest": "---\n"}
        return {"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
                "metadata": {"name": f"sh.helm.release.v1.metrics.v{rev}", "namespace": "kube-system",
                             "labels": {"owner": "helm", "name": "metrics", "version": str(rev), "status": status}},
                "data": {"release": helm.encode_release(release)}}
    kc.create(secret(1, "3.12.0", "superseded"))
    kc.create(secret(2, "3.12.1", "deployed"))
    rel = helm.read_release(kc, "metrics", "kube-system")
    assert rel is not None
    assert (rel.revision, rel.chart, rel.chart_version, rel.app_version, rel.status) == (
        2, "metrics-server", "3.12.1", "0.7.1", "deployed")
    assert rel.values == {"args": ["--kubelet-insecure-tls"]}
    assert helm.read_release(kc, "metrics", "kube-system", revision=1).chart_version == "3.12.0"  # type: ignore[union-attr]
    assert helm.read_release(kc, "absent", "kube-system") is None


# -- verify

def test_a_wait_that_times_out_is_one_evidence_record(kube_run: Run, kc: KubeClient) -> None:
    kc.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "default"},
               "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    before = len(kube_run.recorder.records)
    result = verify.wait(kc, verify.pvc_bound("data", "default"), timeout=2)
    records = kube_run.recorder.records[before:]
    assert len(records) == 1
    rec = records[0]
    assert rec.status == "timeout" and rec.extra["timeout_s"] == 2 and rec.extra["verb"] == "watch"
    assert rec.stdout.startswith("first: in_progress: phase Pending")
    assert 1.8 <= rec.duration_s < 6
    assert (result.ok, result.status) == (False, "fail")
    check = result.check(kube_run)
    assert (check.status, check.host) == ("fail", "PersistentVolumeClaim default/data")
    assert "not within 2 s" in check.detail
    before = len(kube_run.recorder.records)  # the chapters' helpers wait the same way (they polled: 42 records in 10 s)
    with pytest.raises(KubeTimeout, match=r"Bound did not happen within 1 s; last seen: phase Pending; recent events: "
                                          r"Warning FailedBinding"):
        kc.wait_pvc_bound("data", "default", timeout=1)
    assert len(kube_run.recorder.records) - before == 1


def test_a_rollout_is_waited_by_watch(kube_run: Run, kc: KubeClient, api_double: tuple[Path, str, ApiDouble]) -> None:
    double = api_double[2]
    plan.apply(kc, plan.plan(kc, base_set()))
    verify.wait(kc, verify.rollout_complete("Deployment", "web", "demo"), timeout=30)
    objs = base_set()
    objs[3]["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    applied = plan.apply(kc, plan.plan(kc, objs))
    (dep,) = [c for c in applied.changes if c.applied]
    mark, before = len(double.requests), len(kube_run.recorder.records)
    result = verify.wait(kc, verify.rollout_complete("Deployment", "web", "demo",
                                                     min_generation=dep.object["metadata"]["generation"]), timeout=30)
    assert result.ok, result
    assert result.first.startswith("in_progress") and result.events >= 1
    assert any(r.verb == "list" and r.path == "/apis/apps/v1/namespaces/demo/deployments" for r in double.requests[mark:])
    (rec,) = kube_run.recorder.records[before:]
    assert (rec.extra["requests"], rec.extra["first"], rec.extra["last"]) == (2, "in_progress", "current")
    kc.get("Deployment", "web", "demo")  # the client still works after the watch


def test_conditions_status_fields_and_exec_probes(kube_run: Run, kc: KubeClient) -> None:
    pod = next(p for p in kc.list_objects("Pod", "kube-system") if p["metadata"]["name"].startswith("kube-proxy"))
    name = pod["metadata"]["name"]
    exps: list[verify.Expectation | verify.ExecExpectation] = [
        verify.apiservice_available("v1beta1.metrics.k8s.io"),
        verify.condition_true("Pod", name, "kube-system", "Ready"),
        verify.status_field("Pod", name, "kube-system", "status.phase", "Running"),
        verify.exec_exit_code(name, "kube-system", ["true"]),
        verify.exec_exit_code(name, "kube-system", ["sh", "-c", "exit 3"]),
    ]
    before = len(kube_run.recorder.records)
    results = verify.wait_all(kc, exps, timeout=5)
    assert [r.status for r in results] == ["pass", "pass", "pass", "pass", "fail"]
    assert "exit 3 (wanted 0)" in results[4].last
    assert len(kube_run.recorder.records) - before == len(exps)


def test_server_warnings_are_recorded_and_become_warn_checks(kube_run: Run, kc: KubeClient) -> None:
    """The lab server warns (HTTP Warning 299) about unknown fields under fieldValidation=Warn; offline
    validation refuses those before a plan asks, so the dry run is driven directly here."""
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w", "namespace": "default"},
          "data": {"a": "1"}, "colour": "red"}
    change = plan._dry_run(kc, cm, kc.resource("ConfigMap"), field_validation="Warn")
    assert change.action == "create"
    assert change.warnings == ['unknown field "colour"']
    assert ("server warning for ConfigMap default/w", "default", "warn", 'unknown field "colour"') in \
        plan.Plan([change]).checks()
    assert any(r.kind == "note" and 'unknown field "colour"' in r.command for r in kube_run.recorder.records)


def test_a_refused_watch_is_an_error_result_not_a_fallback_to_polling(tmp_path: Path) -> None:
    from kube_double.fixture import make_run

    with ApiDouble(forbid=["watch:persistentvolumeclaims"]) as double:
        run = make_run(tmp_path, double.write_kubeconfig(tmp_path / "kc"))
        kc = kube.connect(run)
        kc.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "d", "namespace": "default"},
                   "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
        mark, before = len(double.requests), len(run.recorder.records)
        result = verify.wait(kc, verify.pvc_bound("d", "default"), timeout=3)
        assert result.status == "error" and "cannot watch" in result.last
        assert result.duration_s < 2  # no polling until the timeout
        assert [r.verb for r in double.requests[mark:]] == ["list", "watch"]
        (rec,) = run.recorder.records[before:]
        assert rec.status == "error"


def test_objects_without_namespace_use_the_contexts_and_are_not_pruned(kc: KubeClient) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nons", "labels": {"app.kubernetes.io/part-of": "objtest"}}}
    plan.apply(kc, plan.plan(kc, [cm]))
    p = plan.plan(kc, [cm], prune_selector=LABEL)
    assert [(c.action, str(c.ref)) for c in p.changes] == [("unchanged", "ConfigMap default/nons")]


def test_an_immutable_field_change_is_an_error_naming_the_field(kc: KubeClient) -> None:
    objs = base_set()
    plan.apply(kc, plan.plan(kc, objs))
    objs[3]["spec"]["selector"]["matchLabels"] = {"app": "other"}
    objs[3]["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    p = plan.plan(kc, objs)
    (bad,) = [c for c in p.changes if c.action != "unchanged"]
    assert (bad.action, str(bad.ref)) == ("error", "Deployment demo/web")
    assert "spec.selector" in bad.note and "immutable" in bad.note
    assert ("object Deployment demo/web", "fail") in [(c[0], c[2]) for c in p.checks()]


def test_a_server_lost_during_a_wait_is_unreachable(tmp_path: Path) -> None:
    from kube_double.fixture import make_run

    from runbooks_lib.transport.base import TargetUnreachable

    double = ApiDouble()
    double.start()
    run = make_run(tmp_path, double.write_kubeconfig(tmp_path / "kc"))
    kc = kube.connect(run)
    stopper = threading.Timer(0.5, double.stop)
    stopper.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(TargetUnreachable):
            verify.wait(kc, verify.pvc_bound("never", "default"), timeout=10)
        assert time.monotonic() - t0 < 8
    finally:
        stopper.join()


def test_force_is_planned_shown_and_applied_only_with_confirm(kube_run: Run, kc: KubeClient,
                                                              api_double: tuple[Path, str, ApiDouble]) -> None:
    """kube-proxy's config.conf is another manager's field (kubeadm's on a real cluster): the plan shows
    the conflict, its owner and the diff; a forced plan is drift; apply forces only when confirmed."""
    double = api_double[2]
    live = kc.get("ConfigMap", "kube-proxy", "kube-system")
    owner = next(m["manager"] for m in live["metadata"]["managedFields"] if m.get("operation") == "Update")
    mine = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
            "data": {"config.conf": live["data"]["config.conf"].replace('mode: ""', 'mode: "nftables"')}}
    p = plan.plan(kc, [mine], force=True)
    (change,) = p.changes
    assert change.action == "conflict" and f'conflict with "{owner}": .data.config.conf' in change.note
    assert [f.path for f in change.fields] == [".data.config.conf"] and 'mode: "nftables"' in change.fields[0].after
    assert p.checks()[0][2] == "drift" and p.pending == [change]
    assert plan.plan(kc, [mine]).checks()[0][2] == "fail"  # without force a conflict is a failure
    mark = len(double.requests)
    plan.apply(kc, p, confirmed=False)
    assert writes(double, mark) == [] and not change.applied and "withheld" in change.note
    before = len(kube_run.recorder.records)
    plan.apply(kc, p, confirmed=True)
    assert change.applied and change.action == "update" and change.note.startswith("forced: ")
    assert p.checks()[0][2] == "changed"
    assert any("force=true" in r.query for r in double.requests[mark:] if "dryRun=All" not in r.query)
    assert any(r.kind == "note" and "forced server-side apply of ConfigMap kube-system/kube-proxy" in r.command
               for r in kube_run.recorder.records[before:])
    cm = double.object("ConfigMap", "kube-proxy", "kube-system")
    assert 'mode: "nftables"' in cm["data"]["config.conf"] and "kubeconfig.conf" in cm["data"]
    assert plan.plan(kc, [mine]).changes[0].action == "unchanged"  # ours now: no conflict, no change


def test_pods_by_selector_on_a_node_are_waited_by_watch(kube_run: Run, kc: KubeClient,
                                                         api_double: tuple[Path, str, ApiDouble]) -> None:
    """The DaemonSet's replacement pod has no name until created: wait by selector + node, one record."""
    double = api_double[2]
    (old,) = kc.list_objects("Pod", "kube-system", label_selector="k8s-app=kube-proxy",
                             field_selector="spec.nodeName=w1")
    kc.delete("Pod", old["metadata"]["name"], "kube-system")
    generation = str(kc.get("DaemonSet", "kube-proxy", "kube-system")["metadata"]["generation"])
    mark, before = len(double.requests), len(kube_run.recorder.records)
    exp = verify.pods_ready("kube-system", "k8s-app=kube-proxy", node="w1", replacing={old["metadata"]["uid"]},
                            revision=generation)  # the DaemonSet's current template generation
    result = verify.wait(kc, exp, timeout=20)
    assert result.ok, result
    (rec,) = kube_run.recorder.records[before:]
    assert rec.extra["verb"] == "watch" and rec.extra["last"] == "current"
    assert "k8s-app=kube-proxy,spec.nodeName=w1" in rec.command
    assert all("labelSelector=k8s-app" in r.query for r in double.requests[mark:] if r.path.endswith("/pods"))
    (new,) = kc.list_objects("Pod", "kube-system", label_selector="k8s-app=kube-proxy", field_selector="spec.nodeName=w1")
    assert new["metadata"]["name"] in result.last and new["metadata"]["uid"] != old["metadata"]["uid"]
    stale = verify.wait(kc, verify.pods_ready("kube-system", "k8s-app=kube-proxy", node="w1", revision="0000000000"),
                        timeout=1)
    assert stale.status == "fail" and "still there" in stale.last
    none = verify.wait(kc, verify.pods_ready("kube-system", "k8s-app=kube-proxy", node="w9"), timeout=1)
    assert none.status == "fail" and "no new pod yet" in none.last
