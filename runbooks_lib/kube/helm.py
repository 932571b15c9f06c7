"""Helm without depending on it: charts rendered by a ``helm`` binary when the runner has one, and
installed releases read straight from the cluster.

Helm 3 stores each release revision in a Secret ``sh.helm.release.v1.<name>.v<N>`` (type
``helm.sh/release.v1``, labels owner=helm, name, version, status) whose ``release`` key holds the
release as JSON, gzip-compressed and base64-encoded (on top of the Secret's own base64)
(helm/helm pkg/storage/driver/util.go ``encodeRelease``/``decodeRelease``). Reading it tells chart
name, chart version, app version, status and the user-supplied values without helm.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..transport.local import LocalTransport
from .errors import KubeError
from .read import ReadOps
from .sources import load_documents

Obj = dict[str, Any]
GZIP_MAGIC = b"\x1f\x8b\x08"
MIN_HELM = (3, 0)


class HelmError(KubeError):
    """helm is missing or too old, a chart failed to render, or a release cannot be decoded."""


@dataclass
class Rendered:
    """Objects rendered from a chart, and what rendered them."""

    objects: list[Obj]
    chart: str
    release: str
    namespace: str
    helm_version: str


@dataclass
class HelmRelease:
    """One installed release revision, from its release Secret."""

    name: str
    namespace: str
    revision: int
    status: str
    chart: str
    chart_version: str
    app_version: str
    values: Obj = field(repr=False, default_factory=dict)
    manifest: str = field(repr=False, default="")
    secret: str = ""


def helm_binary(helm: str | None = None) -> str:
    """Path of the helm binary, or HelmError saying what to install."""
    found = shutil.which(helm or "helm")
    if not found:
        raise HelmError(f"helm not found ({helm or 'helm'} is not on PATH): install helm >= "
                        f"{MIN_HELM[0]}.x on the runner (https://helm.sh/docs/intro/install/) "
                        "or pass the rendered manifest as a file source")
    return found


def helm_version(helm: str, transport: LocalTransport) -> str:
    """``helm version --short`` (e.g. v3.15.2+g1a500d5); HelmError when older than 3."""
    res = transport.run([helm, "version", "--short"], sudo=False, timeout=30)
    text = res.stdout.strip()
    m = re.match(r"v?(\d+)\.(\d+)", text)
    if not res.ok or m is None:
        raise HelmError(f"{helm} version --short failed or said {text!r}: {res.stderr.strip()[-300:]}")
    if (int(m.group(1)), int(m.group(2))) < MIN_HELM:
        raise HelmError(f"{helm} is {text}; helm >= {MIN_HELM[0]}.x is needed")
    return text


def render_chart(chart: str | Path, release: str, namespace: str, *, values_files: list[str | Path] | None = None,
                 set_values: dict[str, str] | None = None, chart_version: str | None = None,
                 kube_version: str | None = None, helm: str | None = None, timeout: float = 120.0,
                 transport: LocalTransport | None = None) -> Rendered:
    """``helm template`` a chart (path or repo/chart) into objects; the helm version is recorded.
    Nothing is sent to a cluster (helm template never contacts one)."""
    binary = helm_binary(helm)
    local = transport or LocalTransport()
    version = helm_version(binary, local)
    argv = [binary, "template", release, str(chart), "--namespace", namespace, "--include-crds"]
    if chart_version:
        argv += ["--version", chart_version]
    if kube_version:
        argv += ["--kube-version", kube_version.lstrip("v")]
    for f in values_files or []:
        argv += ["--values", str(f)]
    for k, v in (set_values or {}).items():
        argv += ["--set-string", f"{k}={v}"]
    res = local.run(argv, sudo=False, timeout=timeout)
    if not res.ok:
        raise HelmError(f"{shlex.join(argv)} failed ({version}): {res.stderr.strip()[-800:]}")
    return Rendered(load_documents(res.stdout, f"helm template {release} {chart}"), str(chart), release, namespace,
                    version)


def decode_release(data: str | bytes) -> Obj:
    """The release JSON from a release Secret's ``release`` value as the API returns it
    (Secret base64, then Helm's base64, then gzip when it starts with the gzip magic)."""
    try:
        raw = base64.b64decode(data, validate=True)
        inner = base64.b64decode(raw, validate=True)
        if inner[:3] == GZIP_MAGIC:
            inner = gzip.decompress(inner)
        return dict(json.loads(inner))
    except (ValueError, OSError, EOFError) as exc:
        raise HelmError(f"release data cannot be decoded (base64 + gzip + JSON expected): {exc}") from exc


def encode_release(release: Obj) -> str:
    """What Helm writes (the inverse of :func:`decode_release`): the Secret's ``data.release`` value."""
    helm_b64 = base64.b64encode(gzip.compress(json.dumps(release).encode()))
    return base64.b64encode(helm_b64).decode()


def read_release(kc: ReadOps, name: str, namespace: str, revision: int | None = None) -> HelmRelease | None:
    """The latest (or the given) revision of release ``name`` in ``namespace``; None when not installed."""
    secrets = kc.list_objects("Secret", namespace, label_selector=f"owner=helm,name={name}")
    found = []
    for s in secrets:
        m = re.fullmatch(rf"sh\.helm\.release\.v1\.{re.escape(name)}\.v(\d+)", s["metadata"]["name"])
        if m and s.get("type", "helm.sh/release.v1") == "helm.sh/release.v1":
            found.append((int(m.group(1)), s))
    if revision is not None:
        found = [f for f in found if f[0] == revision]
    if not found:
        return None
    rev, secret = max(found, key=lambda f: f[0])
    doc = decode_release((secret.get("data") or {}).get("release", ""))
    meta = (doc.get("chart") or {}).get("metadata") or {}
    info = doc.get("info") or {}
    return HelmRelease(str(doc.get("name", name)), str(doc.get("namespace", namespace)), int(doc.get("version", rev)),
                       str(info.get("status", (secret["metadata"].get("labels") or {}).get("status", ""))),
                       str(meta.get("name", "")), str(meta.get("version", "")), str(meta.get("appVersion", "")),
                       dict(doc.get("config") or {}), str(doc.get("manifest", "")), secret["metadata"]["name"])
