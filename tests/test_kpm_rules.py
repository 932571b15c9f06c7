"""Rule generation of the kube-proxy benchmark: names, structure, and validity in a real kernel."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks_lib.chapters.kube_proxy_modes import node_bench as nb

ROOT_NETNS = os.geteuid() == 0 and shutil.which("ip") is not None
needs_netns = pytest.mark.skipif(not ROOT_NETNS, reason="needs root and iproute2 (network namespaces)")


def _svc(ns: str, name: str, port_name: str, proto: str = "tcp") -> dict:
    return {"namespace": ns, "name": name, "port_name": port_name, "protocol": proto,
            "cluster_ip": "10.96.0.1", "port": 443, "endpoints": [("10.180.0.1", 80)]}


def test_iptables_chain_names_match_real_clusters() -> None:
    # names seen on every kubeadm cluster (iptables-save of a real node)
    assert nb.ipt_svc_chain(_svc("default", "kubernetes", "https")) == "KUBE-SVC-NPX46M4PTMTKRN6Y"
    assert nb.ipt_svc_chain(_svc("kube-system", "kube-dns", "dns", "udp")) == "KUBE-SVC-TCOU7JCQXEZGVUNU"
    assert nb.ipt_svc_chain(_svc("kube-system", "kube-dns", "dns-tcp")) == "KUBE-SVC-ERIFXISQEP7F7OF4"
    assert nb.ipt_svc_chain(_svc("kube-system", "kube-dns", "metrics")) == "KUBE-SVC-JD5MR3NA4I4DYORP"
    sep = nb.ipt_sep_chain(_svc("default", "kubernetes", "https"), ("10.180.0.1", 80))
    assert sep.startswith("KUBE-SEP-") and len(sep) == len("KUBE-SEP-") + 16


def test_nft_chain_names_follow_the_proxier_format() -> None:
    svc = _svc("ns1", "svc1", "p80")
    # the examples in pkg/proxy/nftables/proxier.go's comments
    assert nb.nft_svc_chain(svc) == "service-ULMVA6XW-ns1/svc1/tcp/p80"
    assert nb.nft_ep_chain(svc, ("10.180.0.1", 80)) == "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"


def test_iptables_statistic_probabilities_are_1_over_remaining() -> None:
    svc = nb.service("abc", 7, 3)
    _decl, rules = nb._ipt_service_chains(svc)
    svc_rules = [r for r in rules if r.startswith(f"-A {nb.ipt_svc_chain(svc)} ")]
    assert "! -s 10.244.0.0/16 -j KUBE-MARK-MASQ" in svc_rules[0]
    assert "--probability 0.3333333333" in svc_rules[1]
    assert "--probability 0.5000000000" in svc_rules[2]
    assert "statistic" not in svc_rules[3]
    seps = [r for r in rules if r.startswith("-A KUBE-SEP-")]
    assert len(seps) == 6 and all("KUBE-MARK-MASQ" in r or "DNAT --to-destination" in r for r in seps)


def test_full_and_partial_iptables_layouts() -> None:
    svcs = nb.services("abc", 3, 2)
    new = nb.service("abc", 4, 2)
    full = nb.iptables_full(svcs)
    assert full.count("-A KUBE-SERVICES -m comment --comment \"kpm-abc/") == 3
    dispatch = [line for line in full.splitlines() if line.startswith("-A KUBE-SERVICES")]
    assert "KUBE-NODEPORTS" in dispatch[-1], "the nodeports rule must stay last"
    assert "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES" in full
    assert "MASQUERADE --random-fully" in full
    partial = nb.iptables_partial(svcs + [new], [new])
    assert partial.count(":KUBE-SVC-") == 1, "only the changed service's chains are rewritten"
    assert partial.count("-A KUBE-SERVICES -m comment --comment \"kpm-abc/") == 4, "KUBE-SERVICES in full"
    assert ":OUTPUT" not in partial, "a --noflush partial restore leaves the built-in chains alone"


def test_nft_layout_has_the_verdict_map_and_numgen() -> None:
    svcs = nb.services("abc", 2, 3)
    text = nb.nftables_full(svcs)
    assert "add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict" in text
    assert "add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips" in text
    assert text.count("numgen random mod 3 vmap { 0 : goto endpoint-") == 2
    assert text.count(" dnat to 10.") == 6
    inc = nb.nftables_incremental(nb.service("abc", 3, 3))
    assert "add table" not in inc and inc.count("add element ip kube-proxy service-ips") == 1
    chunks = nb.nftables_transactions(svcs, 1)
    assert len(chunks) == 3 and "add table" in chunks[0] and "add table" not in chunks[1]


def test_percentiles() -> None:
    values = [float(x) for x in range(1, 101)]
    assert nb.percentile(values, 50) == pytest.approx(50.5)
    assert nb.percentile(values, 99) == pytest.approx(99.01)
    s = nb.summarize([1000, 2000, 3000], 1, 0.5, "count")
    assert s["p50_us"] == 2.0 and s["errors"] == 1 and s["count"] == 3


def test_node_program_runs_on_python_39() -> None:
    py39 = shutil.which("python3.9")
    candidates = [Path(p) for p in ("/root/.pyenv/versions/3.9.18/bin/python3.9", py39 or "") if p]
    exe = next((p for p in candidates if p.is_file()), None)
    if exe is None:
        pytest.skip("no python3.9 on this machine")
    res = subprocess.run([str(exe), "-", "--run-id", "py39", "--n", "5", "--render"],
                         input=Path(nb.__file__).read_text(), capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert '"iptables_full"' in res.stdout


@pytest.fixture
def throwaway_netns() -> Iterator[str]:
    name = f"kpmtest-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def _in(ns: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *args], input=stdin, capture_output=True, text=True,
                          timeout=120)


@needs_netns
def test_iptables_texts_pass_iptables_restore_test(throwaway_netns: str) -> None:
    svcs = nb.services("abc", 50, 2)
    new = nb.service("abc", 51, 2)
    res = _in(throwaway_netns, "iptables-restore", "--test", stdin=nb.iptables_full(svcs))
    assert res.returncode == 0, res.stderr
    # the partial restore needs the full one in place (it references KUBE-MARK-MASQ etc.)
    assert _in(throwaway_netns, "iptables-restore", stdin=nb.iptables_full(svcs)).returncode == 0
    res = _in(throwaway_netns, "iptables-restore", "--test", "--noflush", stdin=nb.iptables_partial(svcs + [new], [new]))
    assert res.returncode == 0, res.stderr
    broken = nb.iptables_full(svcs).replace("--probability", "--probabilty", 1)
    assert _in(throwaway_netns, "iptables-restore", "--test", stdin=broken).returncode != 0


@needs_netns
def test_nft_texts_pass_nft_check(throwaway_netns: str) -> None:
    svcs = nb.services("abc", 50, 2)
    res = _in(throwaway_netns, "nft", "-c", "-f", "-", stdin=nb.nftables_full(svcs))
    assert res.returncode == 0, res.stderr
    assert _in(throwaway_netns, "nft", "-f", "-", stdin=nb.nftables_full(svcs)).returncode == 0
    res = _in(throwaway_netns, "nft", "-c", "-f", "-", stdin=nb.nftables_incremental(nb.service("abc", 51, 2)))
    assert res.returncode == 0, res.stderr
    listed = _in(throwaway_netns, "nft", "list", "map", "ip", "kube-proxy", "service-ips").stdout
    assert listed.count(": goto service-") == 50
    assert _in(throwaway_netns, "nft", "-c", "-f", "-", stdin="add rule ip kube-proxy nosuch accept\n").returncode != 0


@needs_netns
def test_ipvs_ipset_and_iptables_texts_are_valid(throwaway_netns: str) -> None:
    if not shutil.which("ipset"):
        pytest.skip("ipset not installed")
    svcs = nb.services("abc", 20, 2)
    res = _in(throwaway_netns, "ipset", "restore", stdin=nb.ipvs_ipset(svcs))
    assert res.returncode == 0, res.stderr
    assert _in(throwaway_netns, "ipset", "test", "KUBE-CLUSTER-IP", "172.30.0.5,tcp:80").returncode == 0
    res = _in(throwaway_netns, "iptables-restore", "--test", "--noflush", stdin=nb.ipvs_iptables(20))
    assert res.returncode == 0, res.stderr
    rules = nb.ipvs_rules(svcs)
    assert rules.count("-A -t ") == 20 and rules.count("-a -t ") == 40 and " -m -w 1" in rules


def test_each_timer_says_what_it_covers_and_ipvs_add_is_three_batched_processes() -> None:
    """IPVS's "add one Service" is one process per tool (was 3 + one per endpoint), and labelled:
    the other modes start one process, kube-proxy's IPVS mode none for the address and IPVS parts."""
    new = nb.service("abc", 21, 3)
    cmds = nb.ipvs_incremental("kpm-x-cipvs20", new)
    assert len(cmds) == nb.TIMED["ipvs"]["incremental_processes"] == 3
    assert [argv[:2] if argv[0] == "ip" and argv[1] == "-n" else argv[4:] for argv, _ in cmds] == [
        ["ip", "-n"], ["ipset", "restore"], ["ipvsadm-restore"]]
    assert cmds[0][1] == "address add 172.30.0.21/32 dev kube-ipvs0\n"
    assert "create" not in cmds[1][1] and cmds[1][1].startswith("add KUBE-CLUSTER-IP 172.30.0.21,tcp:80")
    assert cmds[2][1].count("-a -t 172.30.0.21:80") == 3
    assert nb.TIMED["iptables"]["incremental_processes"] == nb.TIMED["nftables"]["incremental_processes"] == 1
    assert "2 process starts more" in nb.TIMED["ipvs"]["incremental"]


@needs_netns
def test_ipvs_incremental_address_and_ipset_inputs_apply(throwaway_netns: str) -> None:
    if not shutil.which("ipset"):
        pytest.skip("ipset not installed")
    svcs = nb.services("abc", 20, 2)
    # this kernel has no dummy links (a real node has): a veth stands in for the kube-ipvs0 dummy
    assert _in(throwaway_netns, "ip", "link", "add", "kube-ipvs0", "type", "veth", "peer", "kipvs-peer").returncode == 0
    assert _in(throwaway_netns, "ipset", "restore", stdin=nb.ipvs_ipset(svcs)).returncode == 0
    (addr_argv, addr_in), (set_argv, set_in), _ipvs = nb.ipvs_incremental(throwaway_netns, nb.service("abc", 21, 2))
    res = subprocess.run(addr_argv, input=addr_in, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    res = subprocess.run(set_argv, input=set_in, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert _in(throwaway_netns, "ipset", "test", "KUBE-CLUSTER-IP", "172.30.0.21,tcp:80").returncode == 0
    assert "172.30.0.21/32" in _in(throwaway_netns, "ip", "-4", "addr", "show", "kube-ipvs0").stdout
