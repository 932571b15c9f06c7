"""What discovery says about each resource beyond its name: the short names and categories a real
kube-apiserver publishes (``kubectl get deploy``, ``kubectl get all``), and the resource types this
server adds to the shared built-in list (CertificateSigningRequests, CSIDrivers).

https://kubernetes.io/docs/reference/kubectl/#resource-types
"""

from __future__ import annotations

from runbooks_lib.kube.paths import ResourceType

SHORT_NAMES: dict[str, list[str]] = {
    "pods": ["po"], "services": ["svc"], "deployments": ["deploy"], "replicasets": ["rs"], "daemonsets": ["ds"],
    "statefulsets": ["sts"], "configmaps": ["cm"], "namespaces": ["ns"], "nodes": ["no"],
    "persistentvolumeclaims": ["pvc"], "persistentvolumes": ["pv"], "serviceaccounts": ["sa"], "endpoints": ["ep"],
    "events": ["ev"], "storageclasses": ["sc"], "certificatesigningrequests": ["csr"],
    "customresourcedefinitions": ["crd", "crds"], "horizontalpodautoscalers": ["hpa"], "cronjobs": ["cj"],
    "poddisruptionbudgets": ["pdb"], "networkpolicies": ["netpol"], "ingresses": ["ing"],
    "limitranges": ["limits"], "resourcequotas": ["quota"], "replicationcontrollers": ["rc"],
    "priorityclasses": ["pc"],
}
#: kube-apiserver's "all" category (what ``kubectl get all`` lists)
ALL = {"pods", "services", "deployments", "replicasets", "daemonsets", "statefulsets", "jobs", "cronjobs",
       "replicationcontrollers", "horizontalpodautoscalers"}
CATEGORIES: dict[str, list[str]] = {p: ["all"] for p in ALL} | {"customresourcedefinitions": ["api-extensions"],
                                                                "apiservices": ["api-extensions"]}

CSR = ResourceType("certificates.k8s.io", "v1", "certificatesigningrequests", "CertificateSigningRequest", False)
#: CSIDriver: what a CSI driver's install registers (cluster-scoped; nothing in the lab acts on it)
CSI_DRIVER = ResourceType("storage.k8s.io", "v1", "csidrivers", "CSIDriver", False)
EXTRA_TYPES = [CSR, CSI_DRIVER]
#: subresources beyond status: (plural) -> [(subresource, kind, verbs)]
SUBRESOURCES: dict[str, list[tuple[str, str, list[str]]]] = {
    "pods": [("exec", "PodExecOptions", ["create", "get"]), ("log", "Pod", ["get"]),
             ("eviction", "Eviction", ["create"])],
    "deployments": [("scale", "Scale", ["get", "patch", "update"])],
    "replicasets": [("scale", "Scale", ["get", "patch", "update"])],
    "statefulsets": [("scale", "Scale", ["get", "patch", "update"])],
    "certificatesigningrequests": [("approval", "CertificateSigningRequest", ["get", "patch", "update"])],
}
