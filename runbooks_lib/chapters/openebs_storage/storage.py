"""StorageClasses, their provisioners and binding modes, and why a PVC is Pending (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
DEFAULT_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
OPENEBS_PROVISIONERS = {
    "openebs.io/local": "LocalPV hostpath/device",
    "cstor.csi.openebs.io": "cStor (legacy)",
    "jiva.csi.openebs.io": "Jiva (legacy)",
    "io.openebs.csi-mayastor": "Mayastor",
    "local.csi.openebs.io": "LocalPV LVM",
    "zfs.csi.openebs.io": "LocalPV ZFS",
}


@dataclass
class ClassInfo:
    name: str
    provisioner: str
    binding: str
    reclaim: str
    default: bool
    engine: str
    parameters: dict[str, str]

    def row(self) -> dict[str, Any]:
        return {"class": self.name, "provisioner": self.provisioner, "engine": self.engine,
                "binding": self.binding, "reclaim": self.reclaim, "default": self.default}


def class_info(sc: Obj) -> ClassInfo:
    ann = (sc.get("metadata") or {}).get("annotations") or {}
    prov = str(sc.get("provisioner", ""))
    return ClassInfo(sc["metadata"]["name"], prov, str(sc.get("volumeBindingMode") or "Immediate"),
                     str(sc.get("reclaimPolicy") or "Delete"), ann.get(DEFAULT_ANNOTATION) == "true",
                     OPENEBS_PROVISIONERS.get(prov, "other"), {k: str(v) for k, v in (sc.get("parameters") or {}).items()})


def default_classes(classes: list[ClassInfo]) -> tuple[str, str]:
    """(status, detail) about the default class: none (info), one (pass), several (warn)."""
    defaults = [c.name for c in classes if c.default]
    if not defaults:
        return "info", "no default StorageClass: PVCs must name storageClassName"
    if len(defaults) > 1:
        return "warn", f"several default StorageClasses ({', '.join(defaults)}): the newest wins (1.26+), pick one"
    return "pass", f"default StorageClass {defaults[0]}"


def consumers(pvc: Obj, pods: list[Obj]) -> list[Obj]:
    """Pods in the PVC's namespace that mount it."""
    ns, name = pvc["metadata"].get("namespace"), pvc["metadata"]["name"]
    out = []
    for p in pods:
        if p["metadata"].get("namespace") != ns:
            continue
        vols = (p.get("spec") or {}).get("volumes") or []
        if any((v.get("persistentVolumeClaim") or {}).get("claimName") == name for v in vols):
            out.append(p)
    return out


def diagnose_pending(pvc: Obj, classes: dict[str, ClassInfo], pods: list[Obj], *, lab: bool,
                     scheduled: set[str] | None = None) -> tuple[str, str]:
    """(status, why) for a Pending PVC. WaitForFirstConsumer without a consumer is expected (info).
    A consumer that has ``nodeName`` but was not placed by the scheduler (no ``Scheduled`` event in
    ``scheduled``, and the PVC has no ``volume.kubernetes.io/selected-node``, which the scheduler's
    volume binding sets) bypassed it, so the PVC never binds (fail)."""
    spec = pvc.get("spec") or {}
    cls_name = spec.get("storageClassName")
    sc = classes.get(cls_name or "")
    if sc is None:
        return "fail", f"StorageClass {cls_name!r} does not exist" if cls_name else "no storageClassName and no default"
    users = consumers(pvc, pods)
    if sc.binding == "WaitForFirstConsumer":
        if not users:
            return "info", (f"{sc.name} binds WaitForFirstConsumer: Pending until a pod using it is scheduled "
                            "(not a failure)")
        selected = ((pvc.get("metadata") or {}).get("annotations") or {}).get(SELECTED_NODE)
        pinned = [p["metadata"]["name"] for p in users if (p.get("spec") or {}).get("nodeName")
                  and not selected and p["metadata"]["name"] not in (scheduled or set())]
        if pinned:
            return "fail", (f"pod {', '.join(pinned)} sets nodeName: the scheduler is bypassed, so a "
                            "WaitForFirstConsumer PVC never binds — use a nodeSelector on kubernetes.io/hostname")
    if lab:
        return "n/a in lab", (f"no provisioner answers in the lab API server ({sc.provisioner} is not running): "
                              "binding is not modelled, not passed")
    return "fail", f"Pending with a consumer: provisioner {sc.provisioner} has not provisioned (see its logs/events)"
