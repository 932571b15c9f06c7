"""Floating IPs (`cni.projectcalico.org/floatingIPs`): readiness of both switches, refusals, the
patches apply makes, and the annotated workload.

Two switches: the CNI's ``feature_control.floating_ips`` (calico-config ``cni_network_config``;
without it the sandbox fails "requested feature is not enabled") and FelixConfiguration
``floatingIPs: Enabled`` (default Disabled since 3.21.5/3.22.2/3.23, calico PR #5861: without it
the pod runs and the floating IP never answers). Operator installs do not support floating IPs
(tigera/operator#3648).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from .fixedip import FIP_ANNOTATION
from .parse import CRD_API, CniConfig, Pool, felix_has_fip_switch
from .settings import FloatingIp

Obj = dict[str, Any]


@dataclass
class Install:
    """The Calico install as read from the cluster."""

    mode: str  # "manifest" | "operator" | "none"
    version: tuple[int, int, int] | None
    dataplane: str
    encapsulation: str
    template: CniConfig | None  # calico-config's cni_network_config (manifest installs)
    felix_floating_ips: str | None  # FelixConfiguration default spec.floatingIPs (None: unset = Disabled)
    felix_known: bool = True  # False: the FelixConfiguration CRD is not served (the caller says why)


Row = tuple[str, str, str]  # (check, status, detail)


def readiness(req: FloatingIp, inst: Install, pool_list: list[Pool] | None) -> list[Row]:
    """One row per condition: ``pass`` ready, ``drift`` apply would switch it on, ``fail`` cannot work."""
    rows: list[Row] = []
    if inst.mode == "operator":
        return [("floating IP: install", "fail", "operator-managed Calico does not support floating IPs for "
                 "Kubernetes pods (Tigera's docs; tigera/operator#3648): use a manifest install or a LoadBalancer/"
                 "externalIPs Service")]
    if inst.mode == "none":
        return [("floating IP: install", "fail", "Calico is not installed")]
    fix = "apply with floating_ip.enable and confirm switches it on" if req.enable else "set floating_ip.enable"
    cni_on = bool(inst.template and inst.template.floating_ips)
    rows.append(("floating IP: CNI feature_control", "pass" if cni_on else "drift" if req.enable else "fail",
                 "calico-config cni_network_config has feature_control.floating_ips: true" if cni_on else
                 f"feature_control.floating_ips is not set: the pod would fail 'requested feature is not enabled'; {fix}"))
    felix_on = inst.felix_floating_ips == "Enabled"
    needs_felix = inst.version is None or felix_has_fip_switch(inst.version)
    if not inst.felix_known:
        pass
    elif felix_on or not needs_felix:
        rows.append(("floating IP: Felix floatingIPs", "pass", "FelixConfiguration default floatingIPs: Enabled"
                     if felix_on else "this Calico predates Felix's floatingIPs switch"))
    else:
        rows.append(("floating IP: Felix floatingIPs", "drift" if req.enable else "fail",
                     f"FelixConfiguration default floatingIPs is {inst.felix_floating_ips or 'unset (Disabled)'}: "
                     f"the pod runs but no DNAT/SNAT is programmed and the floating IP never answers; {fix}"))
    if inst.dataplane == "bpf":
        rows.append(("floating IP: dataplane", "warn", "eBPF dataplane: Felix does not program floating IPs "
                                                       "(projectcalico/calico#5251)"))
    if "VXLAN" in inst.encapsulation:
        rows.append(("floating IP: encapsulation", "warn", "VXLAN: floating IP routes are not distributed to other "
                                                           "nodes (projectcalico/calico#5190)"))
    if pool_list is None:  # the caller reports why the pools are unknown
        return rows
    ip = ipaddress.ip_address(req.ip)
    inside = [p.name for p in pool_list if p.cidr.version == ip.version and ip in p.cidr and not p.disabled]
    rows.append(("floating IP: in a pool", "pass" if inside else "fail",
                 f"{req.ip} lies in pool {', '.join(inside)}" if inside else
                 f"{req.ip} is outside every IPPool: Calico advertises floating IPs correctly only inside a pool"))
    return rows


def felix_patch() -> Obj:
    """The FelixConfiguration default as applied (server-side apply: only this field is ours)."""
    return {"apiVersion": CRD_API, "kind": "FelixConfiguration", "metadata": {"name": "default"},
            "spec": {"floatingIPs": "Enabled"}}


def render(req: FloatingIp) -> Obj:
    labels = {"app": req.name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": req.name, "namespace": req.namespace, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels,
                                               "annotations": {FIP_ANNOTATION: json.dumps([req.ip])}},
                                  "spec": {"containers": [{"name": req.name, "image": req.image}]}}}}


def nat_rules(iptables_save: str) -> tuple[bool, dict[str, str], dict[str, str]]:
    """From ``iptables-save -t nat``: whether Felix's floating-IP chains exist, DNAT external -> pod
    IP (cali-fip-dnat) and SNAT pod IP -> external (cali-fip-snat)."""
    chains = {line[1:].split()[0] for line in iptables_save.splitlines() if line.startswith(":")}
    dnat: dict[str, str] = {}
    snat: dict[str, str] = {}
    for line in iptables_save.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != "-A" or words[1] not in ("cali-fip-dnat", "cali-fip-snat"):
            continue
        opt = {words[i]: words[i + 1] for i in range(len(words) - 1) if words[i].startswith("-")}
        if words[1] == "cali-fip-dnat" and "--to-destination" in opt and "-d" in opt:
            dnat[opt["-d"].split("/")[0]] = opt["--to-destination"].split(":")[0]
        elif "--to-source" in opt and "-s" in opt:
            snat[opt["-s"].split("/")[0]] = opt["--to-source"].split(":")[0]
    return {"cali-fip-dnat", "cali-fip-snat"} <= chains, dnat, snat


def nat_verdict(iptables_save: str, fip: str, pod_ip: str) -> tuple[bool, str]:
    """Both NAT rules for ``fip`` <-> ``pod_ip`` present on the pod's node."""
    chains, dnat, snat = nat_rules(iptables_save)
    if not chains:
        return False, "no cali-fip-dnat/cali-fip-snat chains: Felix does not run here (or not in iptables mode)"
    ok = dnat.get(fip) == pod_ip and snat.get(pod_ip) == fip
    return ok, (f"DNAT {fip} -> {dnat.get(fip)}, SNAT {pod_ip} -> {snat.get(pod_ip)}" if ok else
                f"missing: DNAT {fip} -> {pod_ip} {'ok' if dnat.get(fip) == pod_ip else 'absent'}, SNAT {pod_ip} -> "
                f"{fip} {'ok' if snat.get(pod_ip) == fip else 'absent'} (Felix floatingIPs Disabled?)")
