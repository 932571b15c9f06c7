"""metrics-server's version against the server's, and its arguments against the manifest's defaults.

Compatibility matrix from kubernetes-sigs/metrics-server README.md ("Compatibility Matrix"): every line
serves metrics.k8s.io/v1beta1; 0.9.x supports Kubernetes 1.34+, 0.8.x 1.31+, 0.7.x 1.27+, 0.6.x 1.25+.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: metrics-server minor -> the lowest Kubernetes minor it supports (README compatibility matrix)
MATRIX: dict[tuple[int, int], tuple[int, int]] = {(0, 9): (1, 34), (0, 8): (1, 31), (0, 7): (1, 27), (0, 6): (1, 25)}
#: the arguments of upstream manifests/base/deployment.yaml (v0.7 - v0.9), used when no manifest is given
UPSTREAM_ARGS = ["--cert-dir=/tmp", "--secure-port=10250",
                 "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
                 "--kubelet-use-node-status-port", "--metric-resolution=15s"]
#: what a missing default costs (metrics-server's binary defaults differ from the manifest's)
WHY_MISSING = {
    "--metric-resolution": "the binary then scrapes every 60 s (manifests set 15s)",
    "--kubelet-preferred-address-types": "the binary then tries Hostname first (needs node names in DNS)",
    "--kubelet-use-node-status-port": "the kubelet port is then fixed at 10250 instead of the node's status",
    "--secure-port": "the binary then listens on 443 (needs the container port and Service to match)",
    "--cert-dir": "the binary then writes its self-signed serving certificate to its working directory",
}
INSECURE = "--kubelet-insecure-tls"
_TAG = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


def image_version(image: str) -> tuple[int, int, int] | None:
    """(0, 7, 2) from ``registry.k8s.io/metrics-server/metrics-server:v0.7.2``; None for a digest or
    an unversioned tag."""
    ref = image.split("@", 1)[0]
    tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else ""
    m = _TAG.fullmatch(tag) or _TAG.match(tag)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def server_minor(git_version: str) -> tuple[int, int] | None:
    m = re.match(r"v?(\d+)\.(\d+)", git_version or "")
    return (int(m[1]), int(m[2])) if m else None


def compatibility(ms: tuple[int, int, int] | None, server: tuple[int, int] | None) -> tuple[str, str]:
    """(status, detail): pass when the server is at or above the line's lowest Kubernetes version,
    fail below it, warn when either version is unknown or the line is not in the matrix; a newer line
    made for this server is named."""
    if ms is None or server is None:
        return "warn", "version unknown (image tag or server version not parsed): compatibility not checked"
    line = ms[:2]
    shown = f"metrics-server {'.'.join(map(str, ms))} on Kubernetes {server[0]}.{server[1]}"
    if line not in MATRIX:
        return "warn", f"{shown}: {line[0]}.{line[1]}.x is not in the compatibility matrix"
    low = MATRIX[line]
    if server < low:
        return "fail", f"{shown}: {line[0]}.{line[1]}.x needs Kubernetes {low[0]}.{low[1]}+"
    newest = max((ln for ln, lo in MATRIX.items() if lo <= server), default=line)
    extra = f"; {newest[0]}.{newest[1]}.x is the newest line for this server" if newest > line else ""
    return "pass", f"{shown}: {line[0]}.{line[1]}.x supports {low[0]}.{low[1]}+{extra}"


def _key(arg: str) -> str:
    return arg.split("=", 1)[0]


@dataclass(frozen=True)
class ArgsDiff:
    missing: list[str]    # defaults absent
    replaced: list[tuple[str, str]]  # (default, installed) with the same flag, other value
    added: list[str]      # not among the defaults

    @property
    def same(self) -> bool:
        return not (self.missing or self.replaced or self.added)


def diff_args(defaults: list[str], installed: list[str]) -> ArgsDiff:
    by_flag = {_key(a): a for a in installed}
    missing = [d for d in defaults if _key(d) not in by_flag]
    replaced = [(d, by_flag[_key(d)]) for d in defaults if _key(d) in by_flag and by_flag[_key(d)] != d]
    flags = {_key(d) for d in defaults}
    return ArgsDiff(missing, replaced, [a for a in installed if _key(a) not in flags])


def add_args(current: list[str], extra: list[str]) -> list[str]:
    """``current`` with ``extra`` added: an extra ``--x=v`` replaces only ``--x``; nothing else dropped
    (the replaced-args trap of kustomize patches: replicatedhq/kURL#6060 review)."""
    out = list(current)
    for arg in extra:
        idx = next((i for i, a in enumerate(out) if _key(a) == _key(arg)), None)
        if idx is None:
            out.append(arg)
        else:
            out[idx] = arg
    return out


def mirrored(image: str, mirror: str | None) -> str:
    """``registry.k8s.io/metrics-server/metrics-server:v0.7.2`` under ``mirror``: the registry replaced,
    the repository's last path element kept (as the seed's aliyun mirror lays images out)."""
    if not mirror:
        return image
    name = image.split("/")[-1]
    return f"{mirror.rstrip('/')}/{name}"
