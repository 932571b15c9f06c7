"""Per node, in one SSH round trip (read-only): the kubelet's config and serving certificates, the
cluster CA, the kube-apiserver manifest (control planes), whether kubelet is installed, lab facts."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...facts import files as files_f
from ...facts import lab as lab_f
from ...facts import script
from ...facts.lab import LabFacts
from ...transport.base import Transport
from . import tls

FILES = (tls.KUBELET_CONFIG, tls.SELF_SIGNED, tls.BOOTSTRAPPED, tls.CLUSTER_CA, tls.APISERVER_MANIFEST)
KUBELET = "command -v kubelet >/dev/null && kubelet --version 2>/dev/null || echo absent; true"


@dataclass
class NodeFiles:
    files: dict[str, str | None] = field(default_factory=dict)
    kubelet: str | None = None  # "Kubernetes v1.30.4"; None: not installed
    lab: LabFacts = field(default_factory=LabFacts)

    def cert(self) -> tls.ServingCert | None:
        """The certificate kubelet serves: the bootstrapped one when present, else the self-signed one."""
        for path in (tls.BOOTSTRAPPED, tls.SELF_SIGNED):
            pem = self.files.get(path)
            if pem and "BEGIN CERTIFICATE" in pem:
                return tls.serving_cert(path, pem, self.files.get(tls.CLUSTER_CA))
        return None


def gather(t: Transport, timeout: float = 60) -> NodeFiles:
    got = script.gather(t, {"files": files_f.command(FILES), "kubelet": KUBELET, "lab": lab_f.COMMAND},
                        timeout=timeout)
    kubelet = got["kubelet"].stdout.strip()
    return NodeFiles(files_f.parse(got["files"].stdout), None if kubelet in ("", "absent") else kubelet,
                     lab_f.parse(got["lab"].stdout))
