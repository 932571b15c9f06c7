"""The lab's image catalogue: published as a ConfigMap, extendable at start and by editing it."""

from __future__ import annotations

import time
from pathlib import Path

import kubernetes

from runbooks_lib.lab.apiserver import ApiDouble
from runbooks_lib.lab.apiserver.catalogue import NAME, NAMESPACE, normalize


def _phase_and_reason(core: kubernetes.client.CoreV1Api, name: str, want: str, timeout: float = 5) -> str:
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        pod = core.read_namespaced_pod(name, "default")
        waiting = [s.state.waiting.reason for s in pod.status.container_statuses or [] if s.state.waiting]
        seen = f"{pod.status.phase}/{','.join(waiting)}"
        if want in seen:
            return seen
        time.sleep(0.1)
    return seen


def _pod(name: str, image: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": image}]}}


def test_images_given_at_start_and_added_to_the_configmap_run(tmp_path: Path):
    with ApiDouble(pod_ready_s=0.1, images=["quay.io/example/tool:1.0"]) as d:
        core = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(
            str(d.write_kubeconfig(tmp_path / "kc"))))
        listed = core.read_namespaced_config_map(NAME, NAMESPACE).data["images"].splitlines()
        assert "quay.io/example/tool:1.0" in listed and "busybox:1.36" in listed
        core.create_namespaced_pod("default", _pod("given", "quay.io/example/tool:1.0"))
        core.create_namespaced_pod("default", _pod("later", "ghcr.io/example/other:2"))
        assert _phase_and_reason(core, "given", "Running").startswith("Running")
        assert "ErrImagePull" in _phase_and_reason(core, "later", "ErrImagePull")
        assert "ImagePullBackOff" in _phase_and_reason(core, "later", "ImagePullBackOff")
        core.patch_namespaced_config_map(NAME, NAMESPACE, {"data": {"images": "\n".join(listed + ["ghcr.io/example/other:2"])}})
        core.delete_namespaced_pod("later", "default")
        core.create_namespaced_pod("default", _pod("later", "ghcr.io/example/other:2"))
        assert _phase_and_reason(core, "later", "Running").startswith("Running")


def test_image_references_are_normalised():
    assert normalize("busybox") == "busybox:latest"
    assert normalize("docker.io/library/busybox:1.36") == "busybox:1.36"
    assert normalize("registry.k8s.io/pause@sha256:abc") == "registry.k8s.io/pause@sha256:abc"
