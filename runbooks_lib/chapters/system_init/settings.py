"""Parameters of the system-init chapter (the `system_init:` section of a parameter file).

Defaults follow the seed (Rocky 9 notes) and Kubespray; each works for the lab as is.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: the seed's package list (000_*: 系统初始化), minus build tools; names are mapped per family
SEED_PACKAGES = [
    "ipvsadm", "conntrack", "ipset", "jq", "iptables", "curl", "sysstat", "socat", "nfs-utils",
    "libseccomp", "wget", "net-tools", "telnet", "chrony", "containerd", "ebtables", "ethtool", "tc",
]


class Settings(BaseModel):
    """Node preparation for kubeadm."""

    model_config = ConfigDict(extra="forbid")

    packages: list[str] = Field(
        default_factory=lambda: list(SEED_PACKAGES),
        description="packages every node needs (canonical names, mapped per distro family)")
    packages_extra: list[str] = Field(default_factory=list, description="more packages")
    firewall: Literal["disable", "open-ports"] = Field(
        "disable", description="disable firewalld/ufw, or open exactly the Kubernetes ports per role")
    selinux: Literal["permissive", "disabled"] = Field(
        "permissive", description="rhel family only (as Kubespray: permissive)")
    ntp_servers: list[str] = Field(default_factory=lambda: ["ntp.aliyun.com"],
                                   description="chrony time sources (server ... iburst)")
    image_repository: str | None = Field(
        None, description="registry for the pause image; default: kubeadm.image_repository")
    pause_version: str = "3.9"
    sandbox_image: str | None = Field(None, description="full sandbox image; overrides the two above")
    containerd_socket: str = "unix:///var/run/containerd/containerd.sock"
    sysctl_extra: dict[str, str] = Field(default_factory=dict, description="more exact kernel parameters")
    sysctl_minimum: dict[str, int] = Field(
        default_factory=lambda: {"fs.inotify.max_user_instances": 8192, "fs.inotify.max_user_watches": 524288},
        description="kernel parameters that must be at least this (a higher value is kept)")
    kube_proxy_mode: Literal["iptables", "ipvs", "nftables"] = Field(
        "iptables", description="used when kube_proxy_modes.target_mode is not set: picks modules and "
        "the kernel version check")
    kubernetes_repo: str = Field(
        "https://pkgs.k8s.io/core:/stable:/v{minor}",
        description="Kubernetes package repository ({minor} = kubernetes_version's 1.NN); "
        "a mirror works too (e.g. https://mirrors.aliyun.com/kubernetes-new/core/stable/v{minor})")
    install_kubernetes_packages: bool = Field(True, description="install kubelet/kubeadm/kubectl when missing")
    min_cpus_control_plane: int = Field(2, ge=1)
    min_memory_mb_control_plane: int = Field(1700, ge=256)
    required_tools: list[str] = Field(
        default_factory=lambda: ["ip", "iptables", "mount", "nsenter", "conntrack", "socat"])
    recommended_tools: list[str] = Field(default_factory=lambda: ["ebtables", "ethtool", "tc"])
