"""Chapter-style: a 20-object set (Namespace, CRD + CRs, RBAC, config, workloads, Services, an
APIService) applied twice to the lab's API server; a broken object refused before any request;
then verified by watch, one check per expectation (issue 13 §1, done-when)."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import pytest

from runbooks_lib import kube
from runbooks_lib.kube import plan, verify
from runbooks_lib.kube.errors import ManifestInvalid
from runbooks_lib.kube.objects import ref_of
from runbooks_lib.lab.apiserver import ApiDouble
from runbooks_lib.run import Run

Obj = dict[str, Any]
NS = "shop"
PART = {"app.kubernetes.io/part-of": "shop"}


def _meta(name: str, namespaced: bool = True) -> Obj:
    return {"name": name, "labels": dict(PART), **({"namespace": NS} if namespaced else {})}


def _deploy(name: str, kind: str = "Deployment") -> Obj:
    labels = {"app": name}
    spec: Obj = {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
        "serviceAccountName": "shop", "containers": [{"name": name, "image": "registry.k8s.io/pause:3.9"}]}}}
    if kind == "Deployment":
        spec["replicas"] = 1
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": _meta(name), "spec": spec}


def _service(name: str, port: int) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name),
            "spec": {"selector": {"app": name}, "ports": [{"name": "https" if port == 443 else "http", "port": port,
                                                          "targetPort": port}]}}


CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": "carts.shop.example.com", "labels": dict(PART)},
       "spec": {"group": "shop.example.com", "scope": "Namespaced",
                "names": {"plural": "carts", "singular": "cart", "kind": "Cart", "listKind": "CartList"},
                "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                              "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                  "spec": {"type": "object", "required": ["items"],
                                           "properties": {"items": {"type": "integer", "minimum": 0}}},
                                  "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]}}
RULES = [{"apiGroups": ["shop.example.com"], "resources": ["carts"], "verbs": ["get", "list", "watch"]}]


def manifest_set() -> list[Obj]:
    """20 objects, deliberately out of order."""
    objs = [
        {"apiVersion": "shop.example.com/v1", "kind": "Cart", "metadata": _meta("c1"), "spec": {"items": 1}},
        {"apiVersion": "shop.example.com/v1", "kind": "Cart", "metadata": _meta("c2"), "spec": {"items": 0}},
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": _meta("v1alpha1.shop.example.com", False),
         "spec": {"group": "shop.example.com", "version": "v1alpha1", "groupPriorityMinimum": 1000,
                  "versionPriority": 15, "insecureSkipTLSVerify": True, "service": {"name": "api", "namespace": NS}}},
        _service("web", 80), _service("api", 443), _deploy("web"), _deploy("api"), _deploy("agent", "DaemonSet"),
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta("web"),
         "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": _meta("web"),
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                  "minReplicas": 1, "maxReplicas": 3}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("settings"), "data": {"currency": "EUR"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("features"), "data": {"beta": "false"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": _meta("db"), "stringData": {"password": "s3cret-value"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": _meta("shop"),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "shop"},
         "subjects": [{"kind": "ServiceAccount", "name": "shop", "namespace": NS}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _meta("shop"),
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": _meta("shop-carts", False),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "shop-carts"},
         "subjects": [{"kind": "ServiceAccount", "name": "shop", "namespace": NS}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": _meta("shop-carts", False),
         "rules": RULES},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("shop")},
        copy.deepcopy(CRD),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(NS, False)},
    ]
    random.Random(13).shuffle(objs)
    return objs


EXPECTED_ORDER = ["Namespace", "CustomResourceDefinition", "PodDisruptionBudget", "ServiceAccount", "Secret",
                  "ConfigMap", "ConfigMap", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service",
                  "Service", "DaemonSet", "Deployment", "Deployment", "HorizontalPodAutoscaler", "APIService",
                  "Cart", "Cart"]


def applied_paths(double: ApiDouble, since: int) -> list[str]:
    return [r.path for r in double.requests[since:] if r.verb == "apply" and "dryRun=All" not in r.query]


def test_twenty_objects_apply_in_order_then_a_second_apply_changes_nothing(
        kube_apply_run: Run, api_double: tuple[Path, str, ApiDouble]) -> None:
    double, run = api_double[2], kube_apply_run
    kc = kube.connect(run)
    objs = manifest_set()
    assert len(objs) == 20

    broken = copy.deepcopy(objs)
    cart = next(o for o in broken if o["kind"] == "Cart")
    cart["spec"]["items"] = "many"
    mark = len(double.requests)
    with pytest.raises(ManifestInvalid, match=r"Cart shop/c\d: spec.items: 'many' is not of type 'integer'"):
        plan.plan(kc, broken)
    assert len(double.requests) == mark  # refused before any request

    first = plan.plan(kc, objs)
    assert [c.ref.kind for c in first.changes] == EXPECTED_ORDER
    assert [c.action for c in first.changes] == ["create"] * 20
    assert not [r for r in double.requests[mark:] if r.verb != "get" and "dryRun=All" not in r.query
                and r.verb not in ("list",)], "plan wrote something"
    mark = len(double.requests)
    plan.apply(kc, first, crd_timeout=5)
    first.record(run)
    assert [c.describe() for c in first.changes if not c.applied] == []
    order_seen = [ref_of(c.object).kind for c in first.changes]
    assert order_seen == EXPECTED_ORDER
    assert len(applied_paths(double, mark)) == 20

    mark = len(double.requests)
    second = plan.apply(kc, plan.plan(kc, manifest_set()), crd_timeout=5)
    assert [c.action for c in second.changes] == ["unchanged"] * 20
    assert applied_paths(double, mark) == []

    results = verify.wait_all(kc, [verify.established("carts.shop.example.com"),
                                   verify.rollout_complete("Deployment", "web", NS),
                                   verify.rollout_complete("DaemonSet", "agent", NS),
                                   verify.apiservice_available("v1alpha1.shop.example.com")], timeout=30)
    assert [r.status for r in results] == ["pass"] * 4, [r.detail for r in results]

    cart = verify.status_field("Cart", "c1", NS, "status.phase", "Open", api_version="shop.example.com/v1")
    assert verify.wait(kc, cart, timeout=1).status == "fail"  # no controller writes it: not within 1 s
    kc.request("PATCH", f"/apis/shop.example.com/v1/namespaces/{NS}/carts/c1/status", body={"status": {"phase": "Open"}},
               content_type="application/merge-patch+json", query={"fieldManager": "cart-controller"})
    assert verify.wait(kc, cart, timeout=5).ok


def test_the_set_without_custom_resources_applies_in_order_now(kube_apply_run: Run,
                                                               api_double: tuple[Path, str, ApiDouble]) -> None:
    """The 17 built-in objects of the set, which the lab serves today: created in order, twice idempotent,
    then rollouts and the APIService verified by watch (one record each)."""
    double, run = api_double[2], kube_apply_run
    kc = kube.connect(run)
    objs = [o for o in manifest_set() if o["kind"] not in ("Cart", "CustomResourceDefinition")]
    mark = len(double.requests)
    first = plan.apply(kc, plan.plan(kc, objs))
    assert [c.action for c in first.changes] == ["create"] * 17 and all(c.applied for c in first.changes)
    kinds = [p.split("/")[-2] for p in applied_paths(double, mark)]
    assert kinds[:3] == ["namespaces", "poddisruptionbudgets", "serviceaccounts"] and kinds[-1] == "apiservices"
    second = plan.apply(kc, plan.plan(kc, objs))
    assert [c.action for c in second.changes] == ["unchanged"] * 17
    before = len(run.recorder.records)
    results = verify.wait_all(kc, [verify.rollout_complete("Deployment", "web", NS),
                                   verify.rollout_complete("DaemonSet", "agent", NS),
                                   verify.apiservice_available("v1alpha1.shop.example.com")], timeout=30)
    assert [r.status for r in results] == ["pass"] * 3, [r.detail for r in results]
    assert len(run.recorder.records) - before == 3
    assert "s3cret-value" not in "".join(r.stdout + r.stderr + str(r.extra) for r in run.recorder.records)
