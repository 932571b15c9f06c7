"""Deployments -> ReplicaSets -> Pods, ClusterIP allocation, EndpointSlices, APIService availability."""

from __future__ import annotations

import ipaddress

import pytest

from contract.conftest import PAUSE, Cluster, wait_for

pytestmark = pytest.mark.contract


def _deployment(name: str, replicas: int, labels: dict) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "main", "image": PAUSE,
                                                           "ports": [{"containerPort": 8443}]}]}}}}


def _ready_pods(cluster: Cluster, selector: str) -> list[dict]:
    r = cluster.request("GET", cluster.path("v1", "pods"), query={"labelSelector": selector})
    return [p for p in r.body["items"] if any(c["type"] == "Ready" and c["status"] == "True"
                                              for c in (p.get("status") or {}).get("conditions") or [])]


@pytest.fixture(scope="module")
def backend(cluster: Cluster) -> str:
    """A 2-replica Deployment of the pause image and its Service (port 443 -> 8443); the app label."""
    app = cluster.name("backend")
    assert cluster.create("apps/v1", "deployments", _deployment(app, 2, {"app": app})).status == 201
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": app},
           "spec": {"selector": {"app": app}, "ports": [{"name": "https", "port": 443, "targetPort": 8443}]}}
    assert cluster.create("v1", "services", svc).status == 201
    return app


def test_deployment_creates_a_replicaset_that_creates_ready_pods(cluster: Cluster, backend: str, timeout: float):
    """The Deployment owns a ReplicaSet (pod-template-hash), which owns the pods; the rollout completes.
    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#creating-a-deployment"""
    pods = wait_for(lambda: (lambda p: len(p) == 2 and p)(_ready_pods(cluster, f"app={backend}")), timeout,
                    "2 ready pods")
    dep = cluster.get("apps/v1", "deployments", backend).body
    rss = cluster.request("GET", cluster.path("apps/v1", "replicasets"), query={"labelSelector": f"app={backend}"}).body
    assert len(rss["items"]) == 1
    rs = rss["items"][0]
    assert rs["metadata"]["ownerReferences"][0]["uid"] == dep["metadata"]["uid"]
    assert rs["metadata"]["ownerReferences"][0]["controller"] is True
    assert rs["metadata"]["labels"]["pod-template-hash"] in rs["metadata"]["name"]
    for p in pods:
        assert p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
        assert p["metadata"]["name"].startswith(rs["metadata"]["name"] + "-")
    done = wait_for(lambda: (lambda d: d["status"].get("updatedReplicas") == 2 and d["status"].get("availableReplicas") == 2
                             and d["status"].get("observedGeneration") == d["metadata"]["generation"] and d)(
        cluster.get("apps/v1", "deployments", backend).body), timeout, "the Deployment's status to count 2")
    assert done["status"]["readyReplicas"] == 2


def test_template_change_makes_a_new_replicaset_and_retires_the_old(cluster: Cluster, timeout: float):
    """A pod template change creates a new ReplicaSet (revision 2) and scales the old one to zero.
    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#updating-a-deployment"""
    app = cluster.name("rollout")
    assert cluster.create("apps/v1", "deployments", _deployment(app, 1, {"app": app})).status == 201
    wait_for(lambda: _ready_pods(cluster, f"app={app}"), timeout, "a ready pod")
    r = cluster.patch("apps/v1", "deployments", app, {"spec": {"template": {"metadata": {"annotations": {"x": "2"}}}}})
    assert r.status == 200

    def settled() -> list[dict] | None:
        items = cluster.request("GET", cluster.path("apps/v1", "replicasets"),
                                query={"labelSelector": f"app={app}"}).body["items"]
        spec = sorted((int(i["metadata"]["annotations"]["deployment.kubernetes.io/revision"]), i["spec"]["replicas"])
                      for i in items)
        return items if spec == [(1, 0), (2, 1)] else None
    wait_for(settled, timeout, "revision 2 with 1 replica and revision 1 scaled to 0")


def test_endpoint_slices_list_the_ready_pods(cluster: Cluster, backend: str, timeout: float):
    """The EndpointSlice controller lists the Service's selected pods with their IPs, ready as they are.
    https://kubernetes.io/docs/concepts/services-networking/endpoint-slices/"""
    pods = wait_for(lambda: (lambda p: len(p) == 2 and p)(_ready_pods(cluster, f"app={backend}")), timeout,
                    "2 ready pods")

    def ready_addresses() -> set[str]:
        r = cluster.request("GET", cluster.path("discovery.k8s.io/v1", "endpointslices"),
                            query={"labelSelector": f"kubernetes.io/service-name={backend}"})
        return {a for s in r.body["items"] for ep in s.get("endpoints") or []
                if (ep.get("conditions") or {}).get("ready") for a in ep["addresses"]}
    want = {p["status"]["podIP"] for p in pods}
    wait_for(lambda: ready_addresses() == want, timeout, f"ready endpoints {sorted(want)}")


def test_cluster_ips_are_allocated_unique_and_a_taken_one_is_refused(cluster: Cluster):
    """Each Service gets its own ClusterIP from the service CIDR; requesting one in use is 422.
    https://kubernetes.io/docs/concepts/services-networking/cluster-ip-allocation/"""
    ips = []
    for n in ("ip-a", "ip-b"):
        r = cluster.create("v1", "services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": cluster.name(n)},
                                              "spec": {"ports": [{"port": 80}]}})
        assert r.status == 201
        ips.append(r.body["spec"]["clusterIP"])
        assert r.body["spec"]["clusterIPs"] == [ips[-1]]
    assert ips[0] != ips[1] and all(ipaddress.ip_address(i) for i in ips)
    r = cluster.create("v1", "services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": cluster.name("ip-c")},
                                          "spec": {"clusterIP": ips[0], "ports": [{"port": 80}]}})
    assert r.status == 422 and "already allocated" in r.message


def test_requested_cluster_ip_is_honoured_or_refused_outside_the_range(cluster: Cluster):
    """spec.clusterIP may be requested: a free one in the range is given, one outside the range is 422.
    https://kubernetes.io/docs/concepts/services-networking/service/#choosing-your-own-ip-address"""
    first = cluster.create("v1", "services", {"apiVersion": "v1", "kind": "Service",
                                              "metadata": {"name": cluster.name("ip-free")},
                                              "spec": {"ports": [{"port": 80}]}}).body
    ip = first["spec"]["clusterIP"]
    assert cluster.delete("v1", "services", cluster.name("ip-free")).status == 200
    r = cluster.create("v1", "services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": cluster.name("ip-own")},
                                          "spec": {"clusterIP": ip, "ports": [{"port": 80}]}})
    assert r.status == 201 and r.body["spec"]["clusterIP"] == ip
    r = cluster.create("v1", "services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": cluster.name("ip-out")},
                                          "spec": {"clusterIP": "192.0.2.77", "ports": [{"port": 80}]}})
    assert r.status == 422 and "range" in r.message


def test_apiservice_is_available_only_with_ready_endpoints(cluster: Cluster, timeout: float):
    """An APIService is not Available while its Service has no ready endpoint (MissingEndpoints); once
    it has, that reason goes (the lab then reports Available; a real aggregator goes on to check the
    backend's discovery). https://kubernetes.io/docs/tasks/extend-kubernetes/configure-aggregation-layer/"""
    app = cluster.name("agg")
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": app},
           "spec": {"selector": {"app": app}, "ports": [{"name": "https", "port": 443, "targetPort": 8443}]}}
    assert cluster.create("v1", "services", svc).status == 201
    name = f"v1alpha1.{app}.runbooks.io"
    api = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": name},
           "spec": {"group": f"{app}.runbooks.io", "version": "v1alpha1", "groupPriorityMinimum": 10,
                    "versionPriority": 10, "insecureSkipTLSVerify": True,
                    "service": {"namespace": cluster.ns, "name": app, "port": 443}}}
    assert cluster.create("apiregistration.k8s.io/v1", "apiservices", api, namespaced=False).status == 201

    def available() -> dict:
        r = cluster.get("apiregistration.k8s.io/v1", "apiservices", name, namespaced=False)
        return next((c for c in (r.body.get("status") or {}).get("conditions") or [] if c["type"] == "Available"), {})
    cond = wait_for(available, timeout, "an Available condition")
    assert cond["status"] == "False" and cond["reason"] == "MissingEndpoints"
    assert cluster.create("apps/v1", "deployments", _deployment(app, 1, {"app": app})).status == 201
    cond = wait_for(lambda: (lambda c: c.get("reason") != "MissingEndpoints" and c)(available()), timeout,
                    "the APIService to see its endpoint")
    if cluster.lab is not None:
        assert cond["status"] == "True"
