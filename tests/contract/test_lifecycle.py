"""Namespace deletion, garbage collection, CustomResourceDefinitions."""

from __future__ import annotations

import pytest

from contract.conftest import Cluster, wait_for

pytestmark = pytest.mark.contract

CRD_GROUP = "contract.runbooks.io"


def _cm(name: str, namespace: str | None = None, owner: dict | None = None) -> dict:
    meta: dict = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
                                    "uid": owner["metadata"]["uid"]}]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"a": "1"}}


def test_namespace_deletion_goes_terminating_then_removes_its_objects(cluster: Cluster, timeout: float):
    """Deleting a namespace marks it Terminating, deletes everything in it, then the namespace.
    https://kubernetes.io/docs/tasks/administer-cluster/namespaces/#deleting-a-namespace"""
    ns = cluster.name("ns-del")
    assert cluster.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}}).status == 201
    cluster.cluster_scoped.append(f"/api/v1/namespaces/{ns}")
    assert cluster.request("POST", f"/api/v1/namespaces/{ns}/configmaps", _cm("inside")).status == 201
    r = cluster.request("DELETE", f"/api/v1/namespaces/{ns}")
    assert r.status in (200, 202), r.body
    assert r.body["status"]["phase"] == "Terminating" and r.body["metadata"].get("deletionTimestamp")
    wait_for(lambda: cluster.request("GET", f"/api/v1/namespaces/{ns}/configmaps/inside").status == 404,
             timeout, "the namespace's ConfigMap to be deleted")
    wait_for(lambda: cluster.request("GET", f"/api/v1/namespaces/{ns}").status == 404, timeout,
             "the namespace to be removed")


def test_owner_deletion_collects_dependents(cluster: Cluster, timeout: float):
    """Background cascading deletion: a dependent whose owner (by uid) is gone is deleted.
    https://kubernetes.io/docs/concepts/architecture/garbage-collection/#cascading-deletion"""
    owner = cluster.create("v1", "configmaps", _cm(cluster.name("owner"))).body
    assert cluster.create("v1", "configmaps", _cm(cluster.name("dependent"), owner=owner)).status == 201
    assert cluster.delete("v1", "configmaps", owner["metadata"]["name"]).status == 200
    wait_for(lambda: cluster.get("v1", "configmaps", cluster.name("dependent")).status == 404, timeout,
             "the dependent to be garbage-collected")


def test_orphan_deletion_keeps_dependents(cluster: Cluster, timeout: float):
    """propagationPolicy=Orphan: dependents stay, without the ownerReference.
    https://kubernetes.io/docs/tasks/administer-cluster/use-cascading-deletion/#set-orphan-deletion-policy"""
    owner = cluster.create("v1", "configmaps", _cm(cluster.name("orphan-owner"))).body
    assert cluster.create("v1", "configmaps", _cm(cluster.name("orphan"), owner=owner)).status == 201
    assert cluster.delete("v1", "configmaps", owner["metadata"]["name"], propagationPolicy="Orphan").status == 200
    left = wait_for(lambda: (lambda r: r.status == 200 and not r.body["metadata"].get("ownerReferences") and r)(
        cluster.get("v1", "configmaps", cluster.name("orphan"))), timeout, "the orphan to lose its ownerReference")
    assert left.body["data"] == {"a": "1"}


def _crd(cluster: Cluster, plural: str, status: bool) -> dict:
    kind = plural.capitalize()[:-1]
    version: dict = {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
        "type": "object", "properties": {
            "spec": {"type": "object", "properties": {"size": {"type": "integer"}, "color": {"type": "string"}}},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}}}
    if status:
        version["subresources"] = {"status": {}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{CRD_GROUP}"},
            "spec": {"group": CRD_GROUP, "scope": "Namespaced", "versions": [version],
                     "names": {"plural": plural, "singular": kind.lower(), "kind": kind}}}


@pytest.fixture(scope="module")
def crd(cluster: Cluster) -> str:
    """A CRD with a status subresource, Established; its plural."""
    plural = f"gizmos{cluster.tag.split('-')[1]}"
    r = cluster.create("apiextensions.k8s.io/v1", "customresourcedefinitions", _crd(cluster, plural, True),
                       namespaced=False)
    assert r.status == 201, r.body
    return plural


def _established(cluster: Cluster, plural: str) -> bool:
    r = cluster.get("apiextensions.k8s.io/v1", "customresourcedefinitions", f"{plural}.{CRD_GROUP}", namespaced=False)
    return any(c["type"] == "Established" and c["status"] == "True"
               for c in (r.body.get("status") or {}).get("conditions") or [])


def test_crd_becomes_established_and_its_resources_are_served(cluster: Cluster, crd: str, timeout: float):
    """A CRD gets Established; then its kind is served at /apis/<group>/<version>.
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#create-a-customresourcedefinition"""
    wait_for(lambda: _established(cluster, crd), timeout, "the CRD to be Established")
    kind = crd.capitalize()[:-1]
    obj = {"apiVersion": f"{CRD_GROUP}/v1", "kind": kind, "metadata": {"name": "one"}, "spec": {"size": 3}}
    r = wait_for(lambda: (lambda r: r.status == 201 and r)(cluster.create(f"{CRD_GROUP}/v1", crd, obj)), timeout,
                 "the custom resource to be served")
    assert r.body["spec"] == {"size": 3}
    assert cluster.get(f"{CRD_GROUP}/v1", crd, "one").body["spec"]["size"] == 3


def test_custom_resources_are_validated_against_the_schema(cluster: Cluster, crd: str, timeout: float):
    """Instances are validated against openAPIV3Schema (422 on a wrong type); unknown fields are
    pruned, with a Warning. https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#field-pruning"""
    wait_for(lambda: _established(cluster, crd), timeout, "the CRD to be Established")
    kind = crd.capitalize()[:-1]
    bad = {"apiVersion": f"{CRD_GROUP}/v1", "kind": kind, "metadata": {"name": "bad"}, "spec": {"size": "big"}}
    r = cluster.create(f"{CRD_GROUP}/v1", crd, bad)
    assert r.status == 422, r.body
    assert "spec.size" in r.message
    extra = {"apiVersion": f"{CRD_GROUP}/v1", "kind": kind, "metadata": {"name": "extra"},
             "spec": {"size": 1, "bogus": True}}
    r = cluster.create(f"{CRD_GROUP}/v1", crd, extra)
    assert r.status == 201 and "bogus" not in r.body["spec"]
    assert any("spec.bogus" in w for w in r.warnings), r.headers


def test_custom_resource_status_subresource(cluster: Cluster, crd: str, timeout: float):
    """With subresources.status declared, status is ignored on create/update of the main resource and
    written through /status. https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#status-subresource"""
    wait_for(lambda: _established(cluster, crd), timeout, "the CRD to be Established")
    kind = crd.capitalize()[:-1]
    obj = {"apiVersion": f"{CRD_GROUP}/v1", "kind": kind, "metadata": {"name": "stat"}, "spec": {"size": 1},
           "status": {"ready": True}}
    r = cluster.create(f"{CRD_GROUP}/v1", crd, obj)
    assert r.status == 201 and "status" not in r.body
    r = cluster.patch(f"{CRD_GROUP}/v1", crd, "stat", {"status": {"ready": True}, "spec": {"size": 9}}, sub="status")
    assert r.status == 200, r.body
    assert r.body["status"] == {"ready": True} and r.body["spec"]["size"] == 1


def test_custom_resource_without_status_subresource_has_no_status_endpoint(cluster: Cluster, timeout: float):
    """Without subresources.status, /status is not served (404) and status is an ordinary field.
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#subresources"""
    plural = f"plains{cluster.tag.split('-')[1]}"
    assert cluster.create("apiextensions.k8s.io/v1", "customresourcedefinitions", _crd(cluster, plural, False),
                          namespaced=False).status == 201
    wait_for(lambda: _established(cluster, plural), timeout, "the CRD to be Established")
    kind = plural.capitalize()[:-1]
    obj = {"apiVersion": f"{CRD_GROUP}/v1", "kind": kind, "metadata": {"name": "p"}, "status": {"ready": True}}
    r = wait_for(lambda: (lambda r: r.status == 201 and r)(cluster.create(f"{CRD_GROUP}/v1", plural, obj)), timeout,
                 "the custom resource to be served")
    assert r.body["status"] == {"ready": True}
    assert cluster.patch(f"{CRD_GROUP}/v1", plural, "p", {"status": {"ready": False}}, sub="status").status == 404


def test_crd_name_must_be_plural_dot_group(cluster: Cluster):
    """A CRD's name must be <spec.names.plural>.<spec.group> (422 otherwise).
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#create-a-customresourcedefinition"""
    plural = f"misnamed{cluster.tag.split('-')[1]}s"
    crd = _crd(cluster, plural, False)
    crd["metadata"]["name"] = f"other.{CRD_GROUP}"
    r = cluster.create("apiextensions.k8s.io/v1", "customresourcedefinitions", crd, namespaced=False)
    assert r.status == 422, r.body
    assert "metadata.name" in r.message
