"""Fixed pod IPs (`cni.projectcalico.org/ipAddrs`): the refusal rules, checked before any request,
the annotated workload, and plain explanations of the CNI's sandbox errors.

Rules from Calico's "Use a specific IP address with a pod" page and the cni-plugin source
(docs/calico-ips.md lists the sources): Calico IPAM, policy type k8s (annotations are read only
then), an address inside a pool and not allocated, one pod per template, Recreate.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any

from .parse import CniConfig, Pool, allocated_in_blocks, reserved
from .settings import FixedIp

Obj = dict[str, Any]
ANNOTATION = "cni.projectcalico.org/ipAddrs"
FIP_ANNOTATION = "cni.projectcalico.org/floatingIPs"


@dataclass
class Facts:
    """What the refusal rules need, read from the cluster and the nodes."""

    cni: dict[str, CniConfig]  # node -> its conflist (or calico-config's template as "calico-config")
    pools: list[Pool] | None  # None: the IPPool CRD is not served (pool rules cannot be judged)
    blocks: list[Obj] = field(default_factory=list)
    reservations: list[Obj] = field(default_factory=list)
    pod_ips: dict[str, str] = field(default_factory=dict)  # IP -> "ns/pod" (status.podIPs of live pods)
    live: Obj | None = None  # the workload as it exists now (an update keeps its IP)


def refusals(req: FixedIp, facts: Facts) -> list[str]:
    """Every reason the request cannot work, each with what to do instead; [] = go."""
    out: list[str] = []
    for node, c in sorted(facts.cni.items()):
        if c.error:
            out.append(f"{node}: cannot read the Calico CNI config ({c.error}): Calico CNI must be installed")
        elif c.ipam_type != "calico-ipam":
            out.append(f"{node}: IPAM is {c.ipam_type!r}, not calico-ipam: the CNI plugin rejects ipAddrs "
                       "('ipAddrs is not compatible with configured IPAM'); Calico IPAM is required")
        elif c.policy_type != "k8s":
            out.append(f"{node}: policy.type is {c.policy_type!r}, not k8s: the plugin ignores pod annotations, "
                       "so the pod would get an ordinary IP")
    if not facts.cni:
        out.append("no node reports a Calico CNI config: fixed IPs need Calico CNI with calico-ipam")
    ip = ipaddress.ip_address(req.ip)
    inside = [p for p in facts.pools or [] if ip.version == p.cidr.version and ip in p.cidr]
    if facts.pools is None:
        pass  # the caller reports why the pools are unknown
    elif not inside:
        cidrs = ", ".join(str(p.cidr) for p in facts.pools) or "none"
        out.append(f"{req.ip} is outside every IPPool ({cidrs}): the CNI fails with 'not in a configured pool'; "
                   "pick an address in a pool or add a pool for it")
    elif all(p.disabled for p in inside):
        out.append(f"{req.ip} is only in disabled pool(s) {', '.join(p.name for p in inside)}")
    elif not any("Workload" in p.allowed_uses for p in inside):
        out.append(f"{req.ip} is in pool(s) whose allowedUses exclude Workload")
    if req.kind == "StatefulSet":
        out.append("a StatefulSet shares one pod template, and ipAddrs takes one IP per pod: one IP per replica "
                   "is not supported upstream (projectcalico/calico#1352). Use one Deployment (replicas 1, "
                   "Recreate) per fixed IP, or a Service with a fixed clusterIP")
    if req.replicas > 1:
        out.append(f"replicas {req.replicas}: every pod of the template would ask for {req.ip}; only one can "
                   "have it, the others stay ContainerCreating. Use replicas 1")
    if req.kind == "Deployment" and req.strategy == "RollingUpdate":
        out.append("strategy RollingUpdate starts the new pod while the old one still holds the IP: the new pod "
                   "waits forever in ContainerCreating (projectcalico/calico#4694). Use strategy Recreate")
    owner = _owner(ip, facts)
    if owner:
        out.append(f"{req.ip} is already allocated ({owner}): the CNI fails with 'already assigned in block'; "
                   "free it first or pick another address")
    return out


def _owner(ip: Any, facts: Facts) -> str | None:
    """Who holds the IP now, unless it is the requested workload's own pod (an update keeps it)."""
    own = _own_prefix(facts.live)
    holder = facts.pod_ips.get(str(ip))
    if holder and not (own and holder.split("/", 1)[1].startswith(own)):
        return f"pod {holder}"
    handle = allocated_in_blocks(ip, facts.blocks)
    if handle and not holder and not (own and own in handle):
        return f"IPAM handle {handle}"
    return None


def _own_prefix(live: Obj | None) -> str | None:
    return f"{live['metadata']['name']}-" if live else None


def advice(req: FixedIp, facts: Facts) -> list[str]:
    """Not refusals: how to stop Calico from handing the IP to another pod meanwhile."""
    ip = ipaddress.ip_address(req.ip)
    inside = [p for p in facts.pools or [] if ip.version == p.cidr.version and ip in p.cidr]
    if any(p.manual_only for p in inside) or any(ip in n for n in reserved(facts.reservations)
                                                if n.version == ip.version):
        return []
    return [f"{req.ip} lies in an auto-assigned pool and is not reserved: another pod may get it first. Reserve "
            "it (an IPReservation with reservedCIDRs [" + f"{req.ip}/{ip.max_prefixlen}" + "], or a pool with "
            "nodeSelector '!all()' for fixed IPs)"]


def render(req: FixedIp) -> Obj:
    """The Deployment with the annotation on its pod template (it must be there at pod creation)."""
    labels = {"app": req.name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": req.name, "namespace": req.namespace, "labels": labels},
            "spec": {"replicas": 1, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels,
                                               "annotations": {ANNOTATION: json.dumps([req.ip])}},
                                  "spec": {"containers": [{"name": req.name, "image": req.image}]}}}}


ALLOCATED = ("the IP is still allocated (an old pod, or a pod on a dead node, until IPAM garbage collection "
             "releases it, 15 min by default): delete the old pod or release the IP "
             "(calicoctl ipam release --ip=<IP>)")
#: FailedCreatePodSandBox messages of the Calico CNI -> what it means and the fix
EXPLANATIONS = [
    ("not in a configured pool", "the requested IP is outside every enabled IPPool: add a pool or pick an IP in one"),
    ("already assigned in block", ALLOCATED),
    ("resource already exists", ALLOCATED),
    ("not compatible with configured ipam", "the node's CNI does not use calico-ipam: fixed IPs cannot work there"),
    ("requested feature is not enabled", "the floating IP needs feature_control.floating_ips in calico-config "
                                         "and a calico-node restart"),
]


def explain(message: str) -> str | None:
    low = message.lower()
    return next((why for needle, why in EXPLANATIONS if needle in low), None)
