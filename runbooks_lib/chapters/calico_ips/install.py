"""Install from the operator's calico.yaml: the pool CIDR set to the pod subnet and the images
moved to a mirror, as offline patches on the objects layer (desired state, no requests)."""

from __future__ import annotations

from typing import Any

from ...kube import patches, sources, verify
from . import parse
from .settings import Settings

Obj = dict[str, Any]
WORKLOADS = ("DaemonSet", "Deployment")


def mirrored(image: str, mirror: str) -> str:
    """``docker.io/calico/node:v3.28.1`` -> ``<mirror>/node:v3.28.1`` (the repository's last part kept)."""
    return f"{mirror.rstrip('/')}/{image.rsplit('/', 1)[-1]}"


def desired(run: Any, s: Settings, pod_subnet: str | None, server_version: str) -> tuple[list[Obj], list[str]]:
    """The manifest's objects with the patches applied, and one note per patch decision."""
    if s.manifest:
        objs = sources.from_file(s.manifest)
    else:
        objs = sources.from_url(str(s.manifest_url), str(s.manifest_sha256), recorder=run.recorder)
    notes: list[str] = []
    todo: list[patches.Patch] = []
    node = [o for o in objs if o["kind"] == "DaemonSet" and o["metadata"]["name"] == "calico-node"]
    if pod_subnet and node:
        todo.append(patches.Patch("DaemonSet", "calico-node", {"spec": {"template": {"spec": {"containers": [
            {"name": "calico-node", "env": [{"name": "CALICO_IPV4POOL_CIDR", "value": pod_subnet}]}]}}}},
            namespace=node[0]["metadata"].get("namespace")))
        notes.append(f"CALICO_IPV4POOL_CIDR set to the pod subnet {pod_subnet}")
    elif node:
        notes.append("pod subnet unknown (no kubeadm-config, no calico_ips.pod_subnet): CALICO_IPV4POOL_CIDR "
                     "left as the manifest has it")
    if s.image_mirror:
        moved = 0
        for o in objs:
            if o["kind"] not in WORKLOADS:
                continue
            pod = o["spec"]["template"]["spec"]
            patch: dict[str, Any] = {}
            for key in ("initContainers", "containers"):
                items = [{"name": c["name"], "image": mirrored(c["image"], s.image_mirror)}
                         for c in pod.get(key) or []]
                moved += len(items)
                if items:
                    patch[key] = items
            if patch:
                todo.append(patches.Patch(o["kind"], o["metadata"]["name"], {"spec": {"template": {"spec": patch}}},
                                          namespace=o["metadata"].get("namespace")))
        notes.append(f"{moved} image reference(s) moved to {s.image_mirror}")
    version = ".".join(map(str, parse.minor(server_version) or (1, 30)))
    return patches.apply_patches(objs, todo, version), notes


def expectations(objs: list[Obj]) -> list[verify.Expectation | verify.ExecExpectation]:
    return [verify.rollout_complete(o["kind"], o["metadata"]["name"], o["metadata"].get("namespace", "default"))
            for o in objs if o["kind"] in WORKLOADS]
