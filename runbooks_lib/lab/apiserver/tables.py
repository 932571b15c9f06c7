"""Server-side printing: ``Accept: application/json;as=Table;g=meta.k8s.io;v=v1`` answers a
``meta.k8s.io/v1`` Table with the columns kube-apiserver's printers give the built-in kinds (priority 1
columns are the ones ``-o wide`` adds). Kinds without printer columns get Name and Age, as a real server
prints a type it has no printer for.

https://kubernetes.io/docs/reference/using-api/api-concepts/#receiving-resources-as-tables
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from runbooks_lib.kube.paths import ResourceType

from .errors import Obj

Cells = list[Any]
Column = tuple[str, str, int]  # (name, type, priority)


def wants_table(accept: str) -> bool:
    return any("as=Table" in part and "g=meta.k8s.io" in part for part in accept.split(","))


def age(obj: Obj, now: dt.datetime | None = None) -> str:
    """``creationTimestamp`` as apimachinery's HumanDuration prints it (``45s``, ``5m2s``, ``3h``, ``4d``)."""
    ts = (obj.get("metadata") or {}).get("creationTimestamp")
    if not ts:
        return "<unknown>"
    born = dt.datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    s = max(int(((now or dt.datetime.now(dt.UTC)) - born).total_seconds()), 0)
    m, h, d = s // 60, s // 3600, s // 86400
    if s < 120:
        return f"{s}s"
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if h < 3:
        return f"{m}m"
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if d < 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    return f"{d}d" if d < 365 * 2 else f"{d // 365}y"


def _labels(sel: Obj | None) -> str:
    return ",".join(f"{k}={v}" for k, v in (sel or {}).items()) or "<none>"


def _containers(spec: Obj) -> tuple[str, str]:
    cs = spec.get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _node(o: Obj) -> Cells:
    st, meta = o.get("status") or {}, o["metadata"]
    ready = next((c for c in st.get("conditions") or [] if c.get("type") == "Ready"), None)
    status = "Ready" if ready and ready.get("status") == "True" else "NotReady" if ready else "Unknown"
    if (o.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    roles = sorted(k.split("/", 1)[1] for k in meta.get("labels") or {} if k.startswith("node-role.kubernetes.io/"))
    addr = {a.get("type"): a.get("address") for a in st.get("addresses") or []}
    info = st.get("nodeInfo") or {}
    return [status, ",".join(roles) or "<none>", age(o), info.get("kubeletVersion", ""),
            addr.get("InternalIP", "<none>"), addr.get("ExternalIP", "<none>"), info.get("osImage", ""),
            info.get("kernelVersion", ""), info.get("containerRuntimeVersion", "")]


def _pod(o: Obj) -> Cells:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    statuses = st.get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    reason = st.get("reason") or st.get("phase") or "Pending"
    for c in statuses:
        waiting = (c.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            reason = waiting["reason"]
    if o["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return [f"{ready}/{len(spec.get('containers') or [])}", reason,
            sum(int(c.get("restartCount") or 0) for c in statuses), age(o), st.get("podIP") or "<none>",
            spec.get("nodeName") or "<none>", st.get("nominatedNodeName") or "<none>", "<none>"]


def _workload(o: Obj) -> tuple[Obj, Obj, str, str]:
    spec = o.get("spec") or {}
    names, images = _containers(((spec.get("template") or {}).get("spec")) or {})
    return spec, o.get("status") or {}, names, images


def _deployment(o: Obj) -> Cells:
    spec, st, names, images = _workload(o)
    return [f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 1)}", st.get("updatedReplicas", 0),
            st.get("availableReplicas", 0), age(o), names, images,
            _labels((spec.get("selector") or {}).get("matchLabels"))]


def _replicaset(o: Obj) -> Cells:
    spec, st, names, images = _workload(o)
    return [spec.get("replicas", 1), st.get("replicas", 0), st.get("readyReplicas", 0), age(o), names, images,
            _labels((spec.get("selector") or {}).get("matchLabels"))]


def _daemonset(o: Obj) -> Cells:
    spec, st, names, images = _workload(o)
    sel = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector")
    return [st.get("desiredNumberScheduled", 0), st.get("currentNumberScheduled", 0), st.get("numberReady", 0),
            st.get("updatedNumberScheduled", 0), st.get("numberAvailable", 0), _labels(sel), age(o), names, images,
            _labels((spec.get("selector") or {}).get("matchLabels"))]


def _statefulset(o: Obj) -> Cells:
    spec, st, names, images = _workload(o)
    return [f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 1)}", age(o), names, images]


def _service(o: Obj) -> Cells:
    spec = o.get("spec") or {}
    kind = spec.get("type", "ClusterIP")
    ports = ",".join(f"{p.get('port')}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p.get('protocol', 'TCP')}"
                     for p in spec.get("ports") or []) or "<none>"
    ingress = [i.get("ip") or i.get("hostname") for i in ((o.get("status") or {}).get("loadBalancer") or {})
               .get("ingress") or []]
    external = ",".join(ingress + list(spec.get("externalIPs") or [])) or (
        "<pending>" if kind == "LoadBalancer" else spec.get("externalName", "<none>"))
    return [kind, spec.get("clusterIP") or "<none>", external, ports, age(o), _labels(spec.get("selector"))]


def _csr(o: Obj) -> Cells:
    spec = o.get("spec") or {}
    conds = [c.get("type") for c in (o.get("status") or {}).get("conditions") or []]
    if (o.get("status") or {}).get("certificate") and "Approved" in conds:
        conds.append("Issued")
    secs = spec.get("expirationSeconds")
    return [age(o), spec.get("signerName", ""), spec.get("username", ""), f"{secs // 60}m" if secs else "<none>",
            ",".join(conds) or "Pending"]


def _pvc(o: Obj) -> Cells:
    spec, st = o.get("spec") or {}, o.get("status") or {}
    modes = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
    return [st.get("phase", "Pending"), spec.get("volumeName", ""), (st.get("capacity") or {}).get("storage", ""),
            ",".join(modes.get(m, m) for m in st.get("accessModes") or []), spec.get("storageClassName") or "",
            spec.get("volumeAttributesClassName") or "<unset>", age(o), spec.get("volumeMode", "Filesystem")]


def _event(o: Obj) -> Cells:
    inv, src = o.get("involvedObject") or {}, o.get("source") or {}
    seen = {"metadata": {"creationTimestamp": o.get("lastTimestamp") or o.get("eventTime")
                         or o["metadata"].get("creationTimestamp")}}
    first = {"metadata": {"creationTimestamp": o.get("firstTimestamp") or seen["metadata"]["creationTimestamp"]}}
    return [age(seen), o.get("type", ""), o.get("reason", ""), f"{inv.get('kind', '').lower()}/{inv.get('name', '')}",
            inv.get("fieldPath", ""), ", ".join(x for x in (src.get("component"), src.get("host")) if x),
            o.get("message", ""), age(first), o.get("count", 1), o["metadata"]["name"]]


def _apiservice(o: Obj) -> Cells:
    svc = (o.get("spec") or {}).get("service")
    cond: Obj = next((c for c in (o.get("status") or {}).get("conditions") or [] if c.get("type") == "Available"), {})
    avail = cond.get("status", "Unknown") + (f" ({cond['reason']})" if cond.get("status") == "False" else "")
    return [f"{svc['namespace']}/{svc['name']}" if svc else "Local", avail, age(o)]


_S, _I = "string", "integer"
_WL = [("Containers", _S, 1), ("Images", _S, 1), ("Selector", _S, 1)]
PRINTERS: dict[str, tuple[list[Column], Callable[[Obj], Cells]]] = {
    "Node": ([("Status", _S, 0), ("Roles", _S, 0), ("Age", _S, 0), ("Version", _S, 0), ("Internal-IP", _S, 1),
              ("External-IP", _S, 1), ("OS-Image", _S, 1), ("Kernel-Version", _S, 1),
              ("Container-Runtime", _S, 1)], _node),
    "Pod": ([("Ready", _S, 0), ("Status", _S, 0), ("Restarts", _S, 0), ("Age", _S, 0), ("IP", _S, 1),
             ("Node", _S, 1), ("Nominated Node", _S, 1), ("Readiness Gates", _S, 1)], _pod),
    "Namespace": ([("Status", _S, 0), ("Age", _S, 0)],
                  lambda o: [(o.get("status") or {}).get("phase", "Active"), age(o)]),
    "Deployment": ([("Ready", _S, 0), ("Up-to-date", _I, 0), ("Available", _I, 0), ("Age", _S, 0), *_WL],
                   _deployment),
    "ReplicaSet": ([("Desired", _I, 0), ("Current", _I, 0), ("Ready", _I, 0), ("Age", _S, 0), *_WL], _replicaset),
    "DaemonSet": ([("Desired", _I, 0), ("Current", _I, 0), ("Ready", _I, 0), ("Up-to-date", _I, 0),
                   ("Available", _I, 0), ("Node Selector", _S, 0), ("Age", _S, 0), *_WL], _daemonset),
    "StatefulSet": ([("Ready", _S, 0), ("Age", _S, 0), ("Containers", _S, 1), ("Images", _S, 1)], _statefulset),
    "Service": ([("Type", _S, 0), ("Cluster-IP", _S, 0), ("External-IP", _S, 0), ("Port(s)", _S, 0),
                 ("Age", _S, 0), ("Selector", _S, 1)], _service),
    "ConfigMap": ([("Data", _I, 0), ("Age", _S, 0)],
                  lambda o: [len(o.get("data") or {}) + len(o.get("binaryData") or {}), age(o)]),
    "Secret": ([("Type", _S, 0), ("Data", _I, 0), ("Age", _S, 0)],
               lambda o: [o.get("type", "Opaque"), len(o.get("data") or {}), age(o)]),
    "ServiceAccount": ([("Secrets", _I, 0), ("Age", _S, 0)], lambda o: [len(o.get("secrets") or []), age(o)]),
    "StorageClass": ([("Provisioner", _S, 0), ("ReclaimPolicy", _S, 0), ("VolumeBindingMode", _S, 0),
                      ("AllowVolumeExpansion", _S, 0), ("Age", _S, 0)],
                     lambda o: [o.get("provisioner", ""), o.get("reclaimPolicy", "Delete"),
                                o.get("volumeBindingMode", "Immediate"), bool(o.get("allowVolumeExpansion")),
                                age(o)]),
    "CertificateSigningRequest": ([("Age", _S, 0), ("SignerName", _S, 0), ("Requestor", _S, 0),
                                   ("RequestedDuration", _S, 0), ("Condition", _S, 0)], _csr),
    "PersistentVolumeClaim": ([("Status", _S, 0), ("Volume", _S, 0), ("Capacity", _S, 0), ("Access Modes", _S, 0),
                               ("StorageClass", _S, 0), ("VolumeAttributesClass", _S, 0), ("Age", _S, 0),
                               ("VolumeMode", _S, 1)], _pvc),
    "Event": ([("Last Seen", _S, 0), ("Type", _S, 0), ("Reason", _S, 0), ("Object", _S, 0), ("Subobject", _S, 1),
               ("Source", _S, 1), ("Message", _S, 0), ("First Seen", _S, 1), ("Count", _I, 1), ("Name", _S, 1)],
              _event),
    "APIService": ([("Service", _S, 0), ("Available", _S, 0), ("Age", _S, 0)], _apiservice),
    "ClusterRole": ([("Created At", "date", 0)], lambda o: [o["metadata"].get("creationTimestamp", "")]),
    "Role": ([("Created At", "date", 0)], lambda o: [o["metadata"].get("creationTimestamp", "")]),
}
_DEFAULT: tuple[list[Column], Callable[[Obj], Cells]] = ([("Age", _S, 0)], lambda o: [age(o)])


def _partial(obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def _json_path(obj: Any, path: str) -> Any:
    """A CRD printer column's simple JSONPath (``.spec.replicas``, ``.status.phase``)."""
    for part in path.strip().lstrip(".").split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def crd_printer(crd: Obj, version: str) -> tuple[list[Column], Callable[[Obj], Cells]] | None:
    """A CRD's ``additionalPrinterColumns`` for ``version`` (an Age column where it names creationTimestamp)."""
    served: Obj = next((v for v in (crd.get("spec") or {}).get("versions") or [] if v.get("name") == version), {})
    cols = served.get("additionalPrinterColumns") or []
    if not cols:
        return None
    columns = [(c["name"], c.get("type", "string"), int(c.get("priority", 0))) for c in cols]

    def cells(o: Obj) -> Cells:
        out: Cells = []
        for c in cols:
            value = _json_path(o, c.get("jsonPath", ""))
            out.append(age(o) if c.get("jsonPath") == ".metadata.creationTimestamp" else
                       "<none>" if value is None else value)
        return out
    return columns, cells


def table(rt: ResourceType, items: list[Obj], rv: str, include: str = "Metadata", crd: Obj | None = None) -> Obj:
    """The Table for ``items`` of type ``rt`` (``include``: the ``includeObject`` parameter; ``crd``: the
    type's CustomResourceDefinition, whose printer columns then apply)."""
    columns, cells = (crd and crd_printer(crd, rt.version)) or PRINTERS.get(rt.kind, _DEFAULT)
    # Events print their name last, as a wide column; every other kind starts with it
    named = columns[-1][0] != "Name"
    defs = [{"name": "Name", "type": "string", "format": "name", "priority": 0,
             "description": "Name must be unique within a namespace."}] if named else []
    defs += [{"name": n, "type": t, "format": "name" if n == "Name" else "", "priority": p, "description": ""}
             for n, t, p in columns]
    rows = [{"cells": [o["metadata"]["name"]] * named + cells(o)[:len(columns)], "object": _partial(o, include)}
            for o in items]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
            "columnDefinitions": defs, "rows": rows}
