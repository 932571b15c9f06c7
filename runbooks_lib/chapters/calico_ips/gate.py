"""Switch floating IPs on (apply + confirm): calico-config's CNI template and FelixConfiguration,
then calico-node restarted node by node behind a health gate; a failed gate restores both and
restarts the nodes already done, so they run the old configuration again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...kube import KubeClient, KubeError
from . import parse
from .floating import felix_patch
from .state import ClusterState

Obj = dict[str, Any]
NS, CM, KEY = "kube-system", "calico-config", "cni_network_config"
#: (client, node, old pod uid, timeout) -> (healthy, what was seen)
Gate = Callable[[KubeClient, str, str, float], tuple[bool, str]]


@dataclass
class Outcome:
    ok: bool
    detail: str
    restarted: list[str] = field(default_factory=list)


def _pods(kc: KubeClient, node: str | None = None) -> list[Obj]:
    return kc.list_objects("Pod", NS, label_selector="k8s-app=calico-node",
                           field_selector=f"spec.nodeName={node}" if node else None)


def _ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def calico_node_ready(kc: KubeClient, node: str, old_uid: str, timeout: float) -> tuple[bool, str]:
    """A calico-node pod on ``node`` other than the deleted one is Ready: waited by watching the
    DaemonSet (its status changes as the controller replaces the pod and the pod turns Ready), the
    node's pods read at each change."""
    def replaced(ds: Obj | None) -> tuple[bool, str]:
        fresh = [p for p in _pods(kc, node) if p["metadata"].get("uid") != old_uid]
        ready = [p["metadata"]["name"] for p in fresh if _ready(p)]
        if ready:
            return True, f"{ready[0]} Ready"
        return False, f"{fresh[0]['metadata']['name']} not Ready" if fresh else f"no replacement on {node} yet"

    try:
        kc.wait_for("DaemonSet", "calico-node", NS, replaced, what=f"calico-node on {node} replaced and Ready",
                    timeout=timeout)
    except KubeError as exc:
        return False, str(exc)
    return replaced(None)


def _set_felix(kc: KubeClient, value: str | None, existed: bool) -> None:
    if existed:
        kc.patch("FelixConfiguration", "default", None, {"spec": {"floatingIPs": value}},
                 api_version=parse.CRD_API)
    elif value is not None:
        kc.create(felix_patch())
    else:
        kc.delete("FelixConfiguration", "default", None, api_version=parse.CRD_API)


def _restart(kc: KubeClient, pod: Obj) -> None:
    kc.delete("Pod", pod["metadata"]["name"], NS)


def enable_floating_ips(kc: KubeClient, st: ClusterState, gate: Gate, timeout: float) -> Outcome:
    old_text = str(((st.calico_config or {}).get("data") or {}).get(KEY) or "")
    felix = st.felix_default
    old_fip = ((felix or {}).get("spec") or {}).get("floatingIPs")
    kc.patch_configmap_key(CM, NS, KEY, parse.with_floating_ips(old_text))
    _set_felix(kc, "Enabled", felix is not None)
    done: list[str] = []
    pods = sorted(_pods(kc), key=lambda p: p["spec"].get("nodeName", ""))
    for pod in pods:
        node = pod["spec"].get("nodeName", "")
        _restart(kc, pod)
        ok, seen = gate(kc, node, pod["metadata"].get("uid", ""), timeout)
        done.append(node)
        if not ok:
            kc.patch_configmap_key(CM, NS, KEY, old_text)
            _set_felix(kc, old_fip, True)
            if felix is None:
                _set_felix(kc, None, False)
            for again in _pods(kc):
                if again["spec"].get("nodeName") in done:
                    _restart(kc, again)
            return Outcome(False, f"gate failed on {node} ({seen}): calico-config and FelixConfiguration "
                                  f"restored, calico-node restarted again on {', '.join(done)}", done)
    return Outcome(True, f"feature_control.floating_ips and Felix floatingIPs Enabled; calico-node restarted "
                         f"on {', '.join(done)}, each gated Ready", done)
