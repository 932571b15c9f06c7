"""Load a kubeconfig once per run and give chapters one :class:`KubeClient`.

``connect(run)`` reads ``params.kube`` (kubeconfig path, context, request timeout), checks the
file and the context before anything is contacted, asks the server its version, and names the
target in the run header: "API double at <url>" for the test double, else
"cluster API <server> (context, user, Kubernetes version)". Credentials from the kubeconfig
(tokens, client keys, passwords) are registered with the run's redactor, so they cannot reach
evidence even if some text carried them.
"""

from __future__ import annotations

import base64
import weakref
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes.client import Configuration
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.kube_config import load_kube_config_from_dict

from ..evidence import Recorder, current
from ..redact import default_redactor
from .core import KubeTarget, RecordingApiClient
from .errors import KubeConfigError
from .podexec import ExecOps
from .wait import WaitOps
from .write import WriteOps

_CREDENTIAL_KEYS = ("token", "client-key-data", "password", "id-token", "refresh-token", "access-token")


class KubeClient(WaitOps, WriteOps, ExecOps):
    """The cluster, for chapters: read (get, list_objects, raw_get, nodes, events_for), write (apply,
    patch, patch_configmap_key, create, delete, delete_by_run_label), wait (wait_for,
    wait_condition, wait_pod_ready, wait_apiservice_available, wait_pvc_bound, rollout_restart,
    wait_rollout) and exec. Every call is recorded as evidence."""

    version: dict[str, Any]

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | Path = "~/.kube/config", context: str | None = None, *,
                        request_timeout: float = 30.0, recorder: Recorder | None = None) -> KubeClient:
        """Load and check a kubeconfig, then ask the server its version (TargetUnreachable if it cannot
        be reached or TLS fails, with the reason)."""
        doc, path = _read_kubeconfig(kubeconfig)
        target = _target(doc, path, context)
        rec = recorder or current()
        _register_credentials(doc, target, rec)
        cfg = Configuration()
        try:
            load_kube_config_from_dict(doc, context=target.context, client_configuration=cfg, persist_config=False,
                                       temp_file_path=None)
        except (ConfigException, ValueError, KeyError) as exc:
            raise KubeConfigError(f"{path}: context {target.context!r} cannot be used: {exc}") from exc
        cfg.retries = urllib3.Retry(total=1, connect=1, read=0, redirect=0, status=0, backoff_factor=0.2)
        auth = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
        if auth:
            rec.redactor.add_secret(auth.split(" ", 1)[-1])
        api = RecordingApiClient(cfg, target, lambda: recorder or current())
        client = cls(target, api, request_timeout, recorder)
        client.version = client.server_version()
        return client

    def describe(self) -> str:
        """The run header's target line."""
        t, version = self.target, self.version.get("gitVersion", "?")
        if t.is_double:
            return f"API double at {t.server} (reports Kubernetes {version})"
        return f"cluster API {t.server} (context {t.context}, user {t.user}, Kubernetes {version})"

    def close(self) -> None:
        self.api.close()


def _read_kubeconfig(kubeconfig: str | Path) -> tuple[dict[str, Any], Path]:
    path = Path(kubeconfig).expanduser()
    if not path.is_file():
        raise KubeConfigError(f"kubeconfig {path} does not exist (set kube.kubeconfig in the parameters; "
                              f"kubeadm writes /etc/kubernetes/admin.conf on the control plane)")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise KubeConfigError(f"kubeconfig {path} cannot be read as YAML: {exc}") from exc
    if not isinstance(doc, dict) or not doc.get("contexts"):
        raise KubeConfigError(f"kubeconfig {path} has no contexts")
    return doc, path


def _target(doc: dict[str, Any], path: Path, context: str | None) -> KubeTarget:
    contexts = {c.get("name"): c.get("context") or {} for c in doc.get("contexts") or []}
    name = context or doc.get("current-context")
    if not name:
        raise KubeConfigError(f"kubeconfig {path} has no current-context; set kube.context to one of: "
                              f"{', '.join(sorted(map(str, contexts)))}")
    if name not in contexts:
        raise KubeConfigError(f"context {name!r} is not in kubeconfig {path}; known contexts: "
                              f"{', '.join(sorted(map(str, contexts)))}")
    ctx = contexts[name]
    clusters = {c.get("name"): c.get("cluster") or {} for c in doc.get("clusters") or []}
    cluster = clusters.get(ctx.get("cluster"))
    if cluster is None or not cluster.get("server"):
        raise KubeConfigError(f"context {name!r} in {path} names cluster {ctx.get('cluster')!r}, "
                              "which has no server entry")
    return KubeTarget(str(path), str(name), str(ctx.get("cluster")), str(cluster["server"]),
                      str(ctx.get("user", "")), str(ctx.get("namespace") or "default"))


def _register_credentials(doc: dict[str, Any], target: KubeTarget, rec: Recorder) -> None:
    """Every credential of the kubeconfig's users becomes a redaction value (raw and base64-decoded)."""
    redactors = {id(rec.redactor): rec.redactor, id(default_redactor()): default_redactor()}
    for user in doc.get("users") or []:
        entry = user.get("user") or {}
        values = [entry.get(k) for k in _CREDENTIAL_KEYS]
        auth = entry.get("auth-provider") or {}
        values += [v for k, v in (auth.get("config") or {}).items() if "token" in k or "secret" in k]
        for value in values:
            if not isinstance(value, str) or not value:
                continue
            decoded = ""
            if value and "data" in str(entry):
                try:
                    decoded = base64.b64decode(value, validate=True).decode("utf-8", "replace")
                except ValueError:
                    decoded = ""
            for r in redactors.values():
                r.add_secret(value)
                for line in decoded.splitlines():
                    if len(line) >= 16 and "-----" not in line:
                        r.add_secret(line)


_CLIENTS: weakref.WeakKeyDictionary[Any, KubeClient] = weakref.WeakKeyDictionary()


def connect(run: Any) -> KubeClient:
    """The run's cluster client (created once per run from ``run.params.kube``), named in the header."""
    client = _CLIENTS.get(run)
    if client is None:
        kube = run.params.kube
        client = KubeClient.from_kubeconfig(kube.kubeconfig, kube.context, request_timeout=kube.request_timeout,
                                            recorder=run.recorder)
        _CLIENTS[run] = client
        run.add_target(client.describe())
    return client
