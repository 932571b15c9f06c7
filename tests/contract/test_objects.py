"""Status subresource, immutable fields, server-side apply, optimistic locking."""

from __future__ import annotations

import pytest

from contract.conftest import PAUSE, Cluster

pytestmark = pytest.mark.contract


def _deployment(name: str, replicas: int = 0, image: str = PAUSE, labels: dict | None = None) -> dict:
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "main", "image": image}]}}}}


def _service(name: str, **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"port": 80, "protocol": "TCP"}], **spec}}


# ----------------------------------------------------------------------------- status

def test_status_is_ignored_on_create(cluster: Cluster):
    """A PVC created with status Bound is not Bound: status is set by the system, not on create.
    https://kubernetes.io/docs/reference/using-api/api-concepts/#status-subresource
    https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#spec-and-status"""
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": cluster.name("pvc-status")},
           "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}},
                    "storageClassName": "contract-none"},
           "status": {"phase": "Bound", "capacity": {"storage": "1Mi"}}}
    r = cluster.create("v1", "persistentvolumeclaims", pvc)
    assert r.status == 201, r.body
    assert r.body["status"] == {"phase": "Pending"}  # the defaulted phase, nothing of the request's


def test_configmap_has_no_status_subresource(cluster: Cluster):
    """Only types with a status subresource serve /status; a ConfigMap's is 404 and its data unchanged.
    https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/config-map-v1/#operations"""
    name = cluster.name("cm-status")
    assert cluster.create("v1", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                                               "data": {"a": "1"}}).status == 201
    r = cluster.patch("v1", "configmaps", name, {"data": {"a": "2"}}, sub="status")
    assert r.status == 404
    assert cluster.get("v1", "configmaps", name).body["data"] == {"a": "1"}


def test_status_written_only_through_the_status_subresource(cluster: Cluster):
    """Writes to the main resource ignore status; writes to /status ignore everything but status.
    https://kubernetes.io/docs/reference/using-api/api-concepts/#status-subresource"""
    name = cluster.name("svc-status")
    assert cluster.create("v1", "services", _service(name)).status == 201
    cond = {"type": "ContractTest", "status": "True", "reason": "Contract", "message": "set by a test",
            "lastTransitionTime": "2024-01-01T00:00:00Z"}
    r = cluster.patch("v1", "services", name, {"status": {"conditions": [cond]}})
    assert r.status == 200 and not (r.body.get("status") or {}).get("conditions")
    r = cluster.patch("v1", "services", name, {"metadata": {"labels": {"via": "status"}},
                                               "status": {"conditions": [cond]}}, sub="status")
    assert r.status == 200, r.body
    assert r.body["status"]["conditions"][0]["type"] == "ContractTest"
    assert "via" not in (r.body["metadata"].get("labels") or {})


# ----------------------------------------------------------------------------- immutable fields

def test_service_cluster_ip_is_immutable(cluster: Cluster):
    """spec.clusterIP cannot change once set.
    https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/#ServiceSpec"""
    name = cluster.name("svc-imm")
    made = cluster.create("v1", "services", _service(name))
    ip = made.body["spec"]["clusterIP"]
    other = ".".join(ip.split(".")[:3] + [str((int(ip.split(".")[3]) + 7) % 250 + 2)])
    r = cluster.patch("v1", "services", name, {"spec": {"clusterIP": other, "clusterIPs": [other]}})
    assert r.status == 422, r.body
    assert "immutable" in r.message


def test_deployment_selector_is_immutable(cluster: Cluster):
    """apps/v1 Deployment spec.selector is immutable after creation.
    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#label-selector-updates"""
    name = cluster.name("dep-sel")
    assert cluster.create("apps/v1", "deployments", _deployment(name)).status == 201
    r = cluster.patch("apps/v1", "deployments", name,
                      {"spec": {"selector": {"matchLabels": {"app": name, "x": "y"}},
                                "template": {"metadata": {"labels": {"app": name, "x": "y"}}}}})
    assert r.status == 422, r.body
    assert "spec.selector" in r.message and "immutable" in r.message


def test_pvc_spec_is_immutable_except_requests(cluster: Cluster):
    """A claim's spec is immutable after creation (resources.requests may grow only when bound).
    https://kubernetes.io/docs/concepts/storage/persistent-volumes/#expanding-persistent-volumes-claims"""
    name = cluster.name("pvc-imm")
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
           "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}},
                    "storageClassName": "contract-none"}}
    assert cluster.create("v1", "persistentvolumeclaims", pvc).status == 201
    r = cluster.patch("v1", "persistentvolumeclaims", name, {"spec": {"accessModes": ["ReadWriteMany"]}})
    assert r.status == 422, r.body
    assert "spec is immutable" in r.message


def test_job_template_is_immutable(cluster: Cluster):
    """A Job's pod template cannot be changed (a suspended Job may change only scheduling directives).
    https://kubernetes.io/docs/concepts/workloads/controllers/job/#mutable-scheduling-directives"""
    name = cluster.name("job")
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
           "spec": {"suspend": True, "template": {"spec": {"restartPolicy": "Never",
                                                           "containers": [{"name": "c", "image": PAUSE}]}}}}
    assert cluster.create("batch/v1", "jobs", job).status == 201
    r = cluster.patch("batch/v1", "jobs", name, {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}})
    assert r.status == 422, r.body
    assert "spec.template" in r.message and "immutable" in r.message


def test_immutable_configmap_refuses_data_changes(cluster: Cluster):
    """A ConfigMap with immutable: true refuses changes to data (and to immutable itself).
    https://kubernetes.io/docs/concepts/configuration/configmap/#configmap-immutable"""
    name = cluster.name("cm-imm")
    assert cluster.create("v1", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                                               "data": {"a": "1"}, "immutable": True}).status == 201
    r = cluster.patch("v1", "configmaps", name, {"data": {"a": "2"}})
    assert r.status == 422 and "immutable" in r.message
    assert cluster.patch("v1", "configmaps", name, {"immutable": False}).status == 422


# ----------------------------------------------------------------------------- server-side apply

def test_apply_merges_containers_by_name_across_managers(cluster: Cluster):
    """containers is a list-map keyed by name: two managers' containers are both kept.
    https://kubernetes.io/docs/reference/using-api/server-side-apply/#merge-strategy"""
    name = cluster.name("ssa-merge")
    a = _deployment(name)
    assert cluster.apply("apps/v1", "deployments", a, "contract-a").status == 201
    b = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
         "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": PAUSE}]}}}}
    r = cluster.apply("apps/v1", "deployments", b, "contract-b")
    assert r.status == 200, r.body
    assert [c["name"] for c in r.body["spec"]["template"]["spec"]["containers"]] == ["main", "sidecar"]
    r = cluster.apply("apps/v1", "deployments", a, "contract-a")  # a's second apply keeps b's container
    assert [c["name"] for c in r.body["spec"]["template"]["spec"]["containers"]] == ["main", "sidecar"]


def test_apply_merges_env_by_name_and_ports_by_port_and_protocol(cluster: Cluster):
    """env is keyed by name, container ports by containerPort+protocol.
    https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#Container"""
    name = cluster.name("ssa-keys")
    a = _deployment(name)
    a["spec"]["template"]["spec"]["containers"][0].update(
        env=[{"name": "A", "value": "1"}], ports=[{"containerPort": 53, "protocol": "UDP"}])
    assert cluster.apply("apps/v1", "deployments", a, "contract-a").status == 201
    b = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
         "spec": {"template": {"spec": {"containers": [{"name": "main", "env": [{"name": "B", "value": "2"}],
                                                         "ports": [{"containerPort": 53, "protocol": "TCP"}]}]}}}}
    r = cluster.apply("apps/v1", "deployments", b, "contract-b")
    assert r.status == 200, r.body
    c = r.body["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"] for e in c["env"]} == {"A", "B"}
    assert {(p["containerPort"], p["protocol"]) for p in c["ports"]} == {(53, "UDP"), (53, "TCP")}


def test_apply_conflict_names_the_other_manager_and_force_takes_over(cluster: Cluster):
    """Changing a field another manager owns is a 409 naming that manager and the field; force=true
    takes the field over. https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts"""
    name = cluster.name("ssa-conflict")
    assert cluster.apply("apps/v1", "deployments", _deployment(name), "contract-owner").status == 201
    other = _deployment(name, image="registry.k8s.io/pause:3.10")
    r = cluster.apply("apps/v1", "deployments", other, "contract-intruder")
    assert r.status == 409, r.body
    assert "contract-owner" in r.message and 'containers[name="main"].image' in r.message
    r = cluster.apply("apps/v1", "deployments", other, "contract-intruder", force=True)
    assert r.status == 200
    assert r.body["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.k8s.io/pause:3.10"
    assert cluster.apply("apps/v1", "deployments", _deployment(name), "contract-owner").status == 409


def test_apply_with_a_stale_resource_version_is_a_conflict(cluster: Cluster):
    """An applied object naming metadata.resourceVersion is applied only if that is current (409).
    https://kubernetes.io/docs/reference/using-api/server-side-apply/#using-server-side-apply-in-a-controller"""
    name = cluster.name("ssa-rv")
    first = cluster.apply("v1", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                                               "data": {"a": "1"}}, "contract")
    rv = first.body["metadata"]["resourceVersion"]
    assert cluster.patch("v1", "configmaps", name, {"data": {"b": "2"}}).status == 200
    stale = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "resourceVersion": rv},
             "data": {"a": "3"}}
    assert cluster.apply("v1", "configmaps", stale, "contract").status == 409


def test_update_with_a_stale_resource_version_is_a_conflict(cluster: Cluster):
    """PUT is optimistic: a resourceVersion that is no longer current is 409 Conflict.
    https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#concurrency-control-and-consistency"""
    name = cluster.name("put-rv")
    made = cluster.create("v1", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                                               "data": {"a": "1"}}).body
    assert cluster.patch("v1", "configmaps", name, {"data": {"a": "2"}}).status == 200
    r = cluster.request("PUT", cluster.path("v1", "configmaps", name), {**made, "data": {"a": "3"}})
    assert r.status == 409, r.body
    assert cluster.get("v1", "configmaps", name).body["data"] == {"a": "2"}


def test_pod_status_on_create_is_the_systems(cluster: Cluster):
    """A Pod's status on create is set by the server (Pending, its QoS class), not by the request.
    https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-phase
    https://kubernetes.io/docs/concepts/workloads/pods/pod-qos/"""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": cluster.name("pod-status")},
           "spec": {"nodeSelector": {"runbooks.io/contract": "no-such-node"},
                    "containers": [{"name": "c", "image": PAUSE, "resources": {"limits": {"cpu": "10m", "memory": "8Mi"}}}]},
           "status": {"phase": "Succeeded", "podIP": "10.9.9.9"}}
    r = cluster.create("v1", "pods", pod)
    assert r.status == 201, r.body
    assert r.body["status"]["phase"] == "Pending" and "podIP" not in r.body["status"]
    assert r.body["status"]["qosClass"] == "Guaranteed"
