"""StatefulSets: ordinal pods, claims from volumeClaimTemplates (kept by default), OrderedReady, status.

The claims here name a StorageClass that does not exist, so they stay Pending on any cluster (no
provisioner answers), and a pod using one is never scheduled: that is how OrderedReady is observed.
https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/
"""

from __future__ import annotations

import json
import time

import pytest

from contract.conftest import PAUSE, Cluster, wait_for

pytestmark = pytest.mark.contract
NO_CLASS = "contract-no-such-class"


def _sts(name: str, replicas: int, *, claims: bool = False, policy: str = "OrderedReady") -> dict:
    spec: dict = {"serviceName": name, "replicas": replicas, "podManagementPolicy": policy,
                  "selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name}},
                               "spec": {"terminationGracePeriodSeconds": 0,
                                        "containers": [{"name": "main", "image": PAUSE}]}}}
    if claims:
        spec["volumeClaimTemplates"] = [{"metadata": {"name": "data"},
                                         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": NO_CLASS,
                                                  "resources": {"requests": {"storage": "1Mi"}}}}]
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name}, "spec": spec}


def _pods(cluster: Cluster, app: str) -> dict[str, dict]:
    r = cluster.request("GET", cluster.path("v1", "pods"), query={"labelSelector": f"app={app}"})
    return {p["metadata"]["name"]: p for p in r.body["items"]}


def _ready(p: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])


def _settle(cluster: Cluster) -> None:
    """Time for a controller that would act to have acted (absence is only observable by waiting)."""
    time.sleep(1.5 if cluster.lab is not None else 10)


def test_pods_are_ordinal_owned_labelled_and_counted(cluster: Cluster, timeout: float):
    """Pods <name>-0..N-1 with the pod-name and pod-index labels, owned by the StatefulSet, hostname
    and subdomain from the headless Service name; status counts them.
    https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#pod-identity
    https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#pod-name-label"""
    app = cluster.name("ordinals")
    made = cluster.create("apps/v1", "statefulsets", _sts(app, 3))
    assert made.status == 201, made.body
    pods = wait_for(lambda: (lambda p: len(p) == 3 and all(map(_ready, p.values())) and p)(_pods(cluster, app)),
                    timeout, "3 ready pods")
    sts = cluster.get("apps/v1", "statefulsets", app).body
    assert sorted(pods) == [f"{app}-{i}" for i in range(3)]
    for i in range(3):
        p = pods[f"{app}-{i}"]
        labels = p["metadata"]["labels"]
        assert labels["statefulset.kubernetes.io/pod-name"] == f"{app}-{i}"
        assert labels["apps.kubernetes.io/pod-index"] == str(i)
        ref = p["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["uid"], ref["controller"]) == ("StatefulSet", sts["metadata"]["uid"], True)
        assert p["spec"]["hostname"] == f"{app}-{i}" and p["spec"]["subdomain"] == app
    st = wait_for(lambda: (lambda s: s.get("readyReplicas") == 3 and s.get("currentReplicas") == 3 and s)(
        cluster.get("apps/v1", "statefulsets", app).body.get("status") or {}), timeout, "status counting 3")
    assert st["replicas"] == 3
    assert {p["metadata"]["labels"]["controller-revision-hash"] for p in pods.values()} == {st["currentRevision"]}


def test_ordered_ready_waits_for_each_pod_parallel_does_not(cluster: Cluster, timeout: float):
    """OrderedReady: pod N+1 is created only when pods 0..N are Running and Ready (pod 0 here can never
    be: its claim stays Pending); Parallel creates every pod at once.
    https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#pod-management-policies"""
    ordered, parallel = cluster.name("ordered"), cluster.name("parallel")
    assert cluster.create("apps/v1", "statefulsets", _sts(ordered, 3, claims=True)).status == 201
    assert cluster.create("apps/v1", "statefulsets", _sts(parallel, 3, claims=True, policy="Parallel")).status == 201
    wait_for(lambda: len(_pods(cluster, parallel)) == 3, timeout, "3 pods of the Parallel set")
    wait_for(lambda: f"{ordered}-0" in _pods(cluster, ordered), timeout, "pod 0 of the OrderedReady set")
    _settle(cluster)
    assert sorted(_pods(cluster, ordered)) == [f"{ordered}-0"]
    assert not _ready(_pods(cluster, ordered)[f"{ordered}-0"])


def test_claims_come_from_templates_follow_the_pod_and_outlive_the_set(cluster: Cluster, timeout: float):
    """Each pod gets claim <template>-<name>-<ordinal> (created from volumeClaimTemplates, labelled with
    the selector); a deleted pod comes back with the same name and claim; deleting the StatefulSet
    deletes its pods but not its claims (persistentVolumeClaimRetentionPolicy Retain by default).
    https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#stable-storage
    https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#persistentvolumeclaim-retention"""
    app = cluster.name("claims")
    assert cluster.create("apps/v1", "statefulsets", _sts(app, 1, claims=True)).status == 201
    claim = f"data-{app}-0"
    pvc = wait_for(lambda: (lambda r: r.status == 200 and r.body)(cluster.get("v1", "persistentvolumeclaims", claim)),
                   timeout, f"claim {claim}")
    assert pvc["metadata"]["labels"]["app"] == app and pvc["spec"]["storageClassName"] == NO_CLASS
    pod = wait_for(lambda: _pods(cluster, app).get(f"{app}-0"), timeout, "pod 0")
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert vols["data"]["persistentVolumeClaim"]["claimName"] == claim
    assert cluster.delete("v1", "pods", f"{app}-0", gracePeriodSeconds="0").status == 200
    back = wait_for(lambda: (lambda p: p and p["metadata"]["uid"] != pod["metadata"]["uid"] and p)(
        _pods(cluster, app).get(f"{app}-0")), timeout, "pod 0 re-created")
    assert {v["name"]: v for v in back["spec"]["volumes"]}["data"]["persistentVolumeClaim"]["claimName"] == claim
    assert cluster.delete("apps/v1", "statefulsets", app, propagationPolicy="Background").status == 200
    wait_for(lambda: not _pods(cluster, app), timeout, "the pods garbage collected")
    assert cluster.get("v1", "persistentvolumeclaims", claim).status == 200       # retained
    assert cluster.delete("v1", "persistentvolumeclaims", claim).status == 200


def test_scale_down_removes_the_highest_ordinal_first(cluster: Cluster, timeout: float):
    """Scaling down terminates pods from the highest ordinal down, one at a time (OrderedReady).
    https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#deployment-and-scaling-guarantees"""
    app = cluster.name("scaledown")
    assert cluster.create("apps/v1", "statefulsets", _sts(app, 3)).status == 201
    wait_for(lambda: (lambda p: len(p) == 3 and all(map(_ready, p.values())))(_pods(cluster, app)), timeout,
             "3 ready pods")
    rv = cluster.request("GET", cluster.path("v1", "pods")).body["metadata"]["resourceVersion"]
    assert cluster.patch("apps/v1", "statefulsets", app, {"spec": {"replicas": 1}}).status == 200
    wait_for(lambda: sorted(_pods(cluster, app)) == [f"{app}-0"], timeout, "only pod 0 left")
    events = cluster.request("GET", cluster.path("v1", "pods"), query={
        "watch": "true", "resourceVersion": rv, "timeoutSeconds": "1", "labelSelector": f"app={app}"}).body
    lines = events.splitlines() if isinstance(events, str) else [json.dumps(events)]
    deleted = [e["object"]["metadata"]["name"] for e in map(json.loads, filter(None, lines)) if e["type"] == "DELETED"]
    assert deleted == [f"{app}-2", f"{app}-1"]


def test_a_pod_waits_for_its_claim_and_binding_sets_volume_name_once(cluster: Cluster, timeout: float):
    """A pod whose claim is unbound is not scheduled (Pending, PodScheduled=False); a claim's spec is
    immutable except that binding may set ``volumeName`` once (what the PV controller or a
    provisioner writes), after which it cannot change.
    https://kubernetes.io/docs/concepts/storage/persistent-volumes/#binding
    https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/persistent-volume-claim-v1/"""
    claim = cluster.name("unbound")
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim},
           "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": NO_CLASS,
                    "resources": {"requests": {"storage": "1Mi"}}}}
    assert cluster.create("v1", "persistentvolumeclaims", pvc).status == 201
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": claim},
           "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "main", "image": PAUSE}],
                    "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim}}]}}
    assert cluster.create("v1", "pods", pod).status == 201
    cond = wait_for(lambda: next((c for c in (cluster.get("v1", "pods", claim).body.get("status") or {})
                                  .get("conditions") or [] if c["type"] == "PodScheduled"), None),
                    timeout, "a PodScheduled condition")
    assert cond["status"] == "False" and "PersistentVolumeClaim" in cond["message"]
    assert not cluster.get("v1", "pods", claim).body["spec"].get("nodeName")
    once = cluster.patch("v1", "persistentvolumeclaims", claim, {"spec": {"volumeName": f"{claim}-pv"}})
    assert once.status == 200, once.body
    again = cluster.patch("v1", "persistentvolumeclaims", claim, {"spec": {"volumeName": f"{claim}-other"}})
    assert again.status == 422 and "immutable" in again.message


def test_retention_policy_when_deleted_delete_removes_the_claims_with_the_set(cluster: Cluster, timeout: float):
    """``persistentVolumeClaimRetentionPolicy.whenDeleted: Delete``: the claims are deleted (garbage
    collected) after the StatefulSet is.
    https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#persistentvolumeclaim-retention"""
    app = cluster.name("autodelete")
    body = _sts(app, 1, claims=True)
    body["spec"]["persistentVolumeClaimRetentionPolicy"] = {"whenDeleted": "Delete", "whenScaled": "Retain"}
    assert cluster.create("apps/v1", "statefulsets", body).status == 201
    claim = f"data-{app}-0"
    wait_for(lambda: cluster.get("v1", "persistentvolumeclaims", claim).status == 200, timeout, f"claim {claim}")
    assert cluster.delete("apps/v1", "statefulsets", app, propagationPolicy="Background").status == 200
    wait_for(lambda: cluster.get("v1", "persistentvolumeclaims", claim).status == 404, timeout,
             f"claim {claim} deleted with the set")
