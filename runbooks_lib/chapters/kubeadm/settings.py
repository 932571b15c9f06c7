"""Parameters of the kubeadm chapter (the `kubeadm:` section of a parameter file)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from ...secret_field import secret_field


class Settings(BaseModel):
    """kubeadm init/join settings. Secrets are references (env:NAME or file:/path) or values that
    the runner keeps out of the report."""

    model_config = ConfigDict(extra="forbid")

    image_repository: str = "registry.aliyuncs.com/google_containers"
    pod_network_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.96.0.0/16"
    control_plane_endpoint: str | None = None
    token: str | None = secret_field(None, "bootstrap token [a-z0-9]{6}.[a-z0-9]{16}")
    certificate_key: str | None = secret_field(None, "--certificate-key for control-plane joins")
