"""Parameters of the calico-ips chapter (the `calico_ips:` section of a parameter file)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_NET_TOOLS_IMAGE = "juestnow/net-tools"


def _ip(v: str) -> str:
    ipaddress.ip_address(v)  # ValueError names the bad value
    return v


IP = Annotated[str, AfterValidator(_ip)]


class FixedIp(BaseModel):
    """A workload whose pod gets one fixed IP (`cni.projectcalico.org/ipAddrs`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="workload name")
    namespace: str = "default"
    ip: IP = Field(description="the pod's IP; must lie in a Calico IPPool and be free")
    kind: Literal["Deployment", "StatefulSet"] = "Deployment"
    replicas: int = Field(1, ge=0, description="must be 1 (one IP per pod template)")
    strategy: Literal["Recreate", "RollingUpdate"] = Field(
        "Recreate", description="RollingUpdate starts the new pod while the old one holds the IP: refused")
    image: str = "nginx:1.27"


class FloatingIp(BaseModel):
    """A floating IP NATed to a pod (`cni.projectcalico.org/floatingIPs`), manifest installs only."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="workload (Deployment) name that gets the annotation")
    namespace: str = "default"
    ip: IP = Field(description="the floating IP; must lie in a Calico IPPool")
    image: str = "nginx:1.27"
    enable: bool = Field(False, description="apply (with confirm): switch floating IPs on (calico-config "
                                            "feature_control.floating_ips and FelixConfiguration "
                                            "floatingIPs: Enabled), restarting calico-node node by node")


class Settings(BaseModel):
    """Calico install check (plan), optional install from a manifest, fixed and floating IPs, network check."""

    model_config = ConfigDict(extra="forbid")

    manifest: str | None = Field(None, description="operator-supplied calico.yaml (a file; offline sites are the "
                                                   "rule); None: Calico is only checked, never installed")
    manifest_url: str | None = Field(None, description="pinned URL of calico.yaml instead of a file")
    manifest_sha256: str | None = Field(None, description="sha256 of manifest_url (required with it)")
    pod_subnet: str | None = Field(None, description="CALICO_IPV4POOL_CIDR for an install; default: kubeadm's "
                                                     "podSubnet from the kubeadm-config ConfigMap")
    image_mirror: str | None = Field(None, description='registry prefix the Calico images move to, e.g. '
                                                       '"registry.example.com/calico" (docker.io/calico/node:v3.28.1 '
                                                       '-> registry.example.com/calico/node:v3.28.1)')
    fixed_ip: FixedIp | None = None
    floating_ip: FloatingIp | None = None
    net_check: bool = Field(False, description="apply: run the net-tools DaemonSet probes, then delete it")
    net_tools_image: str = Field(DEFAULT_NET_TOOLS_IMAGE, description="image of the net-tools DaemonSet "
                                                                      "(needs nc, curl, nslookup; mirror-friendly)")
    net_namespace: str = "default"
    rollout_timeout_s: float = Field(180.0, gt=0, le=3600, description="wait for a rollout / a pod")

    @field_validator("pod_subnet")
    @classmethod
    def _cidr(cls, v: str | None) -> str | None:
        if v is not None:
            ipaddress.ip_network(v, strict=True)
        return v

    @model_validator(mode="after")
    def _source(self) -> Settings:
        if self.manifest and self.manifest_url:
            raise ValueError("give manifest or manifest_url, not both")
        if self.manifest_url and not self.manifest_sha256:
            raise ValueError("manifest_url needs manifest_sha256 (a URL is used only pinned)")
        return self
