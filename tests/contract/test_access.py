"""RBAC and access reviews."""

from __future__ import annotations

import pytest

from contract.conftest import Cluster

pytestmark = pytest.mark.contract
RBAC = "rbac.authorization.k8s.io/v1"


def _sar(cluster: Cluster, user: str, verb: str, resource: str, namespace: str) -> bool:
    r = cluster.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": ["system:authenticated"],
                 "resourceAttributes": {"namespace": namespace, "verb": verb, "resource": resource}}})
    assert r.status == 201, r.body
    return bool(r.body["status"]["allowed"])


def test_self_subject_access_review_answers_for_the_caller(cluster: Cluster):
    """SelfSubjectAccessReview: may I? Answered for the caller (here a cluster admin).
    https://kubernetes.io/docs/reference/access-authn-authz/authorization/#checking-api-access"""
    r = cluster.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": cluster.ns, "verb": "create", "resource": "pods"}}})
    assert r.status == 201, r.body
    assert r.body["status"]["allowed"] is True


def test_role_binding_grants_only_its_rules_in_its_namespace(cluster: Cluster):
    """A Role bound to a user by a RoleBinding allows its verbs on its resources in that namespace only.
    https://kubernetes.io/docs/reference/access-authn-authz/rbac/#role-and-clusterrole"""
    user = cluster.name("reader")
    assert not _sar(cluster, user, "get", "configmaps", cluster.ns)
    role = {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "cm-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}
    binding = {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "cm-reader"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}
    assert cluster.create(RBAC, "roles", role).status == 201
    assert cluster.create(RBAC, "rolebindings", binding).status == 201
    assert _sar(cluster, user, "get", "configmaps", cluster.ns)
    assert not _sar(cluster, user, "delete", "configmaps", cluster.ns)
    assert not _sar(cluster, user, "get", "secrets", cluster.ns)
    assert not _sar(cluster, user, "get", "configmaps", "kube-system")


def test_cluster_role_through_a_role_binding_is_namespaced(cluster: Cluster):
    """A RoleBinding may reference a ClusterRole: its rules then apply in the binding's namespace only.
    https://kubernetes.io/docs/reference/access-authn-authz/rbac/#rolebinding-example"""
    user = cluster.name("podwatcher")
    crole = {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": cluster.name("pod-watch")},
             "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["watch"]}]}
    assert cluster.create(RBAC, "clusterroles", crole, namespaced=False).status == 201
    binding = {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "pod-watch"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": cluster.name("pod-watch")},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}
    assert cluster.create(RBAC, "rolebindings", binding).status == 201
    assert _sar(cluster, user, "watch", "pods", cluster.ns)
    assert not _sar(cluster, user, "watch", "pods", "default")


def test_cluster_role_binding_grants_everywhere(cluster: Cluster):
    """A ClusterRoleBinding grants a ClusterRole's rules in every namespace.
    https://kubernetes.io/docs/reference/access-authn-authz/rbac/#clusterrolebinding-example"""
    user = cluster.name("lister")
    crole = {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": cluster.name("svc-list")},
             "rules": [{"apiGroups": [""], "resources": ["services"], "verbs": ["list"]}]}
    crb = {"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": cluster.name("svc-list")},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster.name("svc-list")},
           "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}
    assert cluster.create(RBAC, "clusterroles", crole, namespaced=False).status == 201
    assert cluster.create(RBAC, "clusterrolebindings", crb, namespaced=False).status == 201
    assert _sar(cluster, user, "list", "services", "default")
    assert _sar(cluster, user, "list", "services", cluster.ns)
    assert not _sar(cluster, user, "create", "services", "default")
