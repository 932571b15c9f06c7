"""What apply changes, and the reads HPA readiness needs: CSR approval, serverTLSBootstrap in the
kubelet-config ConfigMap and a node's kubelet config (kubelet restarted), the pods under an HPA's target."""

from __future__ import annotations

import shlex
from typing import Any

import yaml

from ...kube import KubeClient
from ...kube.write import ConfigMapChange
from ...transport.base import CommandFailed, Transport
from . import tls

CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


def approve(kc: KubeClient, name: str, reason: str) -> None:
    """Approve one CSR through its /approval subresource (as ``kubectl certificate approve`` does)."""
    csr = kc.request("GET", f"{CSR_PATH}/{name}").data
    conds = (csr.setdefault("status", {})).setdefault("conditions", [])
    conds.append({"type": "Approved", "status": "True", "reason": "RunbooksKubeletServingApprove",
                  "message": f"approved by k8s-runbooks chapter 05: {reason}"})
    kc.request("PUT", f"{CSR_PATH}/{name}/approval", body=csr)


def with_bootstrap(config_text: str) -> str:
    """The KubeletConfiguration with ``serverTLSBootstrap: true`` (the rest kept as parsed)."""
    doc = yaml.safe_load(config_text) or {}
    doc["serverTLSBootstrap"] = True
    return yaml.safe_dump(doc, sort_keys=False)


def configmap_bootstrap(kc: KubeClient, *, dry_run: bool) -> ConfigMapChange | None:
    """serverTLSBootstrap in kube-system/kubelet-config (key ``kubelet``, as kubeadm writes it), so nodes
    joined later get it too; None when there is no such ConfigMap."""
    cm = kc.get_or_none("ConfigMap", "kubelet-config", "kube-system")
    text = ((cm or {}).get("data") or {}).get("kubelet")
    if text is None:
        return None
    if tls.server_tls_bootstrap(text):
        return ConfigMapChange("kubelet-config", "kube-system", "kubelet", text, text, False, dry_run, "")
    return kc.patch_configmap_key("kubelet-config", "kube-system", "kubelet", with_bootstrap(text), dry_run=dry_run)


def enable_bootstrap(t: Transport, config_text: str) -> str:
    """Write the node's kubelet config with serverTLSBootstrap (backup kept) and restart kubelet."""
    path = tls.KUBELET_CONFIG
    backup = f"{path}.runbooks-bak"
    t.run(f"cp -p {shlex.quote(path)} {shlex.quote(backup)}", sudo=True, display=f"backup {path}")
    res = t.write_file(path, with_bootstrap(config_text), mode="0644")
    if not res.ok:
        raise CommandFailed(res)
    restart = t.run("systemctl restart kubelet", sudo=True, timeout=60)
    if not restart.ok:
        raise CommandFailed(restart)
    return f"{path} written, backup {backup}"


def target_pods(kc: KubeClient, hpa: dict[str, Any]) -> list[dict[str, Any]]:
    """The pods the HPA's scale target selects (its spec.selector.matchLabels)."""
    ns = hpa["metadata"].get("namespace")
    ref = hpa["spec"]["scaleTargetRef"]
    target = kc.get_or_none(ref["kind"], ref["name"], ns, ref.get("apiVersion"))
    labels = ((target or {}).get("spec") or {}).get("selector", {}).get("matchLabels") or {}
    if not labels:
        return []
    return kc.list_objects("Pod", ns, label_selector=",".join(f"{k}={v}" for k, v in sorted(labels.items())))


def pod_metrics_within(kc: KubeClient, namespace: str, pods: list[str], deadline_s: float,
                       every_s: float = 5.0) -> dict[str, dict[str, Any] | None]:
    """PodMetrics of ``pods`` (None where none came) read every ``every_s`` until all are there or
    ``deadline_s`` passes: the Metrics API has no watch, so this is upstream e2e's bounded poll."""
    import time

    from ...kube import KubeNotFound

    got: dict[str, dict[str, Any] | None] = dict.fromkeys(pods)
    end = time.monotonic() + deadline_s
    while True:
        for name in [p for p, v in got.items() if v is None]:
            try:
                got[name] = kc.raw_get(f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/{name}")
            except KubeNotFound:
                continue
        if all(got.values()) or time.monotonic() >= end:
            return got
        time.sleep(min(every_s, max(0.0, end - time.monotonic())))


def consumer_pod(kc: KubeClient, namespace: str, app: str) -> str | None:
    pods = kc.list_objects("Pod", namespace, label_selector=f"app.kubernetes.io/name={app}")
    return pods[0]["metadata"]["name"] if pods else None
