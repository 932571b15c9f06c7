"""How we reach the cluster: one recorded client per run, plain-data helpers, offline-validated
and offline-validated manifests. The lab's API server lives in ``runbooks_lib.lab.apiserver``.

    from runbooks_lib import kube
    kc = kube.connect(run)                       # params.kube: kubeconfig, context, request_timeout
    cm = kc.get("ConfigMap", "kube-proxy", "kube-system")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names, for type checkers; at run time they load on first use
    from .client import KubeClient, connect
    from .core import KubeTarget, Response
    from .errors import (
        KubeApiError,
        KubeConfigError,
        KubeConflict,
        KubeError,
        KubeInvalid,
        KubeNotFound,
        KubeRefused,
        KubeTimeout,
        ManifestInvalid,
    )
    from .manifests import (
        RUN_LABEL,
        probe_pod,
        run_id_of,
        validate_manifest,
        validate_manifests,
        with_run_label,
    )
    from .podexec import ExecResult
    from .read import NodeInfo, condition, dig, frame, node_info
    from .wait import RolloutResult, rollout_state
    from .write import ApplyResult, ConfigMapChange, text_diff, yaml_diff

# Lazy: importing the package (e.g. for paths) must not pay for the kubernetes client.
_WHERE = {
    "ApplyResult": "write",
    "ConfigMapChange": "write",
    "ExecResult": "podexec",
    "KubeApiError": "errors",
    "KubeClient": "client",
    "KubeConfigError": "errors",
    "KubeConflict": "errors",
    "KubeError": "errors",
    "KubeInvalid": "errors",
    "KubeNotFound": "errors",
    "KubeRefused": "errors",
    "KubeTarget": "core",
    "KubeTimeout": "errors",
    "ManifestInvalid": "errors",
    "NodeInfo": "read",
    "RUN_LABEL": "manifests",
    "Response": "core",
    "RolloutResult": "wait",
    "condition": "read",
    "connect": "client",
    "dig": "read",
    "frame": "read",
    "node_info": "read",
    "probe_pod": "manifests",
    "rollout_state": "wait",
    "run_id_of": "manifests",
    "text_diff": "write",
    "validate_manifest": "manifests",
    "validate_manifests": "manifests",
    "with_run_label": "manifests",
    "yaml_diff": "write",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value

__all__ = [
    "RUN_LABEL", "ApplyResult", "ConfigMapChange", "ExecResult", "KubeApiError", "KubeClient", "KubeConfigError",
    "KubeConflict", "KubeError", "KubeInvalid", "KubeNotFound", "KubeRefused", "KubeTarget",
    "KubeTimeout", "ManifestInvalid", "NodeInfo", "Response", "RolloutResult", "condition", "connect", "dig",
    "frame", "node_info", "probe_pod", "rollout_state", "run_id_of", "text_diff", "validate_manifest",
    "validate_manifests", "with_run_label", "yaml_diff",
]
