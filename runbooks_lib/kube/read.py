"""Read helpers: objects as plain dicts, node summaries as dataclasses, tables as pandas frames."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .core import KubeCore
from .errors import KubeNotFound

Obj = dict[str, Any]


@dataclass
class NodeInfo:
    """What the chapters need to know about a node, from its Node object."""

    name: str
    roles: list[str]
    internal_ip: str | None
    ready: bool
    kubelet_version: str
    kernel_version: str
    os_image: str
    container_runtime: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def is_control_plane(self) -> bool:
        return "control-plane" in self.roles


def node_info(obj: Obj) -> NodeInfo:
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    labels = meta.get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")) or ["worker"]
    addrs = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    info = status.get("nodeInfo") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return NodeInfo(meta.get("name", ""), roles, addrs.get("InternalIP"), ready, info.get("kubeletVersion", ""),
                    info.get("kernelVersion", ""), info.get("osImage", ""), info.get("containerRuntimeVersion", ""),
                    labels)


def condition(obj: Obj | None, ctype: str) -> Obj | None:
    """The status condition of type ``ctype`` of an object, or None."""
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return dict(c)
    return None


def dig(obj: Any, dotted: str, default: Any = None) -> Any:
    """``dig(pod, "status.phase")``; list indexes as numbers ("spec.containers.0.image")."""
    for part in dotted.split("."):
        if isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        elif isinstance(obj, dict) and part in obj:
            obj = obj[part]
        else:
            return default
    return obj


def frame(objects: list[Obj], columns: dict[str, str]) -> Any:
    """A pandas DataFrame with one row per object: ``{"column": "dotted.path"}``."""
    import pandas as pd

    return pd.DataFrame([{col: dig(o, path) for col, path in columns.items()} for o in objects],
                        columns=list(columns))


class ReadOps(KubeCore):
    """get / list / raw GET / events."""

    def get(self, kind: str, name: str, namespace: str | None = None, api_version: str | None = None) -> Obj:
        """One object (KubeNotFound when absent)."""
        return dict(self.request("GET", self.path_for(kind, name, namespace, api_version)).data)

    def get_or_none(self, kind: str, name: str, namespace: str | None = None,
                    api_version: str | None = None) -> Obj | None:
        try:
            return self.get(kind, name, namespace, api_version)
        except KubeNotFound:
            return None

    def list_objects(self, kind: str, namespace: str | None = None, *, label_selector: str | None = None,
                     field_selector: str | None = None, api_version: str | None = None) -> list[Obj]:
        """Objects of a kind (all namespaces when ``namespace`` is None), filtered server-side."""
        rt = self.resource(kind, api_version)
        doc = self.request("GET", rt.base(namespace if rt.namespaced else None),
                           query={"labelSelector": label_selector, "fieldSelector": field_selector}).data
        items = doc.get("items") or []
        for item in items:  # list items carry no kind/apiVersion on a real server
            item.setdefault("kind", rt.kind)
            item.setdefault("apiVersion", rt.api_version)
        return items

    def raw_get(self, path: str) -> Any:
        """GET any API path: JSON as a dict (``/apis/metrics.k8s.io/v1beta1/nodes``), text as str
        (``/readyz?verbose``)."""
        return self.request("GET", path).data

    def nodes(self, label_selector: str | None = None) -> list[NodeInfo]:
        return [node_info(o) for o in self.list_objects("Node", label_selector=label_selector)]

    def server_version(self) -> Obj:
        return dict(self.request("GET", "/version").data)

    def events_for(self, kind: str, name: str, namespace: str | None = None, limit: int = 20) -> list[Obj]:
        """Events about one object, oldest first: time, type, reason, message, count, source."""
        ns = namespace or ("default" if self.resource(kind).namespaced else None)
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        items = self.list_objects("Event", ns, field_selector=selector)
        rows = [{"time": e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp") or "",
                 "type": e.get("type", ""), "reason": e.get("reason", ""), "message": e.get("message", ""),
                 "count": e.get("count", 1),
                 "source": (e.get("source") or {}).get("component") or e.get("reportingComponent", "")}
                for e in items]
        rows.sort(key=lambda r: r["time"])
        return rows[-limit:]
