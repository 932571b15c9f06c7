"""The lab's users go through RBAC: the viewer's rights come from its seeded ClusterRoleBinding and
change when bindings do (https://kubernetes.io/docs/reference/access-authn-authz/rbac/)."""

from __future__ import annotations

from pathlib import Path

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

from runbooks_lib.lab.apiserver import VIEWER_USER, ApiDouble


def _clients(kubeconfig: Path) -> tuple[kubernetes.client.ApiClient, kubernetes.client.ApiClient]:
    admin = kubernetes.config.new_client_from_config(str(kubeconfig))
    viewer = kubernetes.config.new_client_from_config(str(kubeconfig), context=f"{VIEWER_USER}@runbooks-api-double")
    return admin, viewer


def _can(client: kubernetes.client.ApiClient, verb: str, resource: str, namespace: str = "default") -> bool:
    review = kubernetes.client.AuthorizationV1Api(client).create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"verb": verb, "resource": resource, "namespace": namespace}}})
    return bool(review.status.allowed)


def test_viewer_rights_come_from_rbac_objects(api_double: tuple[Path, str, ApiDouble]):
    kubeconfig, _url, _d = api_double
    admin, viewer = _clients(kubeconfig)
    assert _can(viewer, "list", "pods") and not _can(viewer, "list", "secrets") and not _can(viewer, "create", "pods")
    assert _can(admin, "delete", "secrets")
    with pytest.raises(ApiException) as refused:
        kubernetes.client.CoreV1Api(viewer).create_namespaced_config_map("default", {"metadata": {"name": "v"}})
    assert refused.value.status == 403 and VIEWER_USER in refused.value.body
    rbac = kubernetes.client.RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role("default", {"metadata": {"name": "cm-writer"}, "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}]})
    rbac.create_namespaced_role_binding("default", {
        "metadata": {"name": "cm-writer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-writer"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": VIEWER_USER}]})
    assert _can(viewer, "create", "configmaps") and not _can(viewer, "create", "configmaps", "kube-system")
    kubernetes.client.CoreV1Api(viewer).create_namespaced_config_map("default", {"metadata": {"name": "v"}})
    rbac.delete_cluster_role_binding(VIEWER_USER)
    assert not _can(viewer, "list", "pods")
