"""The seed's network verification (集群验证): the net-tools DaemonSet and the probes run in each
of its pods, as a node × probe matrix."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
NAME = "net-tools"

#: (probe name, argv) run in every net-tools pod; the seed's two plus DNS
PROBES: list[tuple[str, list[str]]] = [
    ("nc -vz kubernetes 443", ["nc", "-vz", "-w", "5", "kubernetes", "443"]),
    ("curl -k https://kubernetes", ["curl", "-k", "-sS", "-m", "5", "-o", "/dev/null", "https://kubernetes"]),
    ("dns kubernetes.default", ["nslookup", "kubernetes.default"]),
]


def daemonset(image: str, namespace: str, run_label: dict[str, str]) -> Obj:
    """The seed's DaemonSet: tolerations for every node, a sleeping shell, small resources."""
    labels = {"k8s-app": NAME}
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": NAME, "namespace": namespace, "labels": {**labels, **run_label}},
            "spec": {"selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": {**labels, **run_label}}, "spec": {
                         "tolerations": [{"effect": "NoSchedule", "operator": "Exists"},
                                         {"key": "CriticalAddonsOnly", "operator": "Exists"},
                                         {"effect": "NoExecute", "operator": "Exists"}],
                         "containers": [{"name": NAME, "image": image,
                                         "command": ["/bin/sh", "-c", "set -e -x; tail -f /dev/null"],
                                         "resources": {"limits": {"memory": "30Mi"},
                                                       "requests": {"cpu": "50m", "memory": "20Mi"}}}],
                         "dnsConfig": {"options": [{"name": "single-request-reopen"}]}}}}}


def pair_probe(ip: str) -> list[str]:
    """Pod-to-pod: one ICMP echo to another node's net-tools pod."""
    return ["ping", "-c", "1", "-W", "2", ip]
