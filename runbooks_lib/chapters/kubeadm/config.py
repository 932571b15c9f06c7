"""The kubeadm configuration file, rendered from the parameters (pure).

Four documents: InitConfiguration, ClusterConfiguration, KubeletConfiguration, KubeProxyConfiguration.
The kubeadm API version follows the target: v1beta3 up to 1.30, v1beta4 from 1.31 (extraArgs as
name/value lists, the ``timeouts`` block); v1beta3 asked for 1.37 or later is refused, since kubeadm
1.37 removed it. No secret goes into the file: bootstrap tokens are minted by apply
(``kubeadm token create --ttl``), the certificate key by ``kubeadm init phase upload-certs``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from .settings import Settings

KUBEADM_GROUP = "kubeadm.k8s.io"
CONFIG_PATH = "/etc/kubernetes/kubeadm-config.yaml"
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$")


class ConfigRefused(ValueError):
    """The asked combination cannot be rendered (the message says what to do instead)."""


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int | None

    @classmethod
    def parse(cls, text: str) -> Version:
        m = _VERSION.match(text.strip())
        if not m:
            raise ConfigRefused(f"kubernetes_version {text!r}: expected 1.NN or 1.NN.P")
        return cls(int(m[1]), int(m[2]), int(m[3]) if m[3] is not None else None)

    @property
    def tag(self) -> str:
        """The kubernetesVersion kubeadm gets (a minor without patch renders as its .0 release)."""
        return f"v{self.major}.{self.minor}.{self.patch or 0}"

    @property
    def minor_str(self) -> str:
        return f"{self.major}.{self.minor}"


def api_version_for(version: Version, asked: str = "auto") -> str:
    """kubeadm.k8s.io/v1beta3 or /v1beta4 for ``version``; ConfigRefused for a removed or unknown one."""
    if asked == "auto":
        asked = "v1beta4" if (version.major, version.minor) >= (1, 31) else "v1beta3"
    if asked == "v1beta4" and (version.major, version.minor) < (1, 31):
        raise ConfigRefused(f"v1beta4 needs kubeadm 1.31 or later; {version.minor_str} reads v1beta3")
    if asked == "v1beta3" and (version.major, version.minor) >= (1, 37):
        raise ConfigRefused(
            f"kubeadm {version.minor_str} removed the v1beta3 config API (deprecated since 1.31): render v1beta4 "
            "(kubeadm.api_version: auto), or convert an existing file with a 1.36 kubeadm: "
            "`kubeadm config migrate --old-config old.yaml --new-config new.yaml`")
    if (version.major, version.minor) < (1, 27):
        raise ConfigRefused(f"Kubernetes {version.minor_str} is not supported by this runbook (1.28 to 1.37)")
    return f"{KUBEADM_GROUP}/{asked}"


@dataclass
class Node:
    """What rendering needs of the first control plane."""

    name: str
    address: str


@dataclass
class Rendered:
    version: Version
    api_version: str
    documents: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "---\n".join(yaml.safe_dump(d, sort_keys=False, default_flow_style=False) for d in self.documents)


def endpoint_with_port(endpoint: str | None) -> str | None:
    """``host`` -> ``host:6443``; ``host:port`` and ``[v6]:port`` unchanged."""
    if not endpoint:
        return None
    if endpoint.startswith("["):
        return endpoint if "]:" in endpoint else f"{endpoint}:6443"
    if endpoint.count(":") == 1:
        return endpoint
    if endpoint.count(":") > 1:  # a bare IPv6 address
        return f"[{endpoint}]:6443"
    return f"{endpoint}:6443"


def endpoint_host(endpoint: str | None) -> str | None:
    full = endpoint_with_port(endpoint)
    if full is None:
        return None
    return full[1:full.index("]")] if full.startswith("[") else full.rsplit(":", 1)[0]


def _args(pairs: dict[str, str], v4: bool) -> Any:
    return [{"name": k, "value": v} for k, v in pairs.items()] if v4 else dict(pairs)


def render(s: Settings, kubernetes_version: str, cluster_name: str, first: Node, proxy_mode: str,
           control_planes: list[Node] | None = None) -> Rendered:
    """The kubeadm config for ``kubernetes_version`` (ConfigRefused when it cannot be rendered)."""
    version = Version.parse(kubernetes_version)
    api = api_version_for(version, s.api_version)
    v4 = api.endswith("v1beta4")
    endpoint = endpoint_with_port(s.control_plane_endpoint)
    sans = list(dict.fromkeys([*s.cert_sans, *(n.address for n in control_planes or [first]),
                               *(n.name for n in control_planes or [first]),
                               *([endpoint_host(endpoint)] if endpoint else [])]))
    init: dict[str, Any] = {
        "apiVersion": api, "kind": "InitConfiguration",
        "localAPIEndpoint": {"advertiseAddress": first.address, "bindPort": 6443},
        "nodeRegistration": {
            "name": first.name, "criSocket": s.cri_socket, "imagePullPolicy": "IfNotPresent",
            "taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
            **({"ignorePreflightErrors": list(s.ignore_preflight_errors)} if s.ignore_preflight_errors else {}),
        },
    }
    if v4:
        init["timeouts"] = {"controlPlaneComponentHealthCheck": "4m0s", "kubeletHealthCheck": "4m0s",
                            "kubernetesAPICall": "1m0s", "etcdAPICall": "2m0s", "tlsBootstrap": "5m0s",
                            "discovery": "5m0s", "upgradeManifests": "5m0s"}
    cluster: dict[str, Any] = {
        "apiVersion": api, "kind": "ClusterConfiguration",
        "clusterName": cluster_name,
        "kubernetesVersion": version.tag,
        **({"controlPlaneEndpoint": endpoint} if endpoint else {}),
        "imageRepository": s.image_repository,
        "certificatesDir": "/etc/kubernetes/pki",
        "networking": {"podSubnet": s.pod_network_cidr, "serviceSubnet": s.service_cidr,
                       "dnsDomain": s.service_dns_domain},
        "apiServer": {"certSANs": sans},
        "controllerManager": {"extraArgs": _args({"allocate-node-cidrs": "true",
                                                  "cluster-cidr": s.pod_network_cidr}, v4)},
        "etcd": {"local": {"dataDir": "/var/lib/etcd"}},
    }
    if v4:
        cluster["encryptionAlgorithm"] = "RSA-2048"
    kubelet = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "cgroupDriver": "systemd",
        "serverTLSBootstrap": s.server_tls_bootstrap,
        "rotateCertificates": True,
        "failSwapOn": True,
        "containerRuntimeEndpoint": s.cri_socket,
    }
    proxy = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
        "mode": proxy_mode,
        "clusterCIDR": s.pod_network_cidr,
    }
    return Rendered(version, api, [init, cluster, kubelet, proxy])


def proxy_mode_for(params: Any) -> str:
    """kubeadm.kube_proxy_mode, else chapter 03's target mode, else chapter 01's mode."""
    s: Settings = params.kubeadm
    return str(s.kube_proxy_mode or params.kube_proxy_modes.target_mode or params.system_init.kube_proxy_mode)
