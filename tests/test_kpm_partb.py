"""Chapter 03 Part B glue (chapter.py) against the API double: connect, read, plan for nftables in
plan mode (nothing changes), the no-target path, node -> host mapping, and an unreachable API."""

from __future__ import annotations

import yaml

from runbooks_lib import kube
from runbooks_lib.chapters.kube_proxy_modes import chapter as partb
from runbooks_lib.chapters.kube_proxy_modes.recommend import Recommendation
from runbooks_lib.inventory import node_hosts
from runbooks_lib.lab.apiserver import free_port
from runbooks_lib.params import HostSpec
from runbooks_lib.run import Run
from runbooks_lib.verdict import exit_code_for, verdict_for


def _run(tmp_path, kubeconfig, **section) -> Run:
    params = {"cluster_name": "double", "kube": {"kubeconfig": str(kubeconfig), "request_timeout": 10},
              "kube_proxy_modes": section}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return Run.start("kube-proxy-modes", str(path), [], str(tmp_path / "run"))


def _checks(run: Run) -> dict[tuple[str, str], tuple[str, str]]:
    return {(c.check, c.host): (c.status, c.detail) for c in run.checks}


def test_plan_nftables_in_plan_mode(tmp_path, api_double):
    kubeconfig, _url, double = api_double
    run = _run(tmp_path, kubeconfig, target_mode="nftables", rollout_order=["w2", "w1", "cp1"])
    settings = run.params.kube_proxy_modes
    cluster = partb.connect(run)
    assert cluster.kc is not None and cluster.target.startswith("API double at https://127.0.0.1:")
    assert any(t.startswith("API double at") for t in run.targets)
    state = partb.read(run, cluster)
    assert state is not None and state.mode == "iptables" and cluster.hosts == {}
    assert partb.gather_facts(run, cluster).empty  # no inventory hosts: nothing over SSH
    plan = partb.plan(run, cluster, settings)
    assert plan is not None and plan.order == ["w2", "w1", "cp1"] and not plan.no_change
    text = partb.plan_text(plan)
    assert "iptables -> nftables" in text and "w2 -> w1 -> cp1" in text and '+mode: "nftables"' in text
    assert set(partb.prereq_frame(plan)["node"]) == {"cp1", "w1", "w2"}
    assert partb.apply(run, cluster, plan, settings) is None  # plan mode
    checks = _checks(run)
    assert checks[("cluster API", "cluster")][0] == "pass"
    assert checks[("kube-proxy mode (current)", "cluster")][1].startswith('iptables (config.conf mode: ""), '
                                                                          "Kubernetes v1.30.4")
    assert checks[("kube-proxy switch plan", "cluster")] == (  # a pending change: drift, not info or fail
        "drift", "iptables -> nftables; rollout order w2, w1, cp1")
    assert checks[("prerequisite: nftables mode in this version", "w1")][0] == "warn"  # alpha in 1.30
    assert checks[("node facts over SSH", "cp1, w1, w2")][0] == "warn"
    assert checks[("kube-proxy switch apply", "cluster")][1].startswith("plan mode: nothing changed")
    assert run.exit_code == 0 and run.figures["kpm_switch_plan"]["order"] == ["w2", "w1", "cp1"]
    assert verdict_for(run.checks) == "DRIFT" and exit_code_for(run.checks, detailed=True) == 4
    # the ConfigMap change planned by server-side apply dry run: the field's owner named, the take-over is drift
    status, detail = checks[("object ConfigMap kube-system/kube-proxy", "kube-system")]
    assert status == "drift" and 'conflict with "kube-controller-manager": .data.config.conf' in detail
    assert "server-side apply dry run: conflict ConfigMap kube-system/kube-proxy: ~ .data.config.conf" in text
    writes = [r for r in double.requests if r.method in ("PATCH", "PUT", "POST", "DELETE")]
    assert writes and all("dryRun=All" in r.query for r in writes)  # dry runs only: nothing persisted
    cm = double.object("ConfigMap", "kube-proxy", "kube-system")
    assert cm is not None and 'mode: ""' in cm["data"]["config.conf"]


def test_no_target_mode_plans_nothing(tmp_path, api_double):
    run = _run(tmp_path, api_double[0])
    cluster = partb.connect(run)
    partb.read(run, cluster)
    assert partb.plan(run, cluster, run.params.kube_proxy_modes) is None
    rec = Recommendation("nftables", ["test"])
    text = partb.no_switch(run, cluster, rec)
    assert text.startswith("no switch planned") and "Current mode: iptables; recommended: nftables" in text
    assert _checks(run)[("kube-proxy mode switch", "cluster")] == ("info", text)


def test_bad_rollout_order_is_an_error(tmp_path, api_double):
    run = _run(tmp_path, api_double[0], target_mode="nftables", rollout_order=["w9"])
    cluster = partb.connect(run)
    partb.read(run, cluster)
    assert partb.plan(run, cluster, run.params.kube_proxy_modes) is None
    status, detail = _checks(run)[("kube-proxy switch plan", "cluster")]
    assert status == "error" and "w9" in detail and run.exit_code == 1


def test_unreachable_api_is_recorded(tmp_path, api_double):
    doc = yaml.safe_load(api_double[0].read_text())
    doc["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(yaml.safe_dump(doc))
    run = _run(tmp_path, dead, target_mode="nftables")
    cluster = partb.connect(run)
    assert cluster.kc is None and partb.read(run, cluster) is None
    assert _checks(run)[("cluster API", "cluster")][0] == "unreachable" and run.exit_code == 3


def test_node_hosts_by_name_then_address():
    nodes = [kube.NodeInfo("lab-cp1", ["control-plane"], "10.77.1.11", True, "v1.30.4", "6.1", "Debian", "c"),
             kube.NodeInfo("node-b", ["worker"], "10.0.0.7", False, "v1.30.4", "6.1", "Debian", "c"),
             kube.NodeInfo("node-c", ["worker"], "10.0.0.8", False, "v1.30.4", "6.1", "Debian", "c")]
    hosts = [HostSpec(name="lab-cp1", address="10.77.1.11"), HostSpec(name="b", address="10.0.0.7")]
    assert node_hosts(nodes, hosts) == {"lab-cp1": "lab-cp1", "node-b": "b"}


def test_apply_without_confirm_withholds_the_switch_as_pending(tmp_path, api_double):
    """A refused destructive step is neither a crash nor a failure: the switch stays drift."""
    kubeconfig, _url, double = api_double
    params = {"cluster_name": "double", "mode": "apply", "kube": {"kubeconfig": str(kubeconfig), "request_timeout": 10},
              "kube_proxy_modes": {"target_mode": "nftables"}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    run = Run.start("kube-proxy-modes", str(path), [], str(tmp_path / "run"))
    cluster = partb.connect(run)
    partb.read(run, cluster)
    plan = partb.plan(run, cluster, run.params.kube_proxy_modes)
    assert partb.apply(run, cluster, plan, run.params.kube_proxy_modes) is None
    status, detail = _checks(run)[("kube-proxy switch apply", "cluster")]
    assert status == "info" and detail.startswith("apply without confirm") and "confirm=double" in detail
    assert verdict_for(run.checks) == "DRIFT" and run.exit_code == 0
    writes = [r for r in double.requests if r.method in ("PATCH", "PUT", "POST", "DELETE")]
    assert writes and all("dryRun=All" in r.query for r in writes)  # the plan's dry runs, nothing persisted
