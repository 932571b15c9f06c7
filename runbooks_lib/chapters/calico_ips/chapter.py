"""Notebook 04's glue: the only module that records checks. Each step reads (or, in apply, changes)
through :mod:`.state`, :mod:`.install`, :mod:`.gate`, judges with the pure modules, and records one
check per finding; an error is an ``error`` check with its traceback in the step's evidence."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from ... import kube
from ...inventory import node_hosts
from ...kube import KubeClient, plan, verify
from ..kube_proxy_modes.chapter import CLUSTER
from . import fixedip, floating, gate, install, netcheck, parse
from .settings import Settings
from .state import ClusterState, reach, read_cluster, read_conflist, read_nat

LAB_NO_CNI = "the lab runs no calico-node and no Calico CNI (no Felix, no pod networking)"


@dataclass
class Cluster:
    kc: KubeClient | None
    state: ClusterState | None = None
    cni: dict[str, parse.CniConfig] = field(default_factory=dict)  # node -> conflist
    error: str = ""

    @property
    def lab(self) -> bool:
        return bool(self.kc and self.kc.target.is_double)


def connect(run: Any) -> Cluster:
    with run.guarded("cluster API", CLUSTER):
        kc = kube.connect(run)
        run.check("cluster API", CLUSTER, "pass", kc.describe())
        return Cluster(kc)
    return Cluster(None, error="no cluster API: see the checks")


def inspect(run: Any, cl: Cluster, s: Settings) -> ClusterState | None:
    """Step 1 (plan): install mode, version and support, dataplane, encapsulation, CRDs, pools."""
    if cl.kc is None:
        return None
    with run.guarded("calico: install", CLUSTER):
        cl.state = read_cluster(cl.kc)
    st = cl.state
    if st is None:
        return None
    inst = st.install()
    source = s.manifest or s.manifest_url
    if inst.mode == "none":
        run.check("calico: install", CLUSTER, "drift" if source else "info",
                  f"no calico-node DaemonSet and no Installation; apply would install from {source}" if source
                  else "Calico is not installed (give calico_ips.manifest to install it)")
        return st
    version = parse.vstr(inst.version) if inst.version else "unknown"
    run.check("calico: install", CLUSTER, "info", f"{inst.mode} install, Calico {version}, dataplane "
              f"{inst.dataplane}, encapsulation {inst.encapsulation}")
    if inst.version:
        run.check("calico: Kubernetes support", CLUSTER, *parse.support(inst.version, st.server_version))
    run.figure("calico_install", {"mode": inst.mode, "version": version, "dataplane": inst.dataplane,
                                  "encapsulation": inst.encapsulation, "kubernetes": st.server_version})
    if st.crd_error:
        status = "n/a in lab" if cl.lab else "fail"
        run.check("calico: CRDs", CLUSTER, status, "Calico custom resources cannot be read "
                  f"({st.crd_error}); IPPools, FelixConfiguration and IPAM blocks are unknown" +
                  (": the lab's seed has calico-node but no Calico CRDs" if cl.lab else ""))
    else:
        _pools_check(run, cl, s, st)
    return st


def _pools_check(run: Any, cl: Cluster, s: Settings, st: ClusterState) -> None:
    pool_list = st.pools or []
    subnet_text = s.pod_subnet or parse.kubeadm_pod_subnet(st.kubeadm_config)
    run.figure("calico_pools", [{"name": p.name, "cidr": str(p.cidr), "nodeSelector": p.node_selector,
                                 "allowedUses": p.allowed_uses, "disabled": p.disabled} for p in pool_list])
    if not pool_list:
        run.check("calico: IPPools", CLUSTER, "n/a in lab" if cl.lab else "fail",
                  "no IPPool: calico-ipam has nothing to assign from" + (
                      " (calico-node creates the default pool from CALICO_IPV4POOL_CIDR at its first start; "
                      f"{LAB_NO_CNI})" if cl.lab else ""))
        return
    run.check("calico: IPPools", CLUSTER, "info", "; ".join(
        f"{p.name} {p.cidr} nodeSelector {p.node_selector} allowedUses {','.join(p.allowed_uses)}"
        f"{' disabled' if p.disabled else ''}" for p in pool_list))
    if subnet_text:
        subnet = ipaddress.ip_network(subnet_text, strict=False)
        outside = [p for p in pool_list if not p.disabled and p.cidr.version == subnet.version
                   and not p.cidr.subnet_of(subnet)]  # type: ignore[arg-type]
        run.check("calico: pools vs podSubnet", CLUSTER, "warn" if outside else "pass",
                  f"pool(s) {', '.join(f'{p.name} {p.cidr}' for p in outside)} outside podSubnet {subnet}: pods get "
                  "addresses kube-proxy's clusterCIDR does not cover" if outside else f"every pool inside {subnet}")
    else:
        run.check("calico: pools vs podSubnet", CLUSTER, "n/a in lab" if cl.lab else "warn",
                  "no kubeadm-config ConfigMap and no calico_ips.pod_subnet: podSubnet unknown")
    clash = [f"{n} {ip} in {p.name} {p.cidr}" for n, ip in st.node_ips.items() if ip
             for p in pool_list if ipaddress.ip_address(ip).version == p.cidr.version
             and ipaddress.ip_address(ip) in p.cidr]
    run.check("calico: pools vs node network", CLUSTER, "fail" if clash else "pass",
              "node addresses inside a pool (routes clash; kubelet 10250 times out later): " + "; ".join(clash)
              if clash else f"no node address ({len(st.node_ips)}) lies in a pool")
    felix = st.felix_default
    run.check("calico: Felix floatingIPs", CLUSTER, "info",
              f"FelixConfiguration default floatingIPs: {((felix or {}).get('spec') or {}).get('floatingIPs')}"
              if felix else "no FelixConfiguration default (floatingIPs Disabled)")


def conflists(run: Any, cl: Cluster, timeout: float = 60.0) -> dict[str, parse.CniConfig]:
    """Step 1 (plan): /etc/cni/net.d/10-calico.conflist on every node over SSH."""
    if cl.kc is None or cl.state is None:
        return {}
    hosts = node_hosts(cl.kc.nodes(), run.params.selected_hosts())
    node_of = {h: n for n, h in hosts.items()}
    if not node_of:
        run.check("calico: CNI conflist", CLUSTER, "warn", "no inventory host matches a cluster node")
        return {}
    outcomes: dict[str, Any] = {}
    with run.guarded("calico: CNI conflist", ", ".join(node_of)):
        outcomes = run.fleet().map(read_conflist, timeout=timeout, hosts=list(node_of))
    for host, out in outcomes.items():
        if not out.ok:
            run.check("calico: CNI conflist", host, "unreachable" if out.unreachable else "error", out.error or "")
            continue
        c: parse.CniConfig = out.value
        cl.cni[node_of[host]] = c
        if c.error:
            run.check("calico: CNI conflist", host, "n/a in lab" if cl.lab else "fail",
                      f"{c.error}" + (f": {LAB_NO_CNI}" if cl.lab else ""))
            continue
        ok = c.ipam_type == "calico-ipam" and c.policy_type == "k8s"
        run.check("calico: CNI conflist", host, "pass" if ok else "warn",
                  f"ipam.type {c.ipam_type}, policy.type {c.policy_type}, feature_control {c.feature_control or '{}'}"
                  + ("" if ok else ": fixed and floating IPs need calico-ipam and policy k8s"))
    return cl.cni


def install_calico(run: Any, cl: Cluster, s: Settings) -> plan.Plan | None:
    """Step 2: the operator's calico.yaml, pool CIDR and mirror patched, planned; applied in apply."""
    if cl.kc is None or not (s.manifest or s.manifest_url):
        return None
    result = None
    with run.guarded("calico: manifest", CLUSTER):
        subnet = s.pod_subnet or parse.kubeadm_pod_subnet(cl.state.kubeadm_config if cl.state else None)
        objs, notes = install.desired(run, s, subnet, cl.kc.server_version().get("gitVersion", ""))
        for note in notes:
            run.check("calico: manifest", CLUSTER, "info", note)
        p = plan.plan(cl.kc, objs)
        if run.params.mode == "apply":
            plan.apply(cl.kc, p)
        p.record(run)
        result = p
        if run.params.mode == "apply" and not any(c.action in ("conflict", "error") for c in p.changes):
            for r in verify.wait_all(cl.kc, install.expectations(objs), timeout=s.rollout_timeout_s):
                r.check(run)
    return result


def fixed_ip(run: Any, cl: Cluster, s: Settings) -> list[str]:
    """Steps 3-4: refusals first (no request is sent when one applies); then render, plan, apply, verify."""
    req = s.fixed_ip
    if req is None or cl.kc is None or cl.state is None:
        return []
    st = cl.state
    template = st.install().template
    cni = dict(cl.cni) or ({"calico-config": template} if template else {})
    facts = fixedip.Facts(cni, st.pools, st.crs.get("IPAMBlock") or [],
                          st.crs.get("IPReservation") or [], st.pod_ips,
                          cl.kc.get_or_none(req.kind, req.name, req.namespace))
    reasons = fixedip.refusals(req, facts)
    host = f"{req.namespace}/{req.name}"
    for why in reasons:
        run.check(f"fixed IP {req.ip}: refused", host, "fail", why)
    if st.crd_error:
        run.check(f"fixed IP {req.ip}: pool and allocation", host, "n/a in lab" if cl.lab else "fail",
                  f"IPPools and IPAM blocks cannot be read ({st.crd_error}): whether {req.ip} is in a pool and "
                  "free is unknown, so nothing is applied")
        return reasons + ["pools unknown"]
    if reasons:
        return reasons
    for tip in fixedip.advice(req, facts):
        run.check(f"fixed IP {req.ip}: reservation", host, "warn", tip)
    with run.guarded(f"fixed IP {req.ip}", host):
        p = plan.plan(cl.kc, [fixedip.render(req)])
        if run.params.mode == "apply":
            plan.apply(cl.kc, p)
            p.record(run)
            _verify_pod_ip(run, cl, req.name, req.namespace, req.ip, s.rollout_timeout_s)
        else:
            p.record(run)
    return []


def _verify_pod_ip(run: Any, cl: Cluster, name: str, ns: str, ip: str, timeout: float) -> None:
    assert cl.kc is not None
    for r in verify.wait_all(cl.kc, [verify.rollout_complete("Deployment", name, ns)], timeout=timeout):
        r.check(run)
    pods = cl.kc.list_objects("Pod", ns, label_selector=f"app={name}")
    got = [(p["metadata"]["name"], (p.get("status") or {}).get("podIP"),
            (p["metadata"].get("annotations") or {}).get("cni.projectcalico.org/podIP")) for p in pods]
    host = f"{ns}/{name}"
    if cl.lab:
        run.check(f"fixed IP {ip}: pod IP", host, "n/a in lab",
                  f"pods {got}: the lab's kubelet assigns IPs itself; {LAB_NO_CNI}")
        return
    ok = bool(got) and all(g[1] == ip and (g[2] or ip).split("/")[0] == ip for g in got)
    run.check(f"fixed IP {ip}: pod IP", host, "pass" if ok else "fail", f"pods (name, podIP, calico podIP): {got}")
    if not ok:
        for p in pods:
            for e in cl.kc.events_for("Pod", p["metadata"]["name"], ns):
                why = fixedip.explain(str(e.get("message", "")))
                if why:
                    run.check(f"fixed IP {ip}: sandbox error", host, "fail", f"{e['message']} -> {why}")


def floating_ip(run: Any, cl: Cluster, s: Settings, check_gate: gate.Gate | None = None) -> list[floating.Row]:
    """Steps 5-6: both switches judged; apply (confirm) switches them on behind a per-node gate."""
    req = s.floating_ip
    if req is None or cl.kc is None or cl.state is None:
        return []
    st = cl.state
    rows = floating.readiness(req, st.install(), st.pools)
    if st.crd_error:
        rows.append(("floating IP: Felix floatingIPs and pool", "n/a in lab" if cl.lab else "fail",
                     f"FelixConfiguration and IPPools cannot be read ({st.crd_error})"))
    host = f"{req.namespace}/{req.name}"
    switching = run.params.mode == "apply" and run.params.confirmed
    blocked = any(r[1] in ("fail", "n/a in lab") for r in rows)
    for check, status, detail in rows:
        if not (status == "drift" and switching and not blocked):  # recorded below, with the switch's outcome
            run.check(check, host, status, detail)
    if blocked:
        return rows
    if run.params.mode == "apply" and not switching and any(r[1] == "drift" for r in rows):
        run.check("floating IP: switch on", CLUSTER, "drift", "needs confirm=<cluster_name>: it restarts "
                  "calico-node on every node")
        return rows
    with run.guarded("floating IP: switch on", host):
        if switching and any(r[1] == "drift" for r in rows):
            outcome = gate.enable_floating_ips(cl.kc, st, check_gate or gate.calico_node_ready,
                                               timeout=s.rollout_timeout_s)
            for check, status, detail in rows:
                if status == "drift":
                    run.check(check, host, "changed" if outcome.ok else "fail", detail)
            run.check("floating IP: switch on", CLUSTER, "changed" if outcome.ok else "fail", outcome.detail)
            if not outcome.ok:
                return rows
        p = plan.plan(cl.kc, [floating.render(req)])
        if run.params.mode == "apply":
            plan.apply(cl.kc, p)
        p.record(run)
        if run.params.mode == "apply":
            _verify_floating(run, cl, req.name, req.namespace, req.ip, s.rollout_timeout_s)
    return rows


def _verify_floating(run: Any, cl: Cluster, name: str, ns: str, fip: str, timeout: float) -> None:
    """The pod's IPNAT (what Calico derives for its WorkloadEndpoint), Felix's NAT rules on the pod's
    node over SSH, and the floating IP reached from another node."""
    assert cl.kc is not None
    host = f"{ns}/{name}"
    for r in verify.wait_all(cl.kc, [verify.rollout_complete("Deployment", name, ns)], timeout=timeout):
        r.check(run)
    pods = cl.kc.list_objects("Pod", ns, label_selector=f"app={name}")
    if not pods:
        run.check("floating IP: NAT on the node", host, "fail", "no pod")
        return
    pod = pods[0]
    node, pod_ip = pod["spec"].get("nodeName", ""), (pod.get("status") or {}).get("podIP", "")
    lab_note = f" ({LAB_NO_CNI}; the outcome is the lab's)" if cl.lab else ""
    calico_ip = (pod["metadata"].get("annotations") or {}).get("cni.projectcalico.org/podIP")
    run.check("floating IP: WorkloadEndpoint ipNATs", host, "n/a in lab" if cl.lab else
              "pass" if calico_ip else "fail",
              f"pod {pod['metadata']['name']} on {node}: podIP {pod_ip}, Calico podIP {calico_ip}; ipNATs "
              f"[{{internalIP: {pod_ip}, externalIP: {fip}}}]" + lab_note)
    hosts = node_hosts(cl.kc.nodes(), run.params.selected_hosts())
    if node not in hosts:
        run.check("floating IP: NAT on the node", host, "warn", f"no inventory host for node {node}: not read")
        return
    ok, seen = floating.nat_verdict(read_nat(run.transport(hosts[node])), fip, pod_ip)
    run.check("floating IP: NAT on the node", hosts[node], "n/a in lab" if cl.lab else "pass" if ok else "fail",
              seen + lab_note)
    others = [h for n, h in hosts.items() if n != node]
    if cl.lab:  # the lab's nodes may reach only each other: no probe is sent to an address no lab node has
        run.check("floating IP: reached from another node", others[0] if others else host, "n/a in lab",
                  f"not probed: {fip} is no lab node's address and {LAB_NO_CNI}")
    elif others:
        ok, seen = reach(run.transport(others[0]), fip, 80)
        run.check("floating IP: reached from another node", others[0], "pass" if ok else "fail", f"{fip}:80 {seen}")


def net_check(run: Any, cl: Cluster, s: Settings) -> list[dict[str, Any]]:
    """Step 7 (apply): net-tools DaemonSet, the probes from each pod, cleanup verified."""
    if cl.kc is None or not s.net_check:
        return []
    ds = netcheck.daemonset(s.net_tools_image, s.net_namespace, _label(run))
    p = plan.plan(cl.kc, [ds])
    if run.params.mode != "apply":
        run.check("net-tools DaemonSet", s.net_namespace, "info", f"apply would run it ({s.net_tools_image}), probe "
                  f"from each pod and delete it: {', '.join(n for n, _ in netcheck.PROBES)}")
        return []
    rows: list[dict[str, Any]] = []
    kc = cl.kc
    try:
        with run.guarded("net-tools DaemonSet", s.net_namespace):
            plan.apply(kc, p)
            p.record(run)
            for r in verify.wait_all(kc, [verify.rollout_complete("DaemonSet", netcheck.NAME, s.net_namespace)],
                                     timeout=s.rollout_timeout_s):
                r.check(run)
            pods = kc.list_objects("Pod", s.net_namespace, label_selector=f"k8s-app={netcheck.NAME}")
            rows = _probe_matrix(run, cl, pods, s.net_namespace)
    finally:
        with run.guarded("net-tools cleanup", s.net_namespace):
            run_id = kube.run_id_of(run)
            gone = kc.delete_by_run_label(run_id, kinds=["DaemonSet", "Pod"], namespace=s.net_namespace)
            selector = f"{kube.RUN_LABEL}={run_id}"
            left = [f"DaemonSet {o['metadata']['name']}" for o in kc.list_objects(
                "DaemonSet", s.net_namespace, label_selector=selector)]
            left += [f"Pod {o['metadata']['name']}" for o in kc.list_objects(
                "Pod", s.net_namespace, label_selector=selector) if not o["metadata"].get("deletionTimestamp")]
            run.check("net-tools cleanup", s.net_namespace, "fail" if left else "pass",
                      f"deleted {len(gone)} object(s) labelled {selector}; left: {', '.join(left) or 'nothing'} "
                      "(pods still terminating are not counted)")
    return rows


def _probe_matrix(run: Any, cl: Cluster, pods: list[dict[str, Any]], ns: str) -> list[dict[str, Any]]:
    assert cl.kc is not None
    rows = []
    ips = {p["spec"].get("nodeName", ""): (p.get("status") or {}).get("podIP") for p in pods}
    for pod in pods:
        node, name = pod["spec"].get("nodeName", ""), pod["metadata"]["name"]
        probes = list(netcheck.PROBES) + [(f"ping {other}", netcheck.pair_probe(ip))
                                          for other, ip in ips.items() if other != node and ip]
        row: dict[str, Any] = {"node": node}
        for label, argv in probes:
            r = cl.kc.exec(name, ns, argv, timeout=20)
            row[label] = "ok" if r.ok else f"exit {r.exit_code}"
            said = (r.stderr or r.stdout).strip().splitlines()[-1:] or [""]
            status = ("n/a in lab" if cl.lab else "pass" if r.ok else "fail")
            run.check(f"net: {label}", node, status, f"exit {r.exit_code} {said[0]}"
                      + (f" ({LAB_NO_CNI}: the outcome is the lab's, not a network's)" if cl.lab else ""))
        rows.append(row)
    return rows


def _label(run: Any) -> dict[str, str]:
    return {kube.RUN_LABEL: kube.run_id_of(run)}




def section(run: Any, *prefixes: str) -> Any:
    """The run's checks whose names start with one of ``prefixes``, as a table for the notebook."""
    frame = run.checks_frame()
    return frame[frame["check"].str.startswith(prefixes)].reset_index(drop=True)


RULES = [
    "fixed IP refused when: a node's conflist is missing or not ipam calico-ipam / policy k8s",
    "fixed IP refused when: the IP is outside every IPPool, only in disabled pools, or in pools without Workload use",
    "fixed IP refused when: the IP is allocated (a live pod's IP, or an IPAM block allocation)",
    "fixed IP refused when: replicas > 1, strategy RollingUpdate (Recreate required), or kind StatefulSet",
    "fixed IP warned when: the IP is in an auto-assigned pool and not reserved (IPReservation or a '!all()' pool)",
    "floating IP refused when: operator install, outside every pool, or a switch off without floating_ip.enable",
    "floating IP warned when: eBPF dataplane (not programmed) or VXLAN (not routed)",
]
