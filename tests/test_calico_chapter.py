"""Chapter 04 against the lab's API server (api_double): the fresh-lab plan, refusals before any
request, install from an operator's calico.yaml (twice: the second changes nothing), fixed IP and
floating IP applied, the floating-IP gate rolled back, the net-tools check applied and cleaned up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from runbooks_lib import kube
from runbooks_lib.chapters.calico_ips import chapter, gate, parse
from runbooks_lib.kube import KubeClient, plan
from runbooks_lib.lab.apiserver import ApiDouble
from runbooks_lib.run import Run
from runbooks_lib.verdict import verdict_for

FIX = Path(__file__).resolve().parent / "fixtures" / "calico"
MANIFEST = str(FIX / "calico.yaml")
WRITES = ("create", "update", "patch", "delete", "deletecollection", "apply")


def make_run(tmp_path: Path, kubeconfig: Path, section: dict[str, Any], *, apply: bool = False,
             name: str = "run") -> Run:
    params: dict[str, Any] = {"cluster_name": "double", "calico_ips": section,
                              "kube": {"kubeconfig": str(kubeconfig), "request_timeout": 10}}
    if apply:
        params.update(mode="apply", confirm="double")
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return Run.start("calico-ips", str(path), [], str(tmp_path / name))


def steps(run: Run, gate: Any = None) -> chapter.Cluster:
    s = run.params.calico_ips
    cl = chapter.connect(run)
    chapter.inspect(run, cl, s)
    chapter.conflists(run, cl)
    if chapter.install_calico(run, cl, s) is not None:
        chapter.inspect(run, cl, s)
    chapter.fixed_ip(run, cl, s)
    chapter.floating_ip(run, cl, s, gate)
    chapter.net_check(run, cl, s)
    return cl


def by_check(run: Run) -> dict[str, list[tuple[str, str, str]]]:
    out: dict[str, list[tuple[str, str, str]]] = {}
    for c in run.checks:
        out.setdefault(c.check, []).append((c.host, c.status, c.detail))
    return out


def writes(double: ApiDouble, since: int) -> list[str]:
    return [f"{r.verb} {r.path}" for r in double.requests[since:] if r.verb in WRITES and "dryRun=All" not in r.query]


def without_calico(double: ApiDouble, kc: KubeClient) -> None:
    """The seeded lab as a cluster where Calico is not installed yet."""
    kc.delete("DaemonSet", "calico-node", "kube-system")
    kc.delete("ConfigMap", "calico-config", "kube-system")
    for p in kc.list_objects("Pod", "kube-system", label_selector="k8s-app=calico-node"):
        kc.delete("Pod", p["metadata"]["name"], "kube-system")


def add_pool(kc: KubeClient, cidr: str = "10.244.0.0/16") -> None:
    kc.create({"apiVersion": parse.CRD_API, "kind": "IPPool", "metadata": {"name": "default-ipv4-ippool"},
               "spec": {"cidr": cidr, "ipipMode": "Always", "natOutgoing": True, "nodeSelector": "all()"}})


def installed(tmp_path: Path, kubeconfig: Path, double: ApiDouble) -> KubeClient:
    """Calico installed from the fixture manifest on a lab without it, and a pool (as calico-node makes)."""
    run = make_run(tmp_path, kubeconfig, {"manifest": MANIFEST, "pod_subnet": "10.244.0.0/16"}, apply=True,
                   name="install")
    kc = kube.connect(run)
    without_calico(double, kc)
    steps(run)
    add_pool(kc)
    return kc


def dep_node(kc: KubeClient, app: str) -> str:
    return str(kc.list_objects("Pod", "default", label_selector=f"app={app}")[0]["spec"]["nodeName"])


def felix(kc: KubeClient) -> dict[str, Any] | None:
    return kc.get_or_none("FelixConfiguration", "default", None, parse.CRD_API)


def test_fresh_lab_plan_is_pass_and_writes_nothing(tmp_path: Path, api_double: tuple[Path, str, ApiDouble]) -> None:
    kubeconfig, _, double = api_double
    run = make_run(tmp_path, kubeconfig, {})
    mark = len(double.requests)
    steps(run)
    checks = by_check(run)
    assert checks["calico: install"][0][1:] == ("info", "manifest install, Calico v3.28.1, dataplane iptables, "
                                                       "encapsulation IPIP")
    assert checks["calico: Kubernetes support"][0][1] == "pass"
    host, status, detail = checks["calico: CRDs"][0]
    assert status == "n/a in lab" and "no Calico CRDs" in detail
    assert writes(double, mark) == []
    assert verdict_for(run.checks) == "PASS"


def test_refusals_come_before_any_request(tmp_path: Path, api_double: tuple[Path, str, ApiDouble]) -> None:
    kubeconfig, _, double = api_double
    installed(tmp_path, kubeconfig, double)
    run = make_run(tmp_path, kubeconfig, {"fixed_ip": {"name": "myapp", "ip": "10.99.0.5", "replicas": 2,
                                                       "strategy": "RollingUpdate"},
                                          "floating_ip": {"name": "fip", "ip": "10.99.0.6", "enable": True}},
                   apply=True)
    mark = len(double.requests)
    steps(run)
    refused = [d for _, _, d in by_check(run)["fixed IP 10.99.0.5: refused"]]
    assert len(refused) == 3
    assert any("outside every IPPool (10.244.0.0/16)" in d for d in refused)
    assert any("replicas 2" in d for d in refused) and any("RollingUpdate" in d for d in refused)
    assert by_check(run)["floating IP: in a pool"][0][1] == "fail"
    assert writes(double, mark) == []  # nothing created, patched or restarted
    assert double.object("Deployment", "myapp", "default") is None
    assert verdict_for(run.checks) == "FAIL"


def test_install_from_manifest_then_fixed_and_floating_ip_applied(
        tmp_path: Path, api_double: tuple[Path, str, ApiDouble]) -> None:
    kubeconfig, _, double = api_double
    section = {"manifest": MANIFEST, "pod_subnet": "10.244.0.0/16"}
    plan_run = make_run(tmp_path, kubeconfig, section, name="plan")
    kc = kube.connect(plan_run)
    without_calico(double, kc)
    steps(plan_run)
    assert by_check(plan_run)["calico: install"][0][1] == "drift"
    assert verdict_for(plan_run.checks) == "DRIFT"

    first = make_run(tmp_path, kubeconfig, section, apply=True, name="first")
    steps(first)
    checks = by_check(first)
    objects = [c for c in first.checks if c.check.startswith("object ")]
    assert len(objects) == 9 and {c.status for c in objects} == {"changed"}, [c.detail for c in objects]
    assert checks["DaemonSet kube-system/calico-node rolled out"][0][1] == "pass"
    ds = double.object("DaemonSet", "calico-node", "kube-system")
    env = {e["name"]: e.get("value") for e in ds["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CALICO_IPV4POOL_CIDR"] == "10.244.0.0/16"
    assert checks["calico: IPPools"][0][1] == "n/a in lab"  # no calico-node runs to create the default pool

    mark = len(double.requests)
    second = make_run(tmp_path, kubeconfig, section, apply=True, name="second")
    steps(second)
    assert {c.status for c in second.checks if c.check.startswith("object ")} == {"pass"}
    assert not [w for w in writes(double, mark) if "/apply" in w or "calico" in w]

    add_pool(kc)
    run = make_run(tmp_path, kubeconfig, {"fixed_ip": {"name": "myapp", "ip": "10.244.36.99"},
                                          "floating_ip": {"name": "fip", "ip": "10.244.36.100", "enable": True}},
                   apply=True, name="ips")
    steps(run)
    checks = by_check(run)
    assert checks["fixed IP 10.244.36.99: reservation"][0][1] == "warn"
    dep = double.object("Deployment", "myapp", "default")
    assert dep["spec"]["template"]["metadata"]["annotations"]["cni.projectcalico.org/ipAddrs"] == '["10.244.36.99"]'
    assert dep["spec"]["strategy"]["type"] == "Recreate"
    assert checks["fixed IP 10.244.36.99: pod IP"][0][1] == "n/a in lab"
    assert checks["floating IP: switch on"][0][1] == "changed"
    cm = double.object("ConfigMap", "calico-config", "kube-system")
    assert parse.cni_config(cm["data"]["cni_network_config"]).floating_ips
    assert felix(kc)["spec"]["floatingIPs"] == "Enabled"
    assert checks["floating IP: WorkloadEndpoint ipNATs"][0][1] == "n/a in lab"
    assert checks["floating IP: NAT on the node"][0][1:] == ("warn", "no inventory host for node "
                                                             f"{dep_node(kc, 'fip')}: not read")
    assert verdict_for(run.checks) == "PASS"

    again = make_run(tmp_path, kubeconfig, {"floating_ip": {"name": "fip", "ip": "10.244.36.100", "enable": True}},
                     apply=True, name="again")
    mark = len(double.requests)
    steps(again)
    assert {s for _, s, _ in by_check(again)["floating IP: CNI feature_control"]} == {"pass"}
    assert "floating IP: switch on" not in by_check(again)  # already on: no restart
    assert not [w for w in writes(double, mark) if "/pods/" in w]


def test_floating_ip_switch_rolls_back_on_a_failing_gate(tmp_path: Path,
                                                        api_double: tuple[Path, str, ApiDouble]) -> None:
    kubeconfig, _, double = api_double
    kc = installed(tmp_path, kubeconfig, double)
    before = double.object("ConfigMap", "calico-config", "kube-system")["data"]["cni_network_config"]
    seen: list[str] = []

    def gate(kc: KubeClient, node: str, old_uid: str, timeout: float) -> tuple[bool, str]:
        seen.append(node)
        return (len(seen) < 2, "healthy" if len(seen) < 2 else "Felix not ready")

    run = make_run(tmp_path, kubeconfig, {"floating_ip": {"name": "fip", "ip": "10.244.36.100", "enable": True}},
                   apply=True)
    steps(run, gate)
    host, status, detail = by_check(run)["floating IP: switch on"][0]
    assert status == "fail" and f"gate failed on {seen[1]} (Felix not ready)" in detail
    assert seen == ["cp1", "w1"]  # stopped at the failing node; w2 never restarted
    assert double.object("ConfigMap", "calico-config", "kube-system")["data"]["cni_network_config"] == before
    assert felix(kc) is None  # there was none before
    assert double.object("Deployment", "fip", "default") is None
    assert verdict_for(run.checks) == "FAIL"


def test_floating_ip_refused_on_an_operator_install(tmp_path: Path, api_double: tuple[Path, str, ApiDouble]) -> None:
    kubeconfig, _, double = api_double
    run = make_run(tmp_path, kubeconfig, {"floating_ip": {"name": "fip", "ip": "10.244.36.100", "enable": True}},
                   apply=True)
    kc = kube.connect(run)
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "installations.operator.tigera.io"},
           "spec": {"group": "operator.tigera.io", "scope": "Cluster",
                    "names": {"kind": "Installation", "plural": "installations", "singular": "installation",
                              "listKind": "InstallationList"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}
    plan.apply(kc, plan.plan(kc, [crd, {"apiVersion": "operator.tigera.io/v1", "kind": "Installation",
                                        "metadata": {"name": "default"}, "spec": {"cni": {"type": "Calico"}}}]))
    mark = len(double.requests)
    steps(run)
    host, status, detail = by_check(run)["floating IP: install"][0]
    assert status == "fail" and "operator-managed Calico does not support floating IPs" in detail
    assert writes(double, mark) == []


def test_net_tools_check_applied_probed_and_cleaned_up(tmp_path: Path,
                                                      api_double: tuple[Path, str, ApiDouble]) -> None:
    kubeconfig, _, double = api_double
    plan_run = make_run(tmp_path, kubeconfig, {"net_check": True}, name="plan")
    steps(plan_run)
    assert by_check(plan_run)["net-tools DaemonSet"][0][1] == "info"
    assert double.object("DaemonSet", "net-tools", "default") is None

    run = make_run(tmp_path, kubeconfig, {"net_check": True, "net_tools_image": "busybox:1.36"}, apply=True)
    steps(run)
    checks = by_check(run)
    assert checks["DaemonSet default/net-tools rolled out"][0][1] == "pass"
    nc = checks["net: nc -vz kubernetes 443"]
    assert sorted(h for h, _, _ in nc) == ["cp1", "w1", "w2"]
    assert {s for _, s, _ in nc} == {"n/a in lab"} and "exit 1" in nc[0][2]  # the lab's real outcome, never pass
    assert len(checks["net: ping w1"]) == 2  # from cp1 and w2
    assert checks["net-tools cleanup"][0][1] == "pass"
    assert double.object("DaemonSet", "net-tools", "default") is None
    assert not double.objects("Pod", "default", "k8s-app=net-tools")


def test_the_default_gate_waits_for_a_ready_replacement(tmp_path: Path,
                                                        api_double: tuple[Path, str, ApiDouble]) -> None:
    kubeconfig, _, double = api_double
    kc = kube.connect(make_run(tmp_path, kubeconfig, {}))
    old = kc.list_objects("Pod", "kube-system", label_selector="k8s-app=calico-node", field_selector="spec.nodeName=w1")
    kc.delete("Pod", old[0]["metadata"]["name"], "kube-system")
    ok, seen = gate.calico_node_ready(kc, "w1", old[0]["metadata"]["uid"], timeout=30)
    assert ok and seen.endswith("Ready"), seen
    ok, seen = gate.calico_node_ready(kc, "w9", "", timeout=2)  # a node where nothing replaces anything
    assert not ok and "no replacement on w9 yet" in seen
