"""Versions decide: the installed OpenEBS release (from Helm's release Secret) and what it can do.

OpenEBS 4.x (chart openebs/openebs, repo https://openebs.github.io/openebs) ships LocalPV hostpath,
LVM, ZFS and Mayastor; cStor, Jiva, NDM and device LocalPV were archived (openebs/openebs#3709) and
are in no 4.x chart, so the seed's ``--set cstor.enabled=true`` silently does nothing there. The 4.x
chart enables Mayastor, LVM and ZFS by default (openebs/openebs#3887: crash loops on small nodes).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from ...kube.helm import HelmRelease
from .settings import Settings

REPO_4X = "https://openebs.github.io/openebs"
REPO_CSTOR = "https://openebs.github.io/cstor-operators"
#: values for a hostpath-only 4.x install (the chart README's own example turns Mayastor off)
HOSTPATH_ONLY = {"engines.replicated.mayastor.enabled": "false", "engines.local.lvm.enabled": "false",
                 "engines.local.zfs.enabled": "false"}
WAYS_FORWARD = ("(1) a legacy trial of the pinned 3.x cStor chart (openebs-cstor/cstor {cstor}, with NDM) — "
                "engine=cstor-legacy, apply with confirm, archived code with no support on current Kubernetes; "
                "(2) Mayastor (Replicated PV, the 4.x replacement): engine=mayastor — needs 2 MiB hugepages, "
                "nvme-tcp and kernel >= 5.13 on the storage nodes")


def major(version: str) -> int | None:
    """3 for "3.10.0", 4 for "v4.6.1"; None when not a version."""
    head = version.lstrip("v").split(".", 1)[0]
    return int(head) if head.isdigit() else None


def _dig(values: dict[str, Any], dotted: str) -> Any:
    cur: Any = values
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


@dataclass
class Decision:
    """What the installed release means for the chosen engine: one status, why, and next steps."""

    status: str
    detail: str
    notes: list[str] = field(default_factory=list)  # extra warn-level findings (silent no-ops, traps)


def describe(rel: HelmRelease | None) -> str:
    if rel is None:
        return "no OpenEBS release installed"
    return (f"release {rel.namespace}/{rel.name} revision {rel.revision} ({rel.status}): chart {rel.chart} "
            f"{rel.chart_version}, app {rel.app_version or '?'}")


def release_notes(rel: HelmRelease) -> list[str]:
    """Traps in an installed release's values: cStor asked of a 4.x chart, 4.x defaults left on."""
    notes = []
    m = major(rel.chart_version)
    if m is not None and m >= 4:
        if _dig(rel.values, "cstor.enabled") in (True, "true"):
            notes.append("values set cstor.enabled=true, which the 4.x chart ignores (no cStor in any 4.x chart): "
                         "no cStor is installed")
        on = [k for k in HOSTPATH_ONLY if _dig(rel.values, k) not in (False, "false")]
        if on:
            notes.append("4.x defaults left on: " + ", ".join(on) + " (Mayastor/LVM/ZFS pods crash-loop on small "
                         "nodes, openebs/openebs#3887); set them false unless that engine is wanted")
    return notes


def decide(rel: HelmRelease | None, s: Settings) -> Decision:
    """The chart decision for ``s.engine`` given the installed release (None: not installed)."""
    notes = release_notes(rel) if rel is not None else []
    m = major(rel.chart_version) if rel is not None else None
    ways = WAYS_FORWARD.format(cstor=s.cstor_chart_version)
    if s.engine == "cstor-legacy":
        if major(s.cstor_chart_version) != 3:
            return Decision("fail", f"cstor_chart_version {s.cstor_chart_version} is not a 3.x cStor chart; "
                                    f"cStor exists only in 3.x charts. Ways forward: {ways}", notes)
        if m is not None and m >= 4:
            return Decision("fail", f"{describe(rel)}: the seed's cStor step (helm upgrade --set cstor.enabled=true) "
                                    f"does nothing on 4.x — cStor, Jiva, NDM and device LocalPV are archived and in "
                                    f"no 4.x chart; refused. Ways forward: {ways}", notes)
        return Decision("info", f"{describe(rel)}; cStor as a legacy trial from openebs-cstor/cstor "
                                f"{s.cstor_chart_version} (apply with confirm). Note: {ways}", notes)
    if s.engine == "mayastor":
        if m is not None and m < 4:
            return Decision("fail", f"{describe(rel)}: Mayastor as part of the umbrella chart needs 4.x; "
                                    f"upgrade to openebs/openebs {s.chart_version} (3.x cStor/Jiva volumes do not "
                                    "migrate)", notes)
        return Decision("info", f"{describe(rel)}; Mayastor from openebs/openebs {s.chart_version} "
                                "(engines.replicated.mayastor.enabled=true)", notes)
    if m is not None and m < 4:
        return Decision("warn", f"{describe(rel)}: a 3.x chart (repo openebs.github.io/charts, archived); its "
                                "hostpath works, but upgrades to 4.x keep only hostpath/LVM/ZFS/Mayastor volumes and "
                                f"older charts pin withdrawn Bitnami images; target openebs/openebs {s.chart_version}",
                        notes)
    return Decision("info" if rel is None else "pass", f"{describe(rel)}; LocalPV hostpath", notes)


def install_values(s: Settings) -> dict[str, str]:
    """``--set`` values of the install plan: hostpath only unless Mayastor is asked, and the mirror."""
    values = dict(HOSTPATH_ONLY)
    if s.engine == "mayastor":
        values["engines.replicated.mayastor.enabled"] = "true"
    values["localpv-provisioner.localpv.basePath"] = s.base_path
    if s.image_registry:
        values["global.imageRegistry"] = s.image_registry
    return values


def helm_commands(s: Settings) -> list[str]:
    """The exact commands for the operator (install or upgrade), the chart version pinned."""
    if s.engine == "cstor-legacy":
        sets = ["--set openebsNDM.enabled=true"]
        if s.image_registry:
            sets.append(f"--set global.imageRegistry={shlex.quote(s.image_registry)}")
        return [f"helm repo add openebs-cstor {REPO_CSTOR}", "helm repo update",
                f"helm upgrade --install openebs-cstor openebs-cstor/cstor --version {s.cstor_chart_version} "
                f"--namespace {s.namespace} --create-namespace " + " ".join(sets)]
    flags = " ".join(f"--set {k}={shlex.quote(v)}" for k, v in install_values(s).items())
    return [f"helm repo add openebs {REPO_4X}", "helm repo update",
            f"helm upgrade --install {s.release} openebs/openebs --version {s.chart_version} "
            f"--namespace {s.namespace} --create-namespace {flags}"]
