"""Chapter 03 Part B: kube-proxy mode switch — plan, apply, failed gate -> rollback (API double),
prerequisites, and verify parsers on captured outputs."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from kube_double.fixture import SAMPLES, make_run

from runbooks_lib import kube
from runbooks_lib.chapters.kube_proxy_modes import chapter, switch, switchplan, verifyrules
from runbooks_lib.lab.apiserver.seed import KUBE_PROXY_CONFIG
from runbooks_lib.run import DestructiveRefused


def proxy_pods(double) -> dict[str, str]:
    return {p["spec"]["nodeName"]: p["metadata"]["uid"]
            for p in double.objects("Pod", "kube-system", "k8s-app=kube-proxy")}


def test_mode_parsing_and_single_line_edit():
    assert switchplan.parse_mode(KUBE_PROXY_CONFIG) == ("", "iptables")
    new = switchplan.set_mode(KUBE_PROXY_CONFIG, "nftables")
    assert switchplan.parse_mode(new) == ("nftables", "nftables")
    changed = [(a, b) for a, b in zip(KUBE_PROXY_CONFIG.splitlines(), new.splitlines(), strict=True) if a != b]
    assert changed == [('mode: ""', 'mode: "nftables"')]  # detectLocalMode: "" untouched
    with pytest.raises(ValueError):
        switchplan.set_mode(KUBE_PROXY_CONFIG, "userspace")


def test_plan_against_the_double(kube_run, api_double):
    kc = kube.connect(kube_run)
    state = switch.read_state(kc)
    assert (state.mode_raw, state.mode, state.server_version) == ("", "iptables", "v1.30.4")
    assert sorted(state.pods) == ["cp1", "w1", "w2"]
    plan = switchplan.plan_switch(state, "nftables")
    assert plan.order == ["w1", "w2", "cp1"] and not plan.no_change
    assert "-mode: \"\"" in plan.diff and '+mode: "nftables"' in plan.diff
    gate = {(p.node, p.check): p for p in plan.prereqs}
    assert gate[("w1", "nftables mode in this version")].status == "warn"  # 1.30: alpha, feature gate
    assert "NFTablesProxyMode" in gate[("w1", "nftables mode in this version")].detail
    assert gate[("w2", "kernel >= 5.13")].status == "pass"
    assert gate[("cp1", "nft >= 1.0.1")].status == "warn"  # no SSH facts given
    assert not plan.blocked and any("Calico" in w for w in plan.warnings)
    assert not any(r.method == "PATCH" for r in api_double[2].requests)  # plan is read-only


def test_prerequisites_from_facts():
    old = kube.NodeInfo("old", ["worker"], "192.0.2.5", True, "v1.33.1", "4.18.0-553.el8_10.x86_64",
                        "Rocky Linux 8.10", "containerd://1.7.20")
    [ver, kernel, nft] = switchplan.prerequisites("nftables", old, "v1.33.1",
                                              switchplan.NodeFacts("old", nft_version=(0, 9, 8)))
    assert ver.status == "pass" and "GA" in ver.detail
    assert kernel.status == "fail" and nft.status == "fail"
    facts = switchplan.NodeFacts("old", kernel="5.14.0-427.el9.x86_64", ip_vs_modules=[], proc_ip_vs=False)
    rows = {p.check: p for p in switchplan.prerequisites("ipvs", old, "v1.35.0", facts)}
    assert rows["ipvs mode in this version"].status == "warn" and "KEP-5495" in rows["ipvs mode in this version"].detail
    assert rows["ip_vs kernel modules"].status == "fail" and "CONFIG_IP_VS" in rows["ip_vs kernel modules"].detail
    assert rows["ipvsadm"].status == "warn"
    facts = switchplan.NodeFacts("ok", ip_vs_modules=["ip_vs", "ip_vs_rr", "nf_conntrack"], ipvsadm_version="1.31")
    rows = {p.check: p for p in switchplan.prerequisites("ipvs", old, "v1.30.4", facts)}
    assert rows["ip_vs kernel modules"].status == "pass" and rows["ipvsadm"].status == "pass"
    assert switchplan.parse_ipvsadm_version("ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)") == "1.31"


def test_apply_refused_without_confirm(kube_run, api_double):
    kc = kube.connect(kube_run)
    plan = switchplan.plan_switch(switch.read_state(kc), "nftables")
    with pytest.raises(DestructiveRefused):
        switch.apply_switch(kube_run, kc, plan, gate=switch.clusterip_gate)
    assert not any(r.method in ("PATCH", "DELETE", "POST") for r in api_double[2].requests)


def test_apply_switches_node_by_node(kube_apply_run, api_double):
    _, _, double = api_double
    kc = kube.connect(kube_apply_run)
    before = proxy_pods(double)
    plan = switchplan.plan_switch(switch.read_state(kc), "nftables")
    res = switch.apply_switch(kube_apply_run, kc, plan, gate=switch.clusterip_gate, pod_timeout=20)
    chapter.record_switch(kube_apply_run, res)  # chapter.py records the outcomes the switch returns
    assert res.failed_node is None and not res.rolled_back and res.switched == ["w1", "w2", "cp1"]
    cm = double.object("ConfigMap", "kube-proxy", "kube-system")
    assert switchplan.parse_mode(cm["data"]["config.conf"]) == ("nftables", "nftables")
    after = proxy_pods(double)
    assert sorted(after) == ["cp1", "w1", "w2"] and not set(after.values()) & set(before.values())
    assert [s.action for s in res.steps if s.node == "w1"] == ["restart kube-proxy", "health gate"]
    assert all(s.ok for s in res.steps)
    # the ConfigMap through the objects layer: config.conf taken over from its owner by a forced SSA, recorded so
    cm_step = res.steps[0]
    assert cm_step.action == "patch ConfigMap to nftables" and "forced: " in cm_step.detail
    assert 'conflict with "kube-controller-manager": .data.config.conf' in cm_step.detail
    owners = {m["manager"]: m for m in cm["metadata"]["managedFields"]}
    assert '"f:config.conf"' in str(owners["runbooks"]).replace("'", '"') and "f:kubeconfig.conf" not in str(
        owners["runbooks"])
    forced = [r for r in double.requests if r.verb == "apply" and r.path.endswith("/configmaps/kube-proxy")
              and "dryRun=All" not in r.query]
    assert len(forced) == 1 and "force=true" in forced[0].query
    # each restart waited by watch on the kube-proxy pods of that node: one evidence record per node
    waits = [r for r in kube_apply_run.recorder.records if (r.extra or {}).get("verb") == "watch"
             and "k8s-app=kube-proxy" in r.command]
    assert [w.command.split("spec.nodeName=")[1].split()[0] for w in waits] == ["w1", "w2", "cp1"]
    assert all(w.status == "ok" for w in waits)
    assert double.objects("Pod", "default", "runbooks.io/run") == []  # probe pods cleaned up
    checks = {(c.check, c.host): c.status for c in kube_apply_run.checks}
    assert checks[("kube-proxy mode", "cluster")] == "changed"
    assert checks[("kube-proxy nftables on node", "w2")] == "changed"
    again = switchplan.plan_switch(switch.read_state(kc), "nftables")
    assert again.no_change and again.diff == ""


def test_failed_health_gate_rolls_back(kube_apply_run, api_double):
    _, _, double = api_double
    double.broken_nodes.add("w2")  # pods on w2 cannot reach ClusterIPs after the restart
    kc = kube.connect(kube_apply_run)
    plan = switchplan.plan_switch(switch.read_state(kc), "ipvs")
    before = proxy_pods(double)
    res = switch.apply_switch(kube_apply_run, kc, plan, gate=switch.clusterip_gate, pod_timeout=20, gate_timeout=1)
    chapter.record_switch(kube_apply_run, res)
    assert res.failed_node == "w2" and res.rolled_back and res.switched == ["w1", "w2"]
    cm = double.object("ConfigMap", "kube-proxy", "kube-system")
    assert cm["data"]["config.conf"] == KUBE_PROXY_CONFIG  # the old text, byte for byte
    applies = [r.query for r in double.requests if r.verb == "apply" and r.path.endswith("/configmaps/kube-proxy")
               and "dryRun=All" not in r.query]
    assert len(applies) == 2 and "force=true" in applies[0] and "force" not in applies[1]  # rollback: ours, no force
    after = proxy_pods(double)
    assert after["cp1"] == before["cp1"]  # never touched
    assert after["w1"] != before["w1"] and after["w2"] != before["w2"]
    actions = [(s.node, s.action, s.ok) for s in res.steps]
    assert ("w2", "health gate", False) in actions
    assert actions[-3:] == [("cluster", "rollback ConfigMap to iptables", True),
                            ("w1", "rollback restart kube-proxy", True), ("w2", "rollback restart kube-proxy", True)]
    gate_step = next(s for s in res.steps if s.node == "w2" and s.action == "health gate")
    assert "10.96.0.1:443" in gate_step.detail and "Connection timed out" in gate_step.detail
    statuses = {(c.check, c.host): c.status for c in kube_apply_run.checks}
    assert statuses[("kube-proxy ipvs on node", "w2")] == "fail"
    assert statuses[("kube-proxy rollback to iptables", "w1")] == "changed"
    assert kube_apply_run.exit_code == 1
    assert double.objects("Pod", "default", "runbooks.io/run") == []


def test_pluggable_gate(tmp_path, api_double):
    run = make_run(tmp_path, api_double[0], apply=True, name="custom")
    kc = kube.connect(run)
    seen = []

    def gate(ctx: switch.GateContext) -> switch.GateResult:
        seen.append((ctx.node.name, ctx.mode, ctx.probe_pod, ctx.probe_target))
        return switch.GateResult(ctx.node.name != "w1", [("custom", ctx.node.name != "w1", "said so")])

    res = switch.apply_switch(run, kc, switchplan.plan_switch(switch.read_state(kc), "nftables"), gate=gate,
                              pod_timeout=20)
    assert seen == [("w1", "nftables", "kp-probe-w1", ("10.96.0.1", 443))]
    assert res.rolled_back and res.failed_node == "w1"
    assert switchplan.parse_mode(api_double[2].object("ConfigMap", "kube-proxy", "kube-system")["data"]["config.conf"])[1] \
        == "iptables"


class _Healthz(BaseHTTPRequestHandler):
    code = 200

    def do_GET(self):  # noqa: N802
        body = b'{"lastUpdated": "2024-09-02 08:14:31.1 +0000 UTC","currentTime": "2024-09-02 08:14:32 +0000 UTC"}'
        self.send_response(self.code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        return


def test_healthz_check_on_loopback():
    server = HTTPServer(("127.0.0.1", 0), _Healthz)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        ok, detail = switch.healthz_check("127.0.0.1", server.server_address[1], timeout=3)
        assert ok and "lastUpdated" in detail
        _Healthz.code = 503
        ok, detail = switch.healthz_check("127.0.0.1", server.server_address[1], timeout=3)
        assert not ok and "-> 503" in detail
    finally:
        _Healthz.code = 200
        server.shutdown()
        server.server_close()
        t.join(timeout=5)


def test_verify_parsers_on_captured_outputs():
    ipt = verifyrules.parse_iptables_kube((SAMPLES / "iptables-save-nat.txt").read_text())
    assert ipt == {"kube_svc_chains": 2, "kube_sep_chains": 3, "kube_services_rules": 3, "kube_chains": 9}
    nft = verifyrules.parse_nft_kube_proxy((SAMPLES / "nft-list-table-kube-proxy.txt").read_text())
    assert nft == {"present": True, "chains": 10, "service_chains": 2, "endpoint_chains": 3, "service_ips": 2}
    vs = verifyrules.parse_ipvsadm_ln((SAMPLES / "ipvsadm-Ln.txt").read_text())
    assert [(v.proto, v.address, v.port, v.scheduler, len(v.real_servers)) for v in vs][:2] == [
        ("TCP", "10.96.0.1", 443, "rr", 1), ("TCP", "10.96.0.10", 53, "rr", 2)]
    assert len(vs) == 5
    m = verifyrules.parse_proxy_metrics((SAMPLES / "kube-proxy-metrics.txt").read_text())
    sync, prog = m["sync_proxy_rules_duration"], m["network_programming_duration"]
    assert sync["count"] == 130 and sync["mean_s"] == pytest.approx(0.01187, abs=1e-5)
    assert 0.008 < sync["p50_s"] < 0.016 and sync["p99_s"] <= 0.064
    assert prog["count"] == 20 and 0.5 < prog["p50_s"] < 1.0 and m["last_sync_timestamp"] == 1.7253e9


def test_verify_node_judges_new_and_stale_rules():
    outs = {"nft": (0, (SAMPLES / "nft-list-table-kube-proxy.txt").read_text()),
            "iptables": (0, (SAMPLES / "iptables-save-nat.txt").read_text()),
            "ipvsadm": (127, "sh: ipvsadm: not found"),
            "metrics": (0, (SAMPLES / "kube-proxy-metrics.txt").read_text())}
    rows = {r.check: r for r in verifyrules.verify_node("w1", "nftables", "iptables", outs)}
    assert rows["nftables rules present"].status == "pass"
    assert rows["stale iptables rules"].status == "warn" and "2 KUBE-SVC chains" in rows["stale iptables rules"].detail
    assert rows["kube-proxy sync duration"].status == "pass"
    outs["iptables"] = (0, "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n")
    outs["metrics"] = (7, "curl: (7) Failed to connect")
    rows = {r.check: r for r in verifyrules.verify_node("w1", "nftables", "iptables", outs)}
    assert rows["stale iptables rules"].status == "pass" and rows["kube-proxy sync duration"].status == "warn"
    rows = {r.check: r for r in verifyrules.verify_node("w1", "ipvs", "iptables", outs)}
    assert rows["ipvs rules present"].status == "fail"


def test_node_facts_read_as_system_init_reads_them(tmp_path):
    """One kernel parser and one IPVS probe (runbooks_lib.facts): the switch's node facts of this machine."""
    import os
    import platform

    from runbooks_lib.evidence import Recorder
    from runbooks_lib.facts import kernel
    from runbooks_lib.transport import LocalTransport

    f = switch.gather_node_facts(LocalTransport("local", recorder=Recorder()))
    assert f.kernel == platform.release() and kernel.parse_version(f.kernel) is not None
    assert f.proc_ip_vs is os.path.exists("/proc/net/ip_vs")
    loaded = set()  # a container may have no /proc/modules: then nothing is loaded as far as facts can see
    if os.path.exists("/proc/modules"):
        with open("/proc/modules") as fh:
            loaded = {line.split()[0] for line in fh}
    assert f.ip_vs_modules == [m for m in switchplan.IPVS_MODULES if m in loaded]
