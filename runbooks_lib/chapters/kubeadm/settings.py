"""Parameters of the kubeadm chapter (the `kubeadm:` section of a parameter file).

Defaults follow the seed's `kubeadm init` (1.28.6, the aliyun mirror, 10.244.0.0/16 and 10.96.0.0/16,
`--apiserver-cert-extra-sans=127.0.0.1`, containerd's socket) and work for the lab as they are.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...secret_field import secret_field


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"not a network in CIDR notation ({exc})") from None
    return value


class Settings(BaseModel):
    """kubeadm config, preflight, init/join settings. Secrets are references (env:NAME or file:/path) or
    values that the runner keeps out of the report."""

    model_config = ConfigDict(extra="forbid")

    image_repository: str = "registry.aliyuncs.com/google_containers"
    pod_network_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.96.0.0/16"
    service_dns_domain: str = "cluster.local"
    control_plane_endpoint: str | None = Field(
        None, description="host or host:port of the API for every node (a VIP or load balancer); required "
        "with more than one control plane")
    cert_sans: list[str] = Field(default_factory=lambda: ["127.0.0.1"],
                                 description="extra apiserver certificate SANs (the seed adds 127.0.0.1)")
    cri_socket: str = "unix:///var/run/containerd/containerd.sock"
    api_version: Literal["auto", "v1beta3", "v1beta4"] = Field(
        "auto", description="kubeadm config API: auto = v1beta3 up to 1.30, v1beta4 from 1.31 "
        "(v1beta3 is refused from 1.37, where kubeadm removed it)")
    server_tls_bootstrap: bool = Field(
        False, description="KubeletConfiguration.serverTLSBootstrap (chapter 05 wants true: CA-signed "
        "kubelet serving certificates, approved when their SANs match the node)")
    kube_proxy_mode: Literal["iptables", "ipvs", "nftables"] | None = Field(
        None, description="None: kube_proxy_modes.target_mode, else system_init.kube_proxy_mode")
    ha: Literal["none", "keepalived-haproxy", "kube-vip"] = Field(
        "none", description="how control_plane_endpoint is served: keepalived + HAProxy, or kube-vip")
    vip_interface: str = Field("eth0", pattern=r"^[A-Za-z0-9_.:-]{1,15}$", description="interface the VIP lives on (keepalived / kube-vip)")
    token_ttl: str = Field("1h", pattern=r"^[0-9]+[smh]$", description="TTL of the bootstrap token apply mints")
    init_timeout_s: int = Field(300, ge=30, description="timeout of kubeadm init / join (as Kubespray: 300 s)")
    gate_timeout_s: int = Field(300, ge=5, description="how long apply waits, after each join, for /readyz?verbose "
                                "and the node's registration (a control plane's own API server too) before "
                                "it stops")
    join_forks: int = Field(5, ge=1, le=50, description="workers joined in parallel")
    cert_warn_days: int = Field(30, ge=1, description="a PKI certificate expiring sooner is a warning")
    etcd_disk_test: bool = Field(True, description="fio fdatasync test on control planes (KubeKey's job)")
    etcd_fsync_p99_ms: float = Field(10.0, gt=0, description="etcd's guideline for p99 WAL fdatasync")
    ignore_preflight_errors: list[str] = Field(
        default_factory=list, description="kubeadm preflight check names (e.g. CRI, SystemVerification; all) "
        "apply may proceed despite: they go into nodeRegistration.ignorePreflightErrors, as "
        "--ignore-preflight-errors would; any other failed check blocks init/join of its node")
    reset: list[str] = Field(default_factory=list, description="inventory hosts to reset (kubeadm reset -f, "
                             "then CNI config, iptables/nft/ipvs state); only with mode apply and confirm")
    token: str | None = secret_field(None, "bootstrap token [a-z0-9]{6}.[a-z0-9]{16}")
    certificate_key: str | None = secret_field(None, "--certificate-key for control-plane joins")

    _nets = field_validator("pod_network_cidr", "service_cidr")(lambda cls, v: _cidr(v))

    @field_validator("control_plane_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from ...facts.hosts import valid_hostname

        host, port = value, "6443"
        if value.startswith("["):
            host, _, rest = value[1:].partition("]")
            port = rest.removeprefix(":") or "6443"
        elif value.count(":") == 1:
            host, port = value.split(":")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"port {port!r} is not a TCP port")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not valid_hostname(host):
                raise ValueError("expected host, host:port or [IPv6]:port (host: an IP address or DNS name)") from None
        return value

    @field_validator("ignore_preflight_errors")
    @classmethod
    def _ignored(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,80}", v)]
        if bad:
            raise ValueError(f"not a kubeadm preflight check name: {', '.join(map(repr, bad))}")
        return value

    @field_validator("cert_sans")
    @classmethod
    def _sans(cls, value: list[str]) -> list[str]:
        from ...facts.hosts import valid_hostname

        bad = []
        for san in value:
            try:
                ipaddress.ip_address(san)
            except ValueError:
                if not valid_hostname(san):
                    bad.append(san)
        if bad:
            raise ValueError(f"not an IP address or DNS name: {', '.join(bad)}")
        return value
