"""The desired metrics-server objects: the operator's manifest with the image mirror and the argument
patches (added to the manifest's arguments, never replacing them), and what is installed now."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...kube import patches, sources
from . import compat
from .settings import Settings

Obj = dict[str, Any]


@dataclass
class Desired:
    objects: list[Obj]
    origin: str
    image: str
    manifest_args: list[str]  # the manifest's own arguments (the defaults the installed ones are compared with)
    args: list[str]           # after the patches
    replicas: int
    notes: list[str] = field(default_factory=list)


@dataclass
class Installed:
    image: str
    args: list[str]
    replicas: int
    ready_replicas: int


def _container(dep: Obj) -> Obj:
    cs = dep["spec"]["template"]["spec"].get("containers") or [{}]
    return next((c for c in cs if c.get("name") == "metrics-server"), cs[0])


def installed(dep: Obj | None) -> Installed | None:
    if dep is None:
        return None
    c = _container(dep)
    return Installed(c.get("image", ""), list(c.get("args") or []) + list(c.get("command") or [])[1:],
                     int(dep["spec"].get("replicas", 1)), int((dep.get("status") or {}).get("readyReplicas") or 0))


def load(s: Settings, kubernetes_version: str) -> Desired | None:
    """None without a manifest parameter; SourceError/PatchError when it cannot be read or patched."""
    if s.manifest:
        objs, origin = sources.from_file(s.manifest), s.manifest
    elif s.manifest_url and s.manifest_sha256:
        objs, origin = sources.from_url(s.manifest_url, s.manifest_sha256), s.manifest_url
    else:
        return None
    deps = [o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == s.deployment]
    if len(deps) != 1:
        raise patches.PatchError(f"{origin}: {len(deps)} Deployment(s) named {s.deployment} (needs exactly one)")
    dep = deps[0]
    c = _container(dep)
    own = list(c.get("args") or [])
    notes = []
    wanted = [a for a in own if a != compat.INSECURE or s.kubelet_insecure_tls]
    if len(wanted) != len(own):
        notes.append(f"the manifest's {compat.INSECURE} removed: secure mode (kubelet_insecure_tls is false)")
    extra = s.extra_args + ([compat.INSECURE] if s.kubelet_insecure_tls else [])
    args = compat.add_args(wanted, extra)
    image = compat.mirrored(c.get("image", ""), s.image_mirror)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": c["name"], "image": image, "args": args}]}}}}
    ns = dep["metadata"].get("namespace") or s.namespace
    objs = patches.apply_patches(objs, [patches.Patch("Deployment", s.deployment, patch, namespace=ns)],
                                 kubernetes_version)
    return Desired(objs, origin, image, own, args, int(dep["spec"].get("replicas", 1)), notes)
