#!/usr/bin/env python3
"""kube-proxy dataplane benchmark: the node-side program (stdlib only, Python 3.9+).

It is sent to a node over SSH (``python3 - ARGS`` with this file on stdin) or run locally, as
root. For one service count N it builds, inside network namespaces created for the run:

* ``<prefix>-ep<i>`` (i < E): an endpoint namespace per endpoint index with a real TCP listener
  (a forked accept loop) answering on every address of ``10.(200+i).0.0/16`` (an AnyIP
  ``local`` route on lo). Endpoint i of service s is ``10.(200+i).(s>>8).(s&255):8080``.
* ``<prefix>-c<mode><N>``: a client namespace per proxy mode and N, joined
  to every endpoint namespace by a veth pair (``100.(64+slot).(16*mode+i).1/30`` <-> ``.2/30``,
  so namespaces of several modes and N can live at once). ClusterIPs are
  ``172.30.(s>>8).(s&255):80``. All of these addresses exist only inside those namespaces.

The rules are kube-proxy's own layout, loaded into the *client* namespace, where the probe's
connections originate; as for any host-network client on a node they are DNATed in the nat
OUTPUT hook (kube-proxy hooks the same chains into PREROUTING for pod traffic) and, coming
from outside the cluster CIDR, marked for masquerade and SNATed in POSTROUTING.

* iptables: Kubernetes v1.31 ``pkg/proxy/iptables/proxier.go``: KUBE-SERVICES ->
  KUBE-SVC-<hash> (statistic random 1/n, 1/(n-1), ...) -> KUBE-SEP-<hash> (KUBE-MARK-MASQ
  hairpin rule + DNAT), KUBE-MARK-MASQ, KUBE-POSTROUTING; one ``iptables-restore``. The
  incremental add is kube-proxy's partial sync (``--noflush``: KUBE-SERVICES rewritten in
  full, plus the new service's chains).
* nftables: Kubernetes v1.31 ``pkg/proxy/nftables/proxier.go`` (partial sync, PR #126013):
  table ``ip kube-proxy``, ``service-ips`` verdict map keyed ``ip daddr . meta l4proto .
  th dport``, ``service-<hash>-ns/name/tcp/port`` chains with ``numgen random mod N vmap``,
  ``endpoint-<hash>-...`` chains with ``dnat to``, ``mark-for-masquerade``/``masquerading``;
  one ``nft -f`` transaction; the incremental add is one transaction for the new service.
* ipvs: virtual servers + real servers (``ipvsadm-restore``), the ``kube-ipvs0`` dummy
  interface holding the ClusterIPs, the ``KUBE-CLUSTER-IP`` ipset and its iptables rules. Only
  where the kernel has IPVS; otherwise the mode is reported ``unavailable`` with the reason.

Per mode and N it times the full programming and the incremental add of service N+1 (what
each timer covers, and how many processes it starts, is in ``TIMED``) and leaves the client
namespaces; ``--probe --grid N1,N2,...`` then measures the new-connection latency (connect()
start to established, blocking socket, fresh source port, RST close) to the last-programmed
service of every kept (mode, N), and the probe's floor (the same loop to an endpoint IP from a
namespace with no rules), in interleaved rounds, and removes everything. Output: one JSON
document on stdout.

Everything is removed in ``finally``, on SIGINT/SIGTERM/SIGHUP, and by ``--cleanup`` (which
the controller always runs afterwards): namespaces (their rules, sets and IPVS services go
with them) and processes named ``<prefix>`` (set with prctl; listeners die with the parent).
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import gc
import hashlib
import json
import os
import platform
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

LAYOUTS = {
    "iptables": "Kubernetes v1.31 pkg/proxy/iptables/proxier.go (partial sync, MinimizeIPTablesRestore)",
    "nftables": "Kubernetes v1.31 pkg/proxy/nftables/proxier.go (partial sync, PR #126013)",
    "ipvs": "Kubernetes v1.31 pkg/proxy/ipvs/proxier.go (kube-ipvs0, KUBE-CLUSTER-IP ipset)",
}
MODES = ("iptables", "nftables", "ipvs")
CLUSTER_CIDR = "10.244.0.0/16"  # the "pod" range kube-proxy's local-traffic detector uses
SERVICE_CIDR = "172.30.0.0/16"
MASQ_MARK = "0x4000"
SVC_PORT = 80
EP_PORT = 8080
NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
MAX_SERVICES = 60000
MAX_ENDPOINTS = 8
MAX_SLOTS = 64  # grid positions: 100.64.0.0/10 holds 64 /16s
CLIENT_TAGS = ("ipt", "nft", "ipvs", "floor")  # client namespace tags; the index picks the address block
MODE_TAGS = {"iptables": "ipt", "nftables": "nft", "ipvs": "ipvs"}
#: what each mode's two timers cover and how many processes they start (kube-proxy itself starts
#: one iptables-restore / nft per sync and makes IPVS and address changes over netlink, in-process)
TIMED = {
    "iptables": {"program": "iptables-restore of the filter and nat tables", "program_processes": 1,
                 "incremental": "iptables-restore --noflush: KUBE-SERVICES in full plus the new Service's chains",
                 "incremental_processes": 1},
    "nftables": {"program": "nft -f, one transaction (or one per --nft-chunk Services)", "program_processes": 1,
                 "incremental": "nft -f, one transaction: the new Service's chains, rules, map and set elements",
                 "incremental_processes": 1},
    "ipvs": {"program": "ip -batch (kube-ipvs0 addresses), ipset restore, iptables-restore, ipvsadm-restore",
             "program_processes": 4,
             "incremental": "ip -batch (kube-ipvs0 address), ipset restore (KUBE-CLUSTER-IP entry), ipvsadm-restore "
                            "(virtual + real servers): 2 process starts more than the other modes, which kube-proxy "
                            "does not pay (netlink)",
             "incremental_processes": 3},
}


# ----------------------------------------------------------------------------- service model

def service(run_id: str, index: int, endpoints: int) -> dict:
    """The synthetic Service number ``index`` (1-based) with ``endpoints`` endpoints."""
    hi, lo = index >> 8, index & 255
    return {
        "namespace": f"kpm-{run_id}",
        "name": f"svc-{index:05d}",
        "port_name": "http",
        "protocol": "tcp",
        "cluster_ip": f"172.30.{hi}.{lo}",
        "port": SVC_PORT,
        "endpoints": [(f"10.{200 + e}.{hi}.{lo}", EP_PORT) for e in range(endpoints)],
    }


def services(run_id: str, count: int, endpoints: int, start: int = 1) -> list:
    return [service(run_id, i, endpoints) for i in range(start, start + count)]


def _b32(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()


def port_name(svc: dict) -> str:
    """proxy.ServicePortName.String(): ``namespace/name:port``."""
    return f"{svc['namespace']}/{svc['name']}:{svc['port_name']}"


def ipt_svc_chain(svc: dict) -> str:
    """iptables proxier servicePortChainName: KUBE-SVC- + base32(sha256(name+proto))[:16]."""
    return "KUBE-SVC-" + _b32(port_name(svc) + svc["protocol"])[:16]


def ipt_sep_chain(svc: dict, ep: tuple) -> str:
    """iptables proxier servicePortEndpointChainName: KUBE-SEP- + hash(name+proto+ip:port)."""
    return "KUBE-SEP-" + _b32(port_name(svc) + svc["protocol"] + f"{ep[0]}:{ep[1]}")[:16]


def _hash_and_truncate(name: str) -> str:
    name = _b32(name)[:8] + "-" + name
    limit = 256 - 16
    return name if len(name) <= limit else name[: limit - 3] + "..."


def nft_svc_chain(svc: dict) -> str:
    """nftables proxier: ``service-`` + HASH-namespace/name/protocol/portName."""
    base = f"{svc['namespace']}/{svc['name']}/{svc['protocol']}/{svc['port_name']}"
    return "service-" + _hash_and_truncate(base)


def nft_ep_chain(svc: dict, ep: tuple) -> str:
    """nftables proxier: ``endpoint-`` + HASH-namespace/name/protocol/portName__ip/port."""
    base = f"{svc['namespace']}/{svc['name']}/{svc['protocol']}/{svc['port_name']}__{ep[0]}/{ep[1]}"
    return "endpoint-" + _hash_and_truncate(base)


# ----------------------------------------------------------------------------- iptables

IPT_FILTER_CHAINS = ("KUBE-NODEPORTS", "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD",
                     "KUBE-PROXY-FIREWALL")
IPT_NAT_CHAINS = ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ")


def _ipt_base_jumps() -> dict:
    """The jumps kube-proxy ensures in the built-in chains (``iptables -I``), per table."""
    return {
        "filter": [
            '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
            '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
            '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
            '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
            '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
            '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
            '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
            '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
            '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        ],
        "nat": [
            '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
            '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
            '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
        ],
    }


def _ipt_filter_rules() -> list:
    return [
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        f'-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT',
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    ]


def _ipt_masq_rules() -> list:
    return [
        f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
        f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK}",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
        f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK}",
    ]


def _ipt_service_dispatch(svc: dict) -> str:
    pn = port_name(svc)
    return (f'-A KUBE-SERVICES -m comment --comment "{pn} cluster IP" -m {svc["protocol"]} -p {svc["protocol"]} '
            f'-d {svc["cluster_ip"]} --dport {svc["port"]} -j {ipt_svc_chain(svc)}')


def _ipt_nodeports_last() -> str:
    return ('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last '
            'rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')


def _ipt_service_chains(svc: dict) -> tuple:
    """(chain declarations, rules) of one service's KUBE-SVC and KUBE-SEP chains."""
    pn, proto = port_name(svc), svc["protocol"]
    svc_chain = ipt_svc_chain(svc)
    decl = [f":{svc_chain} - [0:0]"]
    rules = [f'-A {svc_chain} -m comment --comment "{pn} cluster IP" -m {proto} -p {proto} -d {svc["cluster_ip"]} '
             f'--dport {svc["port"]} ! -s {CLUSTER_CIDR} -j KUBE-MARK-MASQ']
    eps = svc["endpoints"]
    for i, ep in enumerate(eps):
        sep = ipt_sep_chain(svc, ep)
        left = len(eps) - i
        stat = f"-m statistic --mode random --probability {1.0 / left:0.10f} " if left > 1 else ""
        rules.append(f'-A {svc_chain} -m comment --comment "{pn} -> {ep[0]}:{ep[1]}" {stat}-j {sep}')
    for ep in eps:
        sep = ipt_sep_chain(svc, ep)
        decl.append(f":{sep} - [0:0]")
        rules.append(f"-A {sep} -m comment --comment {pn} -s {ep[0]}/32 -j KUBE-MARK-MASQ")
        rules.append(f"-A {sep} -m comment --comment {pn} -m {proto} -p {proto} -j DNAT --to-destination {ep[0]}:{ep[1]}")
    return decl, rules


def iptables_full(svcs: list) -> str:
    """The first sync: both tables in full, built-in chains included (one iptables-restore)."""
    jumps = _ipt_base_jumps()
    out = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    out += [f":{c} - [0:0]" for c in IPT_FILTER_CHAINS]
    out += jumps["filter"] + _ipt_filter_rules() + ["COMMIT"]
    out += ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
            ":POSTROUTING ACCEPT [0:0]"]
    out += [f":{c} - [0:0]" for c in IPT_NAT_CHAINS]
    decls, rules = [], []
    for svc in svcs:
        d, r = _ipt_service_chains(svc)
        decls += d
        rules += r
    out += decls + jumps["nat"] + _ipt_masq_rules()
    out += [_ipt_service_dispatch(s) for s in svcs] + [_ipt_nodeports_last()]
    out += rules + ["COMMIT", ""]
    return "\n".join(out)


def iptables_partial(all_svcs: list, changed: list) -> str:
    """A partial sync (``iptables-restore --noflush``) as kube-proxy >= 1.27 writes it: the
    top-level chains in full (KUBE-SERVICES lists every service), only changed service chains."""
    out = ["*filter"] + [f":{c} - [0:0]" for c in IPT_FILTER_CHAINS] + _ipt_filter_rules() + ["COMMIT"]
    out += ["*nat"] + [f":{c} - [0:0]" for c in IPT_NAT_CHAINS]
    decls, rules = [], []
    for svc in changed:
        d, r = _ipt_service_chains(svc)
        decls += d
        rules += r
    out += decls + _ipt_masq_rules()
    out += [_ipt_service_dispatch(s) for s in all_svcs] + [_ipt_nodeports_last()]
    out += rules + ["COMMIT", ""]
    return "\n".join(out)


# ----------------------------------------------------------------------------- nftables

NFT_TABLE = "ip kube-proxy"
NFT_BASE_CHAINS = (  # name, type, hook, priority (dstnat = -100, srcnat = 100)
    ("filter-prerouting", "filter", "prerouting", -110),
    ("filter-input", "filter", "input", -110),
    ("filter-forward", "filter", "forward", -110),
    ("filter-output", "filter", "output", -110),
    ("filter-output-post-dnat", "filter", "output", -90),
    ("nat-prerouting", "nat", "prerouting", -100),
    ("nat-output", "nat", "output", -100),
    ("nat-postrouting", "nat", "postrouting", 100),
)
NFT_JUMPS = (  # dst chain, src chain, extra match
    ("nodeport-endpoints-check", "filter-input", "ct state new "),
    ("service-endpoints-check", "filter-input", "ct state new "),
    ("service-endpoints-check", "filter-forward", "ct state new "),
    ("service-endpoints-check", "filter-output", "ct state new "),
    ("firewall-check", "filter-prerouting", "ct state new "),
    ("firewall-check", "filter-output", "ct state new "),
    ("services", "nat-output", ""),
    ("services", "nat-prerouting", ""),
    ("masquerading", "nat-postrouting", ""),
    ("cluster-ips-check", "filter-forward", "ct state new "),
    ("cluster-ips-check", "filter-output-post-dnat", "ct state new "),
)


def _nft_setup() -> list:
    """setupNFTables(): table, base chains, jump chains, masquerading, sets and maps."""
    t = NFT_TABLE
    out = [f'add table {t} {{ comment "rules for kube-proxy" ; }}']
    for name, typ, hook, prio in NFT_BASE_CHAINS:
        out += [f"add chain {t} {name} {{ type {typ} hook {hook} priority {prio} ; }}", f"flush chain {t} {name}"]
    created: list = []
    for dst, src, extra in NFT_JUMPS:
        if dst not in created:
            out += [f"add chain {t} {dst}", f"flush chain {t} {dst}"]
            created.append(dst)
        out.append(f"add rule {t} {src} {extra}jump {dst}")
    for chain in ("mark-for-masquerade",):
        out += [f"add chain {t} {chain}", f"flush chain {t} {chain}"]
    out += [
        f"add rule {t} mark-for-masquerade mark set mark or {MASQ_MARK}",
        f"add rule {t} masquerading mark and {MASQ_MARK} == 0 return",
        f"add rule {t} masquerading mark set mark xor {MASQ_MARK}",
        f"add rule {t} masquerading masquerade fully-random",
        f'add set {t} cluster-ips {{ type ipv4_addr ; comment "Active ClusterIPs" ; }}',
        f'add rule {t} cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"',
        f'add rule {t} cluster-ips-check ip daddr {{ {SERVICE_CIDR} }} drop comment "Drop traffic to unallocated ClusterIPs"',
        f'add map {t} no-endpoint-services {{ type ipv4_addr . inet_proto . inet_service : verdict ; '
        f'comment "vmap to drop or reject packets to services with no endpoints" ; }}',
        f'add map {t} no-endpoint-nodeports {{ type inet_proto . inet_service : verdict ; '
        f'comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }}',
        f'add chain {t} reject-chain {{ comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }}',
        f"flush chain {t} reject-chain",
        f"add rule {t} reject-chain reject",
        f"add rule {t} service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
        f"add rule {t} nodeport-endpoints-check ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports",
        f'add map {t} firewall-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; '
        f'comment "destinations that are subject to LoadBalancerSourceRanges" ; }}',
        f"add rule {t} firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips",
        f'add map {t} service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; '
        f'comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }}',
        f'add map {t} service-nodeports {{ type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }}',
        f"add rule {t} services ip daddr . meta l4proto . th dport vmap @service-ips",
        f"add rule {t} services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports",
    ]
    for name in ("cluster-ips",):
        out.append(f"flush set {t} {name}")
    for name in ("service-ips", "firewall-ips", "no-endpoint-services", "no-endpoint-nodeports", "service-nodeports"):
        out.append(f"flush map {t} {name}")
    return out


def _nft_service(svc: dict) -> list:
    """The commands syncProxyRules() writes for one changed ClusterIP service (Cluster policy)."""
    t, proto = NFT_TABLE, svc["protocol"]
    svc_chain = nft_svc_chain(svc)
    eps = svc["endpoints"]
    ep_chains = [nft_ep_chain(svc, ep) for ep in eps]
    out = []
    for chain in ep_chains + [svc_chain]:
        out += [f"add chain {t} {chain}", f"flush chain {t} {chain}"]
    out += [
        f"add element {t} cluster-ips {{ {svc['cluster_ip']} }}",
        f"add element {t} service-ips {{ {svc['cluster_ip']} . {proto} . {svc['port']} : goto {svc_chain} }}",
        f"add rule {t} {svc_chain} ip daddr {svc['cluster_ip']} {proto} dport {svc['port']} "
        f"ip saddr != {CLUSTER_CIDR} jump mark-for-masquerade",
    ]
    vmap = " , ".join(f"{i} : goto {c}" for i, c in enumerate(ep_chains))
    out.append(f"add rule {t} {svc_chain} numgen random mod {len(eps)} vmap {{ {vmap} }}")
    for i, ep in enumerate(eps):  # (no zip(strict=): the node may run Python 3.9)
        chain = ep_chains[i]
        out += [f"add rule {t} {chain} ip saddr {ep[0]} jump mark-for-masquerade",
                f"add rule {t} {chain} meta l4proto {proto} dnat to {ep[0]}:{ep[1]}"]
    return out


def nftables_full(svcs: list) -> str:
    """A full sync: setupNFTables() plus every service, one transaction for ``nft -f``."""
    out = _nft_setup()
    for svc in svcs:
        out += _nft_service(svc)
    return "\n".join(out) + "\n"


def nftables_transactions(svcs: list, chunk: int = 0) -> list:
    """The full sync as ``nft -f`` inputs: one transaction (kube-proxy v1.31) when ``chunk`` is
    0, else setup plus transactions of ``chunk`` services (the split discussed upstream)."""
    if chunk <= 0:
        return [nftables_full(svcs)]
    out = ["\n".join(_nft_setup()) + "\n"]
    for i in range(0, len(svcs), chunk):
        out.append("\n".join(line for svc in svcs[i:i + chunk] for line in _nft_service(svc)) + "\n")
    return out


def nftables_incremental(svc: dict) -> str:
    """A partial sync adding one service: its chains, rules and map/set elements only."""
    return "\n".join(_nft_service(svc)) + "\n"


# ----------------------------------------------------------------------------- ipvs

def ipvs_iptables(svcs_count: int) -> str:
    """The iptables side of IPVS mode: KUBE-CLUSTER-IP ipset rules and masquerading."""
    jumps = _ipt_base_jumps()
    out = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
           ":POSTROUTING ACCEPT [0:0]"]
    out += [f":{c} - [0:0]" for c in IPT_NAT_CHAINS]
    out += jumps["nat"] + _ipt_masq_rules()
    out += [
        f'-A KUBE-SERVICES ! -s {CLUSTER_CIDR} -m comment --comment "Kubernetes service cluster ip + port for '
        f'masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ',
        '-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
        '-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT',
        "COMMIT", "",
    ]
    return "\n".join(out)


def ipvs_ipset(svcs: list, create: bool = True) -> str:
    """``ipset restore`` input: the KUBE-CLUSTER-IP set (``create``) and one entry per service."""
    out = ['create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 '
           'comment'] if create else []
    out += [f'add KUBE-CLUSTER-IP {s["cluster_ip"]},{s["protocol"]}:{s["port"]} comment "{port_name(s)}"'
            for s in svcs]
    return "\n".join(out) + "\n"


def ipvs_rules(svcs: list) -> str:
    """ipvsadm-restore input: one virtual server per ClusterIP:port, masq to each endpoint."""
    out = []
    for s in svcs:
        vip = f"{s['cluster_ip']}:{s['port']}"
        out.append(f"-A -t {vip} -s rr")
        out += [f"-a -t {vip} -r {ip}:{port} -m -w 1" for ip, port in s["endpoints"]]
    return "\n".join(out) + "\n"


def ipvs_addresses(svcs: list) -> str:
    """``ip -batch`` input binding every ClusterIP to kube-ipvs0."""
    return "".join(f"address add {s['cluster_ip']}/32 dev kube-ipvs0\n" for s in svcs)


# ----------------------------------------------------------------------------- system helpers

class BenchError(RuntimeError):
    """A step of the benchmark failed (message says which and why)."""


def sh(args: list, stdin: str | None = None, timeout: float = 300.0, check: bool = True) -> subprocess.CompletedProcess:
    try:
        res = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{' '.join(args[:6])}: timed out after {timeout:.0f}s") from exc
    except FileNotFoundError as exc:
        raise BenchError(f"{args[0]}: not installed") from exc
    if check and res.returncode != 0:
        raise BenchError(f"{' '.join(args[:8])}: exit {res.returncode}: {(res.stderr or res.stdout).strip()[-600:]}")
    return res


def in_ns(ns: str, args: list) -> list:
    return ["ip", "netns", "exec", ns] + args


def timed(args: list, stdin: str | None = None, timeout: float = 300.0) -> float:
    t0 = time.perf_counter()
    sh(args, stdin=stdin, timeout=timeout)
    return time.perf_counter() - t0


_libc = None


def libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def set_comm(name: str) -> None:
    """Name this process (``/proc/PID/comm``) so cleanup can find it by the run's prefix."""
    buf = ctypes.create_string_buffer(name.encode()[:15])
    libc().prctl(PR_SET_NAME, buf, 0, 0, 0)


def setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc().setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise BenchError(f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def tool_version(args: list) -> str:
    try:
        res = subprocess.run(args, capture_output=True, text=True, timeout=10)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return "absent"
    return (res.stdout or res.stderr).strip().splitlines()[0] if (res.stdout or res.stderr).strip() else "absent"


def genl_family_exists(name: str) -> tuple:
    """Ask the kernel (generic netlink CTRL_CMD_GETFAMILY) whether a family is registered.

    Returns (exists, detail); IPVS registers the family ``IPVS`` when CONFIG_IP_VS is present
    and the module is loaded."""
    NETLINK_GENERIC, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_NAME = 16, 0x10, 3, 2
    NLM_F_REQUEST, NLMSG_ERROR = 1, 2
    payload = name.encode() + b"\0"
    attr = struct.pack("HH", 4 + len(payload), CTRL_ATTR_FAMILY_NAME) + payload
    attr += b"\0" * ((4 - len(attr) % 4) % 4)
    genl = struct.pack("BBH", CTRL_CMD_GETFAMILY, 1, 0)
    msg = struct.pack("IHHII", 16 + len(genl) + len(attr), GENL_ID_CTRL, NLM_F_REQUEST, 1, 0) + genl + attr
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC) as s:
            s.settimeout(5)
            s.send(msg)
            data = s.recv(65536)
    except OSError as exc:
        return False, f"generic netlink query failed: {exc}"
    _length, typ = struct.unpack("IH", data[:6])
    if typ == NLMSG_ERROR:
        err = -struct.unpack("i", data[16:20])[0]
        if err == 0:
            return True, "family registered"
        return False, f"generic netlink family {name} not registered ({os.strerror(err)})"
    return True, "family registered"


def ipvs_availability(load_modules: bool = False) -> tuple:
    """(available, reason). Never simulates: tests the kernel and the tools."""
    reasons = []
    if load_modules and not os.path.exists("/proc/net/ip_vs") and shutil.which("modprobe"):
        for mod in ("ip_vs", "ip_vs_rr"):
            res = subprocess.run(["modprobe", mod], capture_output=True, text=True, timeout=30)
            if res.returncode != 0:
                reasons.append(f"modprobe {mod}: {res.stderr.strip()}")
    exists, detail = genl_family_exists("IPVS")
    if not exists:
        parts = [f"kernel has no IPVS: {detail}"]
        if not os.path.exists("/proc/net/ip_vs"):
            parts.append("/proc/net/ip_vs absent (CONFIG_IP_VS not set or ip_vs not loaded)")
        if shutil.which("ipvsadm"):
            res = subprocess.run(["ipvsadm", "-Ln"], capture_output=True, text=True, timeout=10)
            if res.returncode != 0:
                parts.append("ipvsadm -Ln: " + " ".join((res.stderr or res.stdout).split()))
        return False, "; ".join(parts + reasons)
    missing = [t for t in ("ipvsadm", "ipset", "iptables-restore") if not shutil.which(t)]
    if missing:
        return False, "kernel has IPVS but the node lacks " + ", ".join(missing)
    return True, "kernel has IPVS (" + detail + ")"


def nft_availability() -> tuple:
    if not shutil.which("nft"):
        return False, "nft not installed"
    rel = platform.release().split("-")[0].split(".")
    try:
        major, minor = int(rel[0]), int(rel[1])
    except (ValueError, IndexError):
        return True, "kernel version unknown"
    if (major, minor) < (5, 13):
        return True, f"kernel {platform.release()} < 5.13: kube-proxy refuses nftables mode here (measured anyway)"
    return True, "ok"


def iptables_availability() -> tuple:
    missing = [t for t in ("iptables-restore", "iptables-save") if not shutil.which(t)]
    if missing:
        return False, "not installed: " + ", ".join(missing)
    return True, "ok"


# ----------------------------------------------------------------------------- the probe

def percentile(sorted_values: list, p: float) -> float:
    """Linear-interpolated percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def summarize(samples_ns: list, errors: int, elapsed: float, stopped_by: str) -> dict:
    us = sorted(x / 1000.0 for x in samples_ns)
    out = {"count": len(us), "errors": errors, "elapsed_s": round(elapsed, 3), "stopped_by": stopped_by}
    if us:
        out.update({
            "p50_us": round(percentile(us, 50), 1), "p90_us": round(percentile(us, 90), 1),
            "p99_us": round(percentile(us, 99), 1), "mean_us": round(sum(us) / len(us), 1),
            "min_us": round(us[0], 1), "max_us": round(us[-1], 1),
        })
    return out


def probe_interleaved(targets: list, count: int, time_limit: float, rounds: int, log) -> dict:
    """``count`` new connections per target ((key, ns, addr, port)), spread over ``rounds`` rounds:
    each round visits every target once with ``count / rounds`` connections, the order rotated each
    round. A slow spell of the machine then falls on every target alike, not on whichever N or mode
    was measured at the time. Each target reports the percentiles of all its connections pooled,
    and each round's p50 in ``rounds_p50_us``."""
    per_round = max(1, -(-count // rounds))
    samples: dict = {t[0]: [] for t in targets}
    rounds_out: dict = {t[0]: [] for t in targets}
    start = time.monotonic()
    for r in range(rounds):
        k = r % len(targets)
        for key, ns, addr, port in targets[k:] + targets[:k]:
            rounds_out[key].append(probe_round(ns, addr, port, per_round, time_limit / rounds, warmup=5,
                                               samples_out=samples[key]))
        log(f"probe round {r + 1}/{rounds}: " + ", ".join(
            f"{t[0]} {rounds_out[t[0]][-1].get('p50_us')}" for t in targets))
    out = {}
    for key, results in rounds_out.items():
        stopped = "time limit" if any(x["stopped_by"] == "time limit" for x in results) else "count"
        out[key] = summarize(samples[key], sum(x["errors"] for x in results),
                             sum(x["elapsed_s"] for x in results), stopped)
        out[key]["rounds_p50_us"] = [x.get("p50_us") for x in results]
        first = next((x["first_error"] for x in results if x.get("first_error")), "")
        if first:
            out[key]["first_error"] = first
    log(f"probe: {len(targets)} targets x {rounds} rounds x {per_round} connections in "
        f"{time.monotonic() - start:.1f} s")
    return out


def probe_round(ns: str, addr: str, port: int, count: int, time_limit: float, warmup: int = 30,
                samples_out: list | None = None) -> dict:
    """``count`` new TCP connections from namespace ``ns``; the time of connect() alone.

    Blocking sockets (the fewest syscalls), TCP_SYNCNT=1 so a lost SYN fails in ~3 s, and a
    RST close (SO_LINGER 0) so no TIME_WAIT piles up; every connection has a new source port,
    hence a NEW conntrack entry that goes through the rules. GC is off while measuring."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    setns(os.path.join(NETNS_DIR, ns))
    samples: list = []
    errors = 0
    first_error = ""
    target = (addr, port)
    linger = struct.pack("ii", 1, 0)
    sock, clock = socket.socket, time.perf_counter_ns
    af, st, sol, solinger = socket.AF_INET, socket.SOCK_STREAM, socket.SOL_SOCKET, socket.SO_LINGER
    synopt = getattr(socket, "TCP_SYNCNT", 7)
    start = time.monotonic()
    deadline = start + time_limit
    stopped = "count"
    gc.disable()
    try:
        for i in range(count + warmup):
            s = sock(af, st)
            s.setsockopt(sol, solinger, linger)
            s.setsockopt(socket.IPPROTO_TCP, synopt, 1)
            try:
                t0 = clock()
                s.connect(target)
                t1 = clock()
                if i >= warmup:
                    samples.append(t1 - t0)
            except OSError as exc:
                errors += 1
                first_error = first_error or f"{exc.__class__.__name__}: {exc}"
            finally:
                s.close()
            if time.monotonic() > deadline:
                stopped = "time limit"
                break
    finally:
        gc.enable()
        if libc().setns(home, CLONE_NEWNET) != 0:
            raise BenchError("could not return to the original network namespace")
        os.close(home)
    out = summarize(samples, errors, time.monotonic() - start, stopped)
    if samples_out is not None:
        samples_out.extend(samples)
    if first_error:
        out["first_error"] = first_error
    return out


# ----------------------------------------------------------------------------- the run

class Bench:
    """One invocation: namespaces, listeners, and cleanup for one run id."""

    def __init__(self, run_id: str, endpoints: int, log) -> None:
        self.run_id = run_id
        self.prefix = f"kpm-{run_id}"
        self.endpoints = endpoints
        self.log = log
        self.children: list = []
        self.namespaces: list = []

    # -- namespaces
    def netns_add(self, name: str) -> str:
        sh(["ip", "netns", "add", name])
        self.namespaces.append(name)
        sh(["ip", "-n", name, "link", "set", "lo", "up"])
        return name

    def netns_delete(self, name: str) -> None:
        sh(["ip", "netns", "delete", name], check=False)
        if name in self.namespaces:
            self.namespaces.remove(name)

    def ep_ns(self, e: int) -> str:
        return f"{self.prefix}-ep{e}"

    def setup_endpoints(self, listen: bool = True) -> None:
        """Endpoint namespaces (made once per run, reused by later invocations), and listeners."""
        existing = set(list_netns(self.prefix))
        for e in range(self.endpoints):
            ns = self.ep_ns(e)
            if ns not in existing:
                self.netns_add(ns)
                sh(["ip", "-n", ns, "route", "add", "local", f"10.{200 + e}.0.0/16", "dev", "lo"])
            if listen:
                self.start_listener(ns)

    def start_listener(self, ns: str) -> None:
        """Fork an accept loop that lives in ``ns`` and dies with this process."""
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            code = 0
            try:
                os.close(rfd)
                libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                setns(os.path.join(NETNS_DIR, ns))
                srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                srv.bind(("0.0.0.0", EP_PORT))
                srv.listen(4096)
                os.write(wfd, b"1")
                os.close(wfd)
                while True:
                    try:
                        conn, _ = srv.accept()
                        conn.close()
                    except OSError:
                        continue
            except BaseException:  # noqa: BLE001 - the child must never return into the parent's code
                code = 1
            finally:
                os._exit(code)
        os.close(wfd)
        self.children.append(pid)
        ready, _, _ = select.select([rfd], [], [], 10)
        ok = bool(ready) and os.read(rfd, 1) == b"1"
        os.close(rfd)
        if not ok:
            raise BenchError(f"listener in {ns} did not start within 10 s")

    def client_ns_name(self, tag: str, n: int | None = None) -> str:
        return f"{self.prefix}-c{tag}" + ("" if n is None else str(n))

    def client_ns(self, tag: str, n: int | None = None, slot: int = 0) -> str:
        """A client namespace joined to every endpoint namespace by a veth pair.

        Several client namespaces live at once (one per mode and N until the interleaved probe),
        so each gets its own /30s: ``100.(64+slot).(16*mode+e).1`` here, ``.2`` in endpoint ns e,
        where the endpoint-side veth is ``s<slot>m<mode>e<e>``.
        """
        ns = self.netns_add(self.client_ns_name(tag, n))
        m = CLIENT_TAGS.index(tag)
        batch = []
        for e in range(self.endpoints):
            ep, net, peer = self.ep_ns(e), f"100.{64 + slot}.{16 * m + e}", f"s{slot}m{m}e{e}"
            sh(["ip", "-n", ns, "link", "add", f"c{e}", "type", "veth", "peer", "name", peer, "netns", ep])
            sh(["ip", "-n", ep, "-batch", "-"], stdin=f"address add {net}.2/30 dev {peer}\nlink set {peer} up\n")
            batch += [f"address add {net}.1/30 dev c{e}", f"link set c{e} up",
                      f"route add 10.{200 + e}.0.0/16 via {net}.2"]
        # ClusterIPs need a route before DNAT (the reroute after DNAT picks the right veth)
        batch.append(f"route add {SERVICE_CIDR} via 100.{64 + slot}.{16 * m}.2")
        sh(["ip", "-n", ns, "-batch", "-"], stdin="\n".join(batch) + "\n")
        return ns

    def drop_client_ns(self, ns: str) -> None:
        # return the veth's endpoint-side addresses: peers vanish with the namespace
        self.netns_delete(ns)

    # -- cleanup
    def stop_children(self) -> None:
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                continue
        self.children = []

    def cleanup(self) -> dict:
        self.stop_children()
        return cleanup_prefix(self.prefix)


def list_netns(prefix: str) -> list:
    res = sh(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in res.stdout.splitlines() if line.split() and line.split()[0].startswith(prefix)]


def processes_named(comm: str) -> list:
    """PIDs whose /proc/PID/comm is exactly ``comm`` (this run's processes), self excluded."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/comm", encoding="utf-8") as fh:
                if fh.read().strip() == comm[:15]:
                    out.append(int(entry))
        except OSError:
            continue
    return out


def cleanup_prefix(prefix: str) -> dict:
    """Remove everything of a run: processes named ``prefix``, namespaces starting with it."""
    killed = []
    for pid in processes_named(prefix):
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            continue
    for ns in list_netns(prefix):
        for pid_text in sh(["ip", "netns", "pids", ns], check=False).stdout.split():
            try:
                os.kill(int(pid_text), signal.SIGKILL)
                killed.append(int(pid_text))
            except (ProcessLookupError, ValueError):
                continue
    deadline = time.monotonic() + 10
    while processes_named(prefix) and time.monotonic() < deadline:
        time.sleep(0.05)
    for ns in list_netns(prefix):
        sh(["ip", "netns", "delete", ns], check=False)
    return {"killed": sorted(set(killed)), "netns_left": list_netns(prefix),
            "processes_left": processes_named(prefix)}


# ----------------------------------------------------------------------------- modes

def run_iptables(b: Bench, n: int, args, out: dict) -> None:
    svcs = services(b.run_id, n, b.endpoints)
    new = service(b.run_id, n + 1, b.endpoints)
    ns = b.client_ns(MODE_TAGS["iptables"], n, args.slot)
    text = iptables_full(svcs)
    out["rules_lines"] = text.count("\n-A ")
    out["program_s"] = round(timed(in_ns(ns, ["iptables-restore", "-w", "5"]), stdin=text), 4)
    partial = iptables_partial(svcs + [new], [new])
    out["incremental_s"] = round(timed(in_ns(ns, ["iptables-restore", "-w", "5", "--noflush"]), stdin=partial), 4)
    saved = sh(in_ns(ns, ["iptables-save", "-t", "nat"])).stdout
    out["chains_svc"] = sum(1 for line in saved.splitlines() if line.startswith(":KUBE-SVC-"))


def run_nftables(b: Bench, n: int, args, out: dict) -> None:
    svcs = services(b.run_id, n, b.endpoints)
    new = service(b.run_id, n + 1, b.endpoints)
    ns = b.client_ns(MODE_TAGS["nftables"], n, args.slot)
    text = nftables_full(svcs)
    out["rules_lines"] = text.count("\nadd rule ")
    chunks = nftables_transactions(svcs, args.nft_chunk)
    out["transactions"] = len(chunks)
    t0 = time.perf_counter()
    for chunk in chunks:
        sh(in_ns(ns, ["nft", "-f", "-"]), stdin=chunk, timeout=args.point_timeout)
    out["program_s"] = round(time.perf_counter() - t0, 4)
    out["incremental_s"] = round(timed(in_ns(ns, ["nft", "-f", "-"]), stdin=nftables_incremental(new)), 4)
    chains = sh(in_ns(ns, ["nft", "list", "chains", "ip"])).stdout
    out["chains_svc"] = sum(1 for line in chains.splitlines() if line.strip().startswith("chain service-"))


def run_ipvs(b: Bench, n: int, args, out: dict) -> None:
    svcs = services(b.run_id, n, b.endpoints)
    new = service(b.run_id, n + 1, b.endpoints)
    ns = b.client_ns(MODE_TAGS["ipvs"], n, args.slot)
    # setup kube-proxy does once per node, outside the timers
    sh(in_ns(ns, ["sysctl", "-qw", "net.ipv4.vs.conntrack=1"]))
    sh(["ip", "-n", ns, "link", "add", "kube-ipvs0", "type", "dummy"])
    t0 = time.perf_counter()
    sh(["ip", "-n", ns, "-batch", "-"], stdin=ipvs_addresses(svcs))
    sh(in_ns(ns, ["ipset", "restore"]), stdin=ipvs_ipset(svcs))
    sh(in_ns(ns, ["iptables-restore", "-w", "5", "--noflush"]), stdin=ipvs_iptables(n))
    sh(in_ns(ns, ["ipvsadm-restore"]), stdin=ipvs_rules(svcs))
    out["program_s"] = round(time.perf_counter() - t0, 4)
    out["rules_lines"] = ipvs_rules(svcs).count("\n")
    t0 = time.perf_counter()
    for args_, text in ipvs_incremental(ns, new):
        sh(args_, stdin=text)
    out["incremental_s"] = round(time.perf_counter() - t0, 4)
    listed = sh(in_ns(ns, ["ipvsadm", "-Ln"])).stdout
    out["chains_svc"] = sum(1 for line in listed.splitlines() if line.startswith("TCP"))


def ipvs_incremental(ns: str, new: dict) -> list:
    """The commands (argv, stdin) that add one service in IPVS mode: one process per tool
    (``TIMED["ipvs"]["incremental_processes"]``), each fed in batch like the full load."""
    return [(["ip", "-n", ns, "-batch", "-"], ipvs_addresses([new])),
            (in_ns(ns, ["ipset", "restore"]), ipvs_ipset([new], create=False)),
            (in_ns(ns, ["ipvsadm-restore"]), ipvs_rules([new]))]


RUNNERS = {"iptables": run_iptables, "nftables": run_nftables, "ipvs": run_ipvs}


def availability(mode: str, args) -> tuple:
    if mode == "iptables":
        return iptables_availability()
    if mode == "nftables":
        return nft_availability()
    return ipvs_availability(args.load_ipvs_modules)


def benchmark(args, log) -> dict:
    b = Bench(args.run_id, args.endpoints, log)
    set_comm(b.prefix)
    doc: dict = {
        "run_id": args.run_id, "prefix": b.prefix, "n": args.n, "endpoints": args.endpoints,
        "connections": args.connections, "host": socket.gethostname(), "kernel": platform.release(),
        "python": platform.python_version(),
        "tools": {"iptables": tool_version(["iptables", "--version"]), "nft": tool_version(["nft", "--version"]),
                  "ipvsadm": tool_version(["ipvsadm", "--version"]), "ipset": tool_version(["ipset", "--version"])},
        "layouts": LAYOUTS, "client_hook": "nat OUTPUT of the client namespace (locally originated connections)",
        "modes": {},
    }
    t_start = time.perf_counter()
    completed = False
    try:
        b.setup_endpoints(listen=False)  # the listeners start with the probe
        for mode in args.modes:
            ok, reason = availability(mode, args)
            entry: dict = {"status": "ok" if ok else "unavailable", "reason": reason, "layout": LAYOUTS[mode],
                           "timed": TIMED[mode]}
            doc["modes"][mode] = entry
            if not ok:
                log(f"{mode}: unavailable: {reason}")
                continue
            try:
                RUNNERS[mode](b, args.n, args, entry)
                log(f"{mode}: program {entry.get('program_s')} s, incremental {entry.get('incremental_s')} s "
                    "(latency in the interleaved probe)")
            except BenchError as exc:
                entry["status"] = "error"
                entry["reason"] = str(exc)
                log(f"{mode}: error: {exc}")
                b.netns_delete(b.client_ns_name(MODE_TAGS[mode], args.n))  # nothing of it waits for the probe
        completed = True
    finally:
        if completed:  # the namespaces with their rules wait for --probe
            b.stop_children()
            doc["kept"] = [ns for ns in list_netns(b.prefix) if "-c" in ns[len(b.prefix):]]
        else:
            doc["cleanup"] = b.cleanup()
        doc["duration_s"] = round(time.perf_counter() - t_start, 3)
    return doc


def probe_pass(args, log) -> dict:
    """The latency of every (mode, N) kept by the earlier per-N runs, and the floor, interleaved
    (:func:`probe_interleaved`); then everything of the run is removed."""
    b = Bench(args.run_id, args.endpoints, log)
    set_comm(b.prefix)
    doc: dict = {"run_id": args.run_id, "prefix": b.prefix, "connections": args.connections, "rounds": args.rounds}
    t_start = time.perf_counter()
    try:
        present = set(list_netns(b.prefix))
        b.setup_endpoints(listen=True)
        ep = service(args.run_id, 1, args.endpoints)["endpoints"][0]
        targets = [("floor", b.client_ns("floor"), ep[0], ep[1])]
        for n in args.grid:
            new = service(args.run_id, n + 1, args.endpoints)
            for mode in args.modes:
                ns = b.client_ns_name(MODE_TAGS[mode], n)
                if ns in present:
                    targets.append((f"{mode}/{n}", ns, new["cluster_ip"], new["port"]))
        doc["order"] = [t[0] for t in targets]
        doc["results"] = probe_interleaved(targets, args.connections, args.point_time_limit, args.rounds, log)
    finally:
        doc["cleanup"] = b.cleanup()
        doc["duration_s"] = round(time.perf_counter() - t_start, 3)
    return doc


def check_texts(args) -> dict:
    """Render the rule texts for N services (no namespaces touched): for tests and review."""
    svcs = services(args.run_id, args.n, args.endpoints)
    new = service(args.run_id, args.n + 1, args.endpoints)
    return {
        "iptables_full": iptables_full(svcs), "iptables_partial": iptables_partial(svcs + [new], [new]),
        "nftables_full": nftables_full(svcs), "nftables_incremental": nftables_incremental(new),
        "ipvs_rules": ipvs_rules(svcs), "ipvs_ipset": ipvs_ipset(svcs), "ipvs_iptables": ipvs_iptables(args.n),
    }


def parse_args(argv: list):
    p = argparse.ArgumentParser(prog="kpm-bench", description=__doc__.splitlines()[0])
    p.add_argument("--run-id", required=True, help="short hex id: names are kpm-<run-id>-*")
    p.add_argument("--n", type=int, default=100, help="number of services")
    p.add_argument("--endpoints", type=int, default=2)
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--point-time-limit", type=float, default=30.0, help="with --probe: seconds per latency point")
    p.add_argument("--point-timeout", type=float, default=300.0, help="seconds for one rule load")
    p.add_argument("--modes", default="iptables,nftables,ipvs")
    p.add_argument("--nft-chunk", type=int, default=0,
                   help="services per nft transaction in the full load (0: one transaction, as kube-proxy)")
    p.add_argument("--load-ipvs-modules", action="store_true", help="modprobe ip_vs if it is not loaded")
    p.add_argument("--slot", type=int, default=0, help="this N's position in the grid (its address block)")
    p.add_argument("--probe", action="store_true",
                   help="only the interleaved latency probe of what the per-N runs left (needs --grid)")
    p.add_argument("--grid", default="", help="with --probe: the service counts kept, comma-separated")
    p.add_argument("--rounds", type=int, default=5, help="with --probe: rounds over all targets")
    p.add_argument("--cleanup", action="store_true", help="only remove what run-id left behind")
    p.add_argument("--render", action="store_true", help="only print the rule texts as JSON")
    p.add_argument("--ipvs-check", action="store_true", help="only report IPVS availability")
    args = p.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in args.modes if m not in MODES]
    if bad:
        p.error(f"unknown modes: {bad}")
    if not (1 <= args.n < MAX_SERVICES) or not (1 <= args.endpoints <= MAX_ENDPOINTS):
        p.error(f"need 1 <= n < {MAX_SERVICES} and 1 <= endpoints <= {MAX_ENDPOINTS}")
    if not 0 <= args.slot < MAX_SLOTS or not 1 <= args.rounds <= 50:
        p.error(f"need 0 <= slot < {MAX_SLOTS} and 1 <= rounds <= 50")
    try:
        args.grid = [int(x) for x in args.grid.split(",") if x.strip()]
    except ValueError:
        p.error("--grid: comma-separated integers")
    if args.probe and not args.grid:
        p.error("--probe needs --grid")
    if not args.run_id.isalnum() or len(args.run_id) > 10:
        p.error("run-id must be alphanumeric, at most 10 characters")
    return args


def _on_signal(signum, _frame) -> None:
    raise SystemExit(128 + signum)


def main(argv: list | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)

    def log(msg: str) -> None:
        what = "probe" if args.probe else f"N={args.n}"
        print(f"[kpm-bench {args.run_id} {what}] {msg}", file=sys.stderr, flush=True)

    if args.render:
        print(json.dumps(check_texts(args)))
        return 0
    if args.ipvs_check:
        ok, reason = ipvs_availability(args.load_ipvs_modules)
        print(json.dumps({"available": ok, "reason": reason}))
        return 0
    if os.geteuid() != 0:
        print(json.dumps({"error": "must run as root (network namespaces, rules)"}))
        return 2
    if args.cleanup:
        print(json.dumps({"cleanup": cleanup_prefix(f"kpm-{args.run_id}")}))
        return 0
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    try:
        doc = probe_pass(args, log) if args.probe else benchmark(args, log)
    except BenchError as exc:
        print(json.dumps({"error": str(exc), "cleanup": cleanup_prefix(f"kpm-{args.run_id}")}))
        return 1
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
