"""Scheduling, images, watch, exec."""

from __future__ import annotations

import threading
import time

import kubernetes
import pytest
from kubernetes import watch
from kubernetes.stream import stream

from contract.conftest import PAUSE, Cluster, wait_for

pytestmark = pytest.mark.contract


def _pod(name: str, image: str = PAUSE, **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "main", "image": image}], **spec}}


def _condition(cluster: Cluster, name: str, type_: str) -> dict:
    pod = cluster.get("v1", "pods", name).body
    return next((c for c in (pod.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


def test_pod_with_unmatched_node_selector_is_unschedulable(cluster: Cluster, timeout: float):
    """No node matches the nodeSelector: the pod stays Pending, PodScheduled=False, Unschedulable.
    https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodeselector"""
    name = cluster.name("nosuchnode")
    assert cluster.create("v1", "pods", _pod(name, nodeSelector={"runbooks.io/contract": "no-such-node"})).status == 201
    cond = wait_for(lambda: _condition(cluster, name, "PodScheduled"), timeout, "a PodScheduled condition")
    assert cond["status"] == "False" and cond["reason"] == "Unschedulable"
    assert "node" in cond["message"]
    assert not cluster.get("v1", "pods", name).body["spec"].get("nodeName")


def _tainted_node(cluster: Cluster) -> tuple[str, dict] | None:
    for n in cluster.request("GET", "/api/v1/nodes").body["items"]:
        for t in (n.get("spec") or {}).get("taints") or []:
            if t.get("effect") == "NoSchedule" and not n["spec"].get("unschedulable"):
                return n["metadata"]["name"], t
    return None


def test_taints_keep_pods_off_unless_tolerated(cluster: Cluster, timeout: float):
    """A NoSchedule taint keeps pods that do not tolerate it off the node; a toleration lets them on.
    https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/"""
    found = _tainted_node(cluster)
    if found is None:
        pytest.skip("no node with a NoSchedule taint (a kubeadm control plane has one)")
    node, taint = found
    pin = {"kubernetes.io/hostname": node}
    refused, allowed = cluster.name("untolerated"), cluster.name("tolerated")
    assert cluster.create("v1", "pods", _pod(refused, nodeSelector=pin)).status == 201
    tol = [{"key": taint["key"], "operator": "Exists", "effect": "NoSchedule"}]
    assert cluster.create("v1", "pods", _pod(allowed, nodeSelector=pin, tolerations=tol)).status == 201
    cond = wait_for(lambda: _condition(cluster, refused, "PodScheduled"), timeout, "a PodScheduled condition")
    assert cond["status"] == "False" and "taint" in cond["message"]
    wait_for(lambda: cluster.get("v1", "pods", allowed).body["spec"].get("nodeName") == node, timeout,
             f"the tolerating pod on {node}")


def test_unpullable_image_is_err_image_pull_then_backoff(cluster: Cluster, timeout: float):
    """An image the node cannot pull: the container waits with ErrImagePull / ImagePullBackOff, the pod is
    not Ready. https://kubernetes.io/docs/concepts/containers/images/#imagepullbackoff"""
    name = cluster.name("badimage")
    assert cluster.create("v1", "pods", _pod(name, image="registry.invalid/runbooks/contract:0")).status == 201

    def waiting() -> str:
        pod = cluster.get("v1", "pods", name).body
        states = [(s.get("state") or {}).get("waiting", {}).get("reason", "")
                  for s in (pod.get("status") or {}).get("containerStatuses") or []]
        return next((s for s in states if s in ("ErrImagePull", "ImagePullBackOff")), "")
    wait_for(waiting, timeout, "ErrImagePull or ImagePullBackOff")
    assert cluster.get("v1", "pods", name).body["status"]["phase"] == "Pending"
    assert _condition(cluster, name, "Ready").get("status") != "True"


def _core(cluster: Cluster) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(cluster.client)


def test_list_then_watch_streams_changes_in_order(cluster: Cluster):
    """List, then watch from the list's resourceVersion: ADDED, MODIFIED, DELETED in order.
    https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes"""
    core = _core(cluster)
    rv = core.list_namespaced_config_map(cluster.ns).metadata.resource_version
    name = cluster.name("watched")

    def writes() -> None:
        time.sleep(0.3)
        cluster.create("v1", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                                            "data": {"v": "1"}})
        cluster.patch("v1", "configmaps", name, {"data": {"v": "2"}})
        cluster.delete("v1", "configmaps", name)
    t = threading.Thread(target=writes)
    t.start()
    seen = []
    for ev in watch.Watch().stream(core.list_namespaced_config_map, cluster.ns, resource_version=rv,
                                   field_selector=f"metadata.name={name}", timeout_seconds=20):
        seen.append((ev["type"], (ev["object"].data or {}).get("v")))
        if ev["type"] == "DELETED":
            break
    t.join()
    assert seen == [("ADDED", "1"), ("MODIFIED", "2"), ("DELETED", "2")]


def test_watch_ends_at_timeout_seconds(cluster: Cluster):
    """timeoutSeconds bounds a watch: the server closes it after that long.
    https://kubernetes.io/docs/reference/kubernetes-api/common-parameters/common-parameters/#timeoutSeconds"""
    core = _core(cluster)
    rv = core.list_namespaced_config_map(cluster.ns).metadata.resource_version
    started = time.monotonic()
    events = list(watch.Watch().stream(core.list_namespaced_config_map, cluster.ns, resource_version=rv,
                                       field_selector="metadata.name=nothing-here", timeout_seconds=2))
    took = time.monotonic() - started
    assert events == []
    assert 1.5 <= took < 10


def test_exec_to_a_service_without_ready_endpoints_fails(cluster: Cluster, timeout: float):
    """A ClusterIP whose Service has no ready endpoint answers nothing: a probe from a pod fails.
    https://kubernetes.io/docs/concepts/services-networking/service/#services-without-selectors
    https://kubernetes.io/docs/tasks/debug/debug-application/debug-service/#does-the-service-have-any-endpoints"""
    app = cluster.name("empty")
    svc = cluster.create("v1", "services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": app},
                                            "spec": {"selector": {"app": app}, "ports": [{"port": 80}]}}).body
    probe = cluster.name("probe")
    pod = _pod(probe, image="busybox:1.36")
    pod["spec"]["containers"][0]["command"] = ["sleep", "3600"]
    assert cluster.create("v1", "pods", pod).status == 201
    wait_for(lambda: _condition(cluster, probe, "Ready").get("status") == "True", timeout, "the probe pod Ready")
    kubernetes_ip = cluster.request("GET", "/api/v1/namespaces/default/services/kubernetes").body["spec"]["clusterIP"]
    assert _exec_rc(cluster, probe, ["nc", "-z", "-w", "2", kubernetes_ip, "443"]) == 0  # the probe itself works
    assert _exec_rc(cluster, probe, ["nc", "-z", "-w", "2", svc["spec"]["clusterIP"], "80"]) != 0


def _exec_rc(cluster: Cluster, pod: str, argv: list[str]) -> int | None:
    resp = stream(_core(cluster).connect_get_namespaced_pod_exec, pod, cluster.ns, command=argv,
                  stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=20)
    return resp.returncode
