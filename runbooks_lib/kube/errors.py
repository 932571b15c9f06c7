"""Errors of the cluster access layer. Messages say what was refused and why, for an operator."""

from __future__ import annotations

from typing import Any


class KubeError(Exception):
    """Base of the kube layer's errors."""


class KubeConfigError(KubeError):
    """The kubeconfig cannot be used: missing file, unknown context, unusable entry."""


class KubeApiError(KubeError):
    """The API answered with an error Status."""

    def __init__(self, message: str, *, code: int, reason: str = "", verb: str = "", resource: str = "",
                 namespace: str | None = None, name: str | None = None, status: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.verb, self.resource = code, reason, verb, resource
        self.namespace, self.name, self.status = namespace, name, status or {}


class KubeNotFound(KubeApiError):
    """404."""


class KubeConflict(KubeApiError):
    """409: already exists, modified since read, or a server-side apply field conflict."""


class KubeInvalid(KubeApiError):
    """422 (or 400): the server rejected the object."""


class KubeRefused(KubeApiError, PermissionError):
    """401/403: "<verb> <resource> in <namespace> refused: <why>"."""


class KubeTimeout(KubeError, TimeoutError):
    """A wait (rollout, condition, exec) did not finish in time; the message says what was last seen."""


class ManifestInvalid(KubeError):
    """A rendered manifest failed offline schema validation (nothing was sent)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("manifest validation failed before any request:\n  " + "\n  ".join(problems))
        self.problems = problems
