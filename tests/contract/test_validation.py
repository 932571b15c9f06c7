"""Field validation, names, dryRun. Every case runs against the lab or a real cluster (see conftest)."""

from __future__ import annotations

import pytest

from contract.conftest import Cluster

pytestmark = pytest.mark.contract


def _cm(name: str, **extra: object) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}, **extra}


def test_unknown_field_strict_is_refused(cluster: Cluster):
    """fieldValidation=Strict: an unknown field fails the request with 400.
    https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation"""
    r = cluster.create("v1", "configmaps", _cm(cluster.name("strict"), bogus=1), fieldValidation="Strict")
    assert r.status == 400, r.body
    assert 'unknown field "bogus"' in r.message
    assert cluster.get("v1", "configmaps", cluster.name("strict")).status == 404


def test_unknown_field_warn_is_dropped_with_a_warning(cluster: Cluster):
    """Warn (the default since v1.23): the field is dropped and a Warning header names it.
    https://kubernetes.io/docs/reference/using-api/api-concepts/#setting-the-field-validation-level"""
    r = cluster.create("v1", "configmaps", _cm(cluster.name("warn"), bogus=1))
    assert r.status == 201, r.body
    assert "bogus" not in r.body
    assert any(w.startswith("299 ") and 'unknown field \\"bogus\\"' in w for w in r.warnings), r.headers
    assert "bogus" not in cluster.get("v1", "configmaps", cluster.name("warn")).body


def test_unknown_field_ignore_is_dropped_silently(cluster: Cluster):
    """Ignore: the field is dropped, no warning.
    https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation"""
    r = cluster.create("v1", "configmaps", _cm(cluster.name("ignore"), bogus=1), fieldValidation="Ignore")
    assert r.status == 201, r.body
    assert "bogus" not in r.body
    assert not [w for w in r.warnings if "unknown field" in w]


def test_nested_unknown_field_is_named_by_its_path(cluster: Cluster):
    """Unknown fields are found at any depth and reported by their path.
    https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation"""
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": cluster.name("nested")},
           "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "n"}}, "bogusSpec": True,
                    "template": {"metadata": {"labels": {"app": "n"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    r = cluster.create("apps/v1", "deployments", dep, fieldValidation="Strict")
    assert r.status == 400
    assert 'unknown field "spec.bogusSpec"' in r.message


def test_missing_required_field_is_422(cluster: Cluster):
    """A Deployment needs spec.selector: 422 Invalid, "Required value".
    https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/#DeploymentSpec"""
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": cluster.name("nosel")},
           "spec": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    r = cluster.create("apps/v1", "deployments", dep)
    assert r.status == 422, r.body
    assert "spec.selector" in r.message and "Required value" in r.message


def test_wrong_type_is_refused(cluster: Cluster):
    """ConfigMap data values are strings; a number cannot be decoded (400).
    https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/config-map-v1/"""
    r = cluster.create("v1", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                            "metadata": {"name": cluster.name("type")}, "data": {"a": 1}})
    assert r.status == 400, r.body


@pytest.mark.parametrize(("api", "plural", "namespaced", "bad"), [
    ("v1", "configmaps", True, "Bad_Name"),          # RFC 1123 subdomain
    ("v1", "namespaces", False, "contract.dotted"),  # RFC 1123 label
    ("v1", "services", True, "1starts-with-digit"),  # RFC 1035 label
])
def test_names_are_validated_per_kind(cluster: Cluster, api: str, plural: str, namespaced: bool, bad: str):
    """Object names: most kinds take an RFC 1123 subdomain, Namespaces an RFC 1123 label, Services an
    RFC 1035 label; anything else is 422 on metadata.name.
    https://kubernetes.io/docs/concepts/overview/working-with-objects/names/"""
    kind = {"configmaps": "ConfigMap", "namespaces": "Namespace", "services": "Service"}[plural]
    obj: dict = {"apiVersion": api, "kind": kind, "metadata": {"name": bad}}
    if plural == "services":
        obj["spec"] = {"ports": [{"port": 80}]}
    r = cluster.request("POST", cluster.path(api, plural, namespaced=namespaced), obj)
    assert r.status == 422, r.body
    assert "metadata.name" in r.message


def test_dry_run_value_other_than_all_is_refused(cluster: Cluster):
    """dryRun accepts only "All"; anything else is refused and nothing is stored.
    https://kubernetes.io/docs/reference/using-api/api-concepts/#dry-run"""
    r = cluster.create("v1", "configmaps", _cm(cluster.name("bogusdry")), dryRun="Bogus")
    assert r.status in (400, 422), r.body
    assert "dryRun" in r.message
    assert cluster.get("v1", "configmaps", cluster.name("bogusdry")).status == 404


def test_dry_run_all_is_never_persisted(cluster: Cluster):
    """dryRun=All: the answer is what would be stored; nothing is, neither on create nor on update.
    https://kubernetes.io/docs/reference/using-api/api-concepts/#dry-run"""
    name = cluster.name("dry")
    r = cluster.create("v1", "configmaps", _cm(name), dryRun="All")
    assert r.status == 201 and r.body["data"] == {"a": "1"}
    assert cluster.get("v1", "configmaps", name).status == 404
    assert cluster.create("v1", "configmaps", _cm(name)).status == 201
    r = cluster.patch("v1", "configmaps", name, {"data": {"a": "2"}}, dryRun="All")
    assert r.status == 200 and r.body["data"] == {"a": "2"}
    assert cluster.get("v1", "configmaps", name).body["data"] == {"a": "1"}
