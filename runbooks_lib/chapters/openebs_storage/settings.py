"""Parameters of the openebs-storage chapter (the `openebs_storage:` section of a parameter file)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Engine = Literal["hostpath", "cstor-legacy", "mayastor"]
RaidType = Literal["stripe", "mirror", "raidz", "raidz2"]


class CStorPool(BaseModel):
    """One node's pool of a CStorPoolCluster, from BlockDevices the operator names."""

    model_config = ConfigDict(extra="forbid")

    node: str = Field(description="kubernetes.io/hostname of the node")
    block_devices: list[str] = Field(min_length=1, description="BlockDevice names (kubectl get bd -n openebs)")
    raid: RaidType = Field("stripe", description="dataRaidGroupType")


class Settings(BaseModel):
    """Release detection, node prerequisites, install plan, cStor (legacy) and the storage trials."""

    model_config = ConfigDict(extra="forbid")

    engine: Engine = Field("hostpath", description="what the chapter prepares: LocalPV hostpath (4.x), cStor as a "
                                                   "legacy trial (pinned 3.x chart, confirm), or Mayastor (4.x)")
    release: str = Field("openebs", description="Helm release name")
    namespace: str = Field("openebs", description="namespace of the release and of the OpenEBS objects")
    chart_version: str = Field("4.6.1", description="openebs/openebs chart version the install plan targets")
    cstor_chart_version: str = Field("3.6.0", description="the pinned openebs-cstor/cstor chart (legacy trial)")
    image_registry: str | None = Field(None, description="image mirror for the chart (the seed used "
                                                         "k8s.dockerproxy.com); None: the chart's registries")
    manifest: str | None = Field(None, description="rendered OpenEBS manifest file applied through the objects "
                                                   "layer in apply (offline sites); None: helm commands only")
    chart: str | None = Field(None, description="local chart path/tgz rendered with helm template when the "
                                                "runner has helm")
    base_path: str = Field("/var/openebs/local", description="LocalPV hostpath base directory on the nodes")
    min_free_gib: float = Field(10.0, ge=0, description="free space wanted under the base path")
    cstor_pools: list[CStorPool] = Field(default_factory=list, description="cStor pools (legacy trial)")
    cstor_replica_count: int = Field(1, ge=1, le=5, description="replicaCount of the cStor StorageClass")
    trial_classes: list[str] = Field(default_factory=list, description="StorageClasses to trial with a PVC + pod; "
                                                                       "empty: openebs-hostpath when it exists")
    trial_node: str | None = Field(None, description="node for the PVC trial pod (nodeSelector, never nodeName)")
    trial_size: str = Field("1Gi", description="PVC size of a trial (kubestr defaults to 100Gi)")
    trial_image: str = Field("busybox:1.36", description="image of the trial pod")
    trial_fio: bool = Field(False, description="also run the fio jobs in the trial pod on the PVC (the trial image "
                                               "must have fio, e.g. ghcr.io/kastenhq/kubestr)")
    sts_replicas: int | None = Field(None, ge=1, le=10, description="replicas of the cStor StatefulSet trial (legacy, "
                                                                   "apply + confirm); None: min(3, ONLINE pool "
                                                                   "instances)")
    sts_size: str = Field("256Mi", description="claim size of the StatefulSet trial's volumeClaimTemplate")
    sts_image: str = Field("nginx:1.27", description="image of the StatefulSet trial (the seed's nginx, pinned; "
                                                     "image_registry mirrors docker.io)")
    sts_namespace: str = Field("default", description="namespace of the StatefulSet trial")
    pvc_timeout_s: float = Field(60.0, gt=0, le=1800, description="wait for a trial PVC to bind / pod to run")
    fio_runtime_s: int = Field(6, ge=1, le=300, description="seconds per fio job (5 jobs, after 1 s ramp)")
    fio_size: str = Field("256M", description="fio test file size")
    fio_install: bool = Field(True, description="apply installs the distro package fio on a node without it")

    @field_validator("base_path")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not v.startswith("/") or ".." in v.split("/") or any(c in v for c in "'\"$`\\ \n"):
            raise ValueError("an absolute path without '..', quotes, spaces or shell characters")
        return v.rstrip("/") or "/"

    @field_validator("fio_size", "trial_size", "sts_size")
    @classmethod
    def _size(cls, v: str) -> str:
        import re

        if not re.fullmatch(r"[1-9][0-9]*(Ki|Mi|Gi|K|M|G)?", v):
            raise ValueError("a size such as 256M or 1Gi")
        return v
