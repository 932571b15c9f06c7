"""The lab's image catalogue: the images a lab pod can pull. Published as the ConfigMap
``kube-public/lab-image-catalogue`` (key ``images``, one reference a line); a pod whose image is not
in it gets ErrImagePull, then ImagePullBackOff, as on a node that cannot pull it.
https://kubernetes.io/docs/concepts/containers/images/#imagepullbackoff
"""

from __future__ import annotations

from .errors import Obj

NAMESPACE, NAME, KEY = "kube-public", "lab-image-catalogue", "images"

#: besides the seeded cluster's own images: what chapters and tests run
EXTRA_IMAGES = ["busybox:1.36", "busybox:1.37", "nginx:1.27", "nginx:1.28", "registry.k8s.io/pause:3.9",
                "registry.k8s.io/pause:3.10", "registry.k8s.io/e2e-test-images/agnhost:2.47"]


def normalize(image: str) -> str:
    """``busybox`` and ``docker.io/library/busybox:latest`` name the same image."""
    ref = image.strip()
    if "@" not in ref and ":" not in ref.rsplit("/", 1)[-1]:
        ref += ":latest"
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix):]
            break
    return ref


def configmap(seeded: list[Obj], extra: list[str] | None = None) -> Obj:
    images = {c["image"] for o in seeded if o["kind"] in ("Pod", "DaemonSet", "Deployment")
              for c in (o["spec"].get("template", {}).get("spec") or o["spec"]).get("containers", [])}
    lines = sorted({normalize(i) for i in images | set(EXTRA_IMAGES) | set(extra or [])})
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"app.kubernetes.io/part-of": "runbooks-lab"}},
            "data": {KEY: "\n".join(lines) + "\n"}}


def images(cm: Obj | None) -> set[str]:
    text = ((cm or {}).get("data") or {}).get(KEY, "")
    return {normalize(line) for line in text.splitlines() if line.strip() and not line.startswith("#")}
