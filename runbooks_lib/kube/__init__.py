"""How we reach the cluster: one recorded client per run, plain-data helpers, offline-validated
manifests, and an HTTP(S) API double for tests and the lab (``runbooks_lib.kube.double``).

    from runbooks_lib import kube
    kc = kube.connect(run)                       # params.kube: kubeconfig, context, request_timeout
    cm = kc.get("ConfigMap", "kube-proxy", "kube-system")
"""

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
from .manifests import RUN_LABEL, probe_pod, run_id_of, validate_manifest, validate_manifests, with_run_label
from .podexec import ExecResult
from .read import NodeInfo, condition, dig, frame, node_info
from .wait import RolloutResult, rollout_state
from .write import ApplyResult, ConfigMapChange, text_diff, yaml_diff

__all__ = [
    "RUN_LABEL", "ApplyResult", "ConfigMapChange", "ExecResult", "KubeApiError", "KubeClient", "KubeConfigError",
    "KubeConflict", "KubeError", "KubeInvalid", "KubeNotFound", "KubeRefused", "KubeTarget",
    "KubeTimeout", "ManifestInvalid", "NodeInfo", "Response", "RolloutResult", "condition", "connect", "dig",
    "frame", "node_info", "probe_pod", "rollout_state", "run_id_of", "text_diff", "validate_manifest",
    "validate_manifests", "with_run_label", "yaml_diff",
]
