"""cStor (legacy): a CStorPoolCluster rendered from the BlockDevices the operator names, refused
locally the way the cstor admission webhook refuses it, and the volume health chain (pure).

Webhook rules followed (openebs-archive/cstor-operators, validated before any request here): every
BlockDevice exists, is Active and Unclaimed, has no filesystem ("invalid pool spec: block device has
file system {ext4}", e2e-tests#492), belongs to the pool's node, appears once; a raid group holds a
multiple of 2 (mirror), 3 (raidz) or 6 (raidz2) devices, a stripe at least one. The StorageClass's
replicaCount cannot exceed the pool instances.
"""

from __future__ import annotations

from typing import Any

from .settings import CStorPool, Settings

Obj = dict[str, Any]
GROUP = {"stripe": 1, "mirror": 2, "raidz": 3, "raidz2": 6}
CSPC_NAME = "cstor-disk-pool"
CLASS_NAME = "cstor-csi-disk"
BD_API = "openebs.io/v1alpha1"
CSTOR_API = "cstor.openebs.io/v1"


def bd_node(bd: Obj) -> str:
    spec = bd.get("spec") or {}
    labels = (bd.get("metadata") or {}).get("labels") or {}
    return str((spec.get("nodeAttributes") or {}).get("nodeName") or labels.get("kubernetes.io/hostname", ""))


def validate(pools: list[CStorPool], bds: list[Obj], replica_count: int) -> list[str]:
    """Every reason the webhook (or the class) would refuse this pool set; [] when valid."""
    by_name = {b["metadata"]["name"]: b for b in bds}
    errors: list[str] = []
    seen: dict[str, str] = {}
    if not pools:
        errors.append("no pools: name at least one node and its BlockDevices (openebs_storage.cstor_pools)")
    for p in pools:
        n = len(p.block_devices)
        if p.raid == "stripe" and n < 1 or p.raid != "stripe" and n % GROUP[p.raid]:
            errors.append(f"{p.node}: {p.raid} needs a multiple of {GROUP[p.raid]} block devices, got {n}")
        for name in p.block_devices:
            if name in seen:
                errors.append(f"{name} is used twice ({seen[name]} and {p.node})")
            seen[name] = p.node
            bd = by_name.get(name)
            if bd is None:
                errors.append(f"{p.node}: BlockDevice {name} does not exist")
                continue
            fs = ((bd.get("spec") or {}).get("filesystem") or {}).get("fsType")
            status = bd.get("status") or {}
            if fs:
                errors.append(f"{name}: block device has file system {{{fs}}}")
            if status.get("claimState", "Unclaimed") != "Unclaimed":
                errors.append(f"{name}: claimState {status.get('claimState')} (already claimed)")
            if status.get("state", "Active") != "Active":
                errors.append(f"{name}: state {status.get('state')} (not Active)")
            if bd_node(bd) != p.node:
                errors.append(f"{name} is on node {bd_node(bd) or '?'}, not {p.node}")
    if pools and replica_count > len(pools):
        errors.append(f"replicaCount {replica_count} exceeds the {len(pools)} pool instance(s)")
    return errors


def render(s: Settings) -> list[Obj]:
    """The CStorPoolCluster and its StorageClass (as in the seed, with the operator's devices)."""
    pools = []
    for p in s.cstor_pools:
        size = GROUP[p.raid] if p.raid != "stripe" else len(p.block_devices)
        groups = [p.block_devices[i:i + size] for i in range(0, len(p.block_devices), max(size, 1))]
        pools.append({"nodeSelector": {"kubernetes.io/hostname": p.node},
                      "dataRaidGroups": [{"blockDevices": [{"blockDeviceName": b} for b in g]} for g in groups],
                      "poolConfig": {"dataRaidGroupType": p.raid}})
    cspc = {"apiVersion": CSTOR_API, "kind": "CStorPoolCluster",
            "metadata": {"name": CSPC_NAME, "namespace": s.namespace}, "spec": {"pools": pools}}
    sc = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": CLASS_NAME},
          "provisioner": "cstor.csi.openebs.io", "allowVolumeExpansion": True,
          "parameters": {"cas-type": "cstor", "cstorPoolCluster": CSPC_NAME,
                         "replicaCount": str(s.cstor_replica_count)}}
    return [cspc, sc]


def _phase(obj: Obj | None) -> str:
    return str(((obj or {}).get("status") or {}).get("phase") or "absent")


def health_chain(pvc: Obj, cvc: Obj | None, cv: Obj | None, cvrs: list[Obj]) -> list[tuple[str, bool, str]]:
    """PVC Bound → CVC Bound → CV Healthy → every CVR Healthy: (link, ok, state) in order; the
    first link that is not ok is where to look."""
    chain = [("PVC Bound", _phase(pvc) == "Bound", _phase(pvc)),
             ("CVC Bound", _phase(cvc) == "Bound", _phase(cvc)),
             ("CV Healthy", _phase(cv) == "Healthy", _phase(cv))]
    states = [f"{r['metadata']['name']}={_phase(r)}" for r in cvrs]
    chain.append(("CVRs Healthy", bool(cvrs) and all(_phase(r) == "Healthy" for r in cvrs),
                  ", ".join(states) or "none"))
    return chain


def pool_instances(cspis: list[Obj]) -> list[tuple[str, bool, str]]:
    """(CSPI name, ONLINE?, phase) per pool instance."""
    return [(c["metadata"]["name"], _phase(c) == "ONLINE", _phase(c)) for c in cspis]


def chain_verdict(chain: list[tuple[str, bool, str]]) -> tuple[str, str]:
    """(pass|fail, "PVC Bound: Bound → … (first broken: …)") of a volume's health chain."""
    bad = next((link for link in chain if not link[1]), None)
    text = " → ".join(f"{n}: {st}" for n, _, st in chain)
    return ("pass", text) if bad is None else ("fail", f"{text} (first broken: {bad[0]})")
