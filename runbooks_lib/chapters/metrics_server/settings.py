"""Parameters of the metrics-server chapter (the `metrics_server:` section of a parameter file).

Secure by default: metrics-server verifies each kubelet's serving certificate (no
``--kubelet-insecure-tls``); ``kubelet_insecure_tls: true`` turns verification off and every run says so.
Without ``manifest``/``manifest_url`` the chapter audits what is installed and installs nothing.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Settings(BaseModel):
    """metrics-server: the operator's manifest, patches, the TLS decision and the verify timeouts."""

    model_config = ConfigDict(extra="forbid")

    manifest: str | None = Field(None, description="path of the operator's components.yaml (or the HA manifest "
                                 "high-availability-1.21+.yaml) on the runner; apply installs/upgrades from it")
    manifest_url: str | None = Field(None, description="pinned URL of the manifest (needs manifest_sha256)")
    manifest_sha256: str | None = Field(None, description="sha256 of the manifest at manifest_url")
    image_mirror: str | None = Field(None, description="registry prefix replacing registry.k8s.io in the "
                                     "manifest's images, e.g. registry.aliyuncs.com/google_containers")
    extra_args: list[str] = Field(default_factory=list, description="arguments added to metrics-server's; the "
                                  "manifest's own are kept (an --x=... here replaces only the same --x)")
    kubelet_insecure_tls: bool = Field(False, description="add --kubelet-insecure-tls (testing only: "
                                       "metrics-server then trusts any kubelet certificate; a warn every run)")
    server_tls_bootstrap: bool = Field(True, description="secure mode in apply: enable serverTLSBootstrap "
                                       "(kubelet-config ConfigMap and each node's config, kubelet restarted "
                                       "node by node: needs confirm) and approve matching kubelet-serving CSRs")
    namespace: str = "kube-system"
    deployment: str = "metrics-server"
    probe_image: str = Field("registry.k8s.io/e2e-test-images/resource-consumer:1.13", description="image of "
                             "the accuracy probe's consumers (consume-cpu and stress, as upstream e2e); image_mirror "
                             "applies")
    probe_namespace: str = "default"
    probe_on_lab_api: bool = Field(False, description="run the probe against the lab's API server too (tests: "
                                   "its seeded metrics must then fail the probe)")
    timeout_s: float = Field(120.0, gt=0, le=1800, description="how long apply waits for rollout and APIService")

    @field_validator("manifest_sha256")
    @classmethod
    def _sha(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.match(value.lower()):
            raise ValueError("not a sha256 (64 hex digits)")
        return value.lower() if value else value

    @field_validator("extra_args")
    @classmethod
    def _args(cls, value: list[str]) -> list[str]:
        bad = [a for a in value if not a.startswith("--")]
        if bad:
            raise ValueError(f"arguments must start with --: {bad}")
        return value

    @model_validator(mode="after")
    def _source(self) -> Settings:
        if self.manifest and self.manifest_url:
            raise ValueError("give manifest or manifest_url, not both")
        if self.manifest_url and not self.manifest_sha256:
            raise ValueError("manifest_url needs manifest_sha256 (offline sites pass manifest)")
        return self
