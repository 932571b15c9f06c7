"""Chapter 04 pure rules: CNI config and Calico objects parsed, the fixed-IP refusals (each one), the
floating-IP switches, the support table, event explanations (fixtures: tests/fixtures/calico)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from runbooks_lib.chapters.calico_ips import fixedip, floating, install, netcheck, parse
from runbooks_lib.chapters.calico_ips.settings import FixedIp, FloatingIp, Settings

FIX = Path(__file__).resolve().parent / "fixtures" / "calico"
pytestmark = pytest.mark.written_fixture


def pool(cidr: str = "10.244.0.0/16", **spec: object) -> dict:
    return {"apiVersion": parse.CRD_API, "kind": "IPPool", "metadata": {"name": f"p-{cidr}"},
            "spec": {"cidr": cidr, **spec}}


def cni(name: str = "10-calico.conflist") -> parse.CniConfig:
    return parse.cni_config((FIX / name).read_text())


def facts(**kw: object) -> fixedip.Facts:
    base: dict = {"cni": {"w1": cni(), "w2": cni()}, "pools": parse.pools([pool()]),
                  "blocks": [yaml.safe_load((FIX / "ipamblock.yaml").read_text())]}
    base.update(kw)
    return fixedip.Facts(**base)


# ---------------------------------------------------------------- parsing

def test_conflist_as_install_cni_writes_it() -> None:
    c = cni()
    assert (c.ipam_type, c.policy_type, c.feature_control, c.error) == ("calico-ipam", "k8s", {}, None)
    assert cni("10-canal-hostlocal.conflist").ipam_type == "host-local"
    assert parse.cni_config("{not json").error.startswith("not JSON")
    assert parse.cni_config('{"plugins": [{"type": "bridge"}]}').error == "no plugin of type calico"


def test_calico_config_template_with_bare_placeholders_parses_and_floating_ips_patch_keeps_them() -> None:
    manifest = yaml.safe_load_all((FIX / "calico.yaml").read_text())
    cm = next(o for o in manifest if o["kind"] == "ConfigMap")
    text = cm["data"]["cni_network_config"]
    assert '"mtu": __CNI_MTU__,' in text
    assert parse.cni_config(text).ipam_type == "calico-ipam"
    patched = parse.with_floating_ips(text)
    assert '"mtu": __CNI_MTU__' in patched and '"__KUBERNETES_NODE_NAME__"' in patched
    assert parse.cni_config(patched).floating_ips
    assert parse.with_floating_ips(patched) == patched  # idempotent


def test_ipam_block_allocation_lookup() -> None:
    block = yaml.safe_load((FIX / "ipamblock.yaml").read_text())
    ip = ipaddress.ip_address
    assert parse.allocated_in_blocks(ip("10.244.36.98"), [block]).startswith("k8s-pod-network.96cf")
    assert parse.allocated_in_blocks(ip("10.244.36.64"), [block]) == "ipip-tunnel-addr-w1"
    assert parse.allocated_in_blocks(ip("10.244.36.99"), [block]) is None
    assert parse.allocated_in_blocks(ip("10.244.37.1"), [block]) is None


def test_kubeadm_pod_subnet_image_version_and_support_table() -> None:
    cm = {"data": {"ClusterConfiguration": "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n"
                                           "networking:\n  podSubnet: 10.244.0.0/16\n  serviceSubnet: 10.96.0.0/16\n"}}
    assert parse.kubeadm_pod_subnet(cm) == "10.244.0.0/16"
    assert parse.kubeadm_pod_subnet(None) is None
    assert parse.image_version("docker.io/calico/node:v3.28.1") == (3, 28, 1)
    assert parse.image_version("registry.example.com:5000/calico/node:v3.31.7") == (3, 31, 7)
    assert parse.support((3, 28, 1), "v1.30.4")[0] == "pass"
    status, detail = parse.support((3, 28, 1), "v1.33.2")
    assert status == "fail" and "1.27-1.30" in detail
    assert parse.support((3, 27, 0), "v1.28.0")[0] == "warn"  # not in the table: never a guessed pass
    assert parse.felix_has_fip_switch((3, 21, 5)) and not parse.felix_has_fip_switch((3, 21, 4))
    assert parse.felix_has_fip_switch((3, 22, 2)) and not parse.felix_has_fip_switch((3, 22, 1))
    assert parse.felix_has_fip_switch((3, 28, 1)) and not parse.felix_has_fip_switch((3, 20, 0))


def test_dataplane_and_encapsulation() -> None:
    assert parse.dataplane({"spec": {"bpfEnabled": True}}, {}) == "bpf"
    assert parse.dataplane(None, {"FELIX_NFTABLESMODE": "Enabled"}) == "nftables"
    assert parse.dataplane(None, {}) == "iptables"
    assert parse.encapsulation(parse.pools([pool(vxlanMode="Always")]), {}) == "VXLAN"
    assert parse.encapsulation(parse.pools([pool(ipipMode="CrossSubnet")]), {}) == "IPIP"
    assert parse.encapsulation([], {"CALICO_IPV4POOL_IPIP": "Never"}) == "none"


# ---------------------------------------------------------------- fixed IP refusals (issue 15 §3)

def test_a_good_request_is_not_refused_but_told_to_reserve() -> None:
    req = FixedIp(name="myapp", ip="10.244.36.99")
    assert fixedip.refusals(req, facts()) == []
    assert "IPReservation" in fixedip.advice(req, facts())[0]
    reserved = facts(reservations=[{"spec": {"reservedCIDRs": ["10.244.36.99/32"]}}])
    assert fixedip.advice(req, reserved) == []
    manual = facts(pools=parse.pools([pool(nodeSelector="!all()")]))
    assert fixedip.advice(req, manual) == []


@pytest.mark.parametrize(("change", "needle"), [
    ({"cni": {"w1": cni("10-canal-hostlocal.conflist")}}, "IPAM is 'host-local', not calico-ipam"),
    ({"cni": {"w1": parse.CniConfig("calico-ipam", None)}}, "policy.type is None, not k8s"),
    ({"cni": {"w1": parse.CniConfig(error="/etc/cni/net.d/10-calico.conflist: No such file")}}, "cannot read"),
    ({"cni": {}}, "no node reports a Calico CNI config"),
    ({"pools": parse.pools([pool("192.168.0.0/16")])}, "outside every IPPool (192.168.0.0/16)"),
    ({"pools": parse.pools([pool(disabled=True)])}, "only in disabled pool"),
    ({"pools": parse.pools([pool(allowedUses=["Tunnel"])])}, "allowedUses exclude Workload"),
    ({"pod_ips": {"10.244.36.99": "shop/web-1"}}, "already allocated (pod shop/web-1)"),
])
def test_each_cluster_side_refusal(change: dict, needle: str) -> None:
    reasons = fixedip.refusals(FixedIp(name="myapp", ip="10.244.36.99"), facts(**change))
    assert len(reasons) == 1 and needle in reasons[0], reasons


def test_an_ip_held_in_an_ipam_block_is_refused_with_its_handle() -> None:
    reasons = fixedip.refusals(FixedIp(name="myapp", ip="10.244.36.98"), facts())
    assert len(reasons) == 1 and "IPAM handle k8s-pod-network.96cf" in reasons[0]


@pytest.mark.parametrize(("req", "needle"), [
    ({"replicas": 2}, "replicas 2"),
    ({"strategy": "RollingUpdate"}, "use strategy recreate"),
    ({"kind": "StatefulSet"}, "not supported upstream"),
])
def test_each_workload_refusal(req: dict, needle: str) -> None:
    reasons = fixedip.refusals(FixedIp(name="myapp", ip="10.244.36.99", **req), facts())
    assert len(reasons) == 1 and needle.lower() in reasons[0].lower(), reasons


def test_the_workloads_own_pod_holding_the_ip_is_not_a_refusal() -> None:
    live = {"metadata": {"name": "myapp"}}
    assert fixedip.refusals(FixedIp(name="myapp", ip="10.244.36.99"),
                            facts(pod_ips={"10.244.36.99": "default/myapp-7d9c-abcde"}, live=live)) == []


def test_unknown_pools_skip_the_pool_rules_and_render_carries_the_annotation() -> None:
    assert fixedip.refusals(FixedIp(name="a", ip="10.9.9.9"), facts(pools=None, blocks=[])) == []
    d = fixedip.render(FixedIp(name="myapp", ip="10.244.36.99"))
    assert d["spec"]["strategy"] == {"type": "Recreate"} and d["spec"]["replicas"] == 1
    assert json.loads(d["spec"]["template"]["metadata"]["annotations"][fixedip.ANNOTATION]) == ["10.244.36.99"]


def test_sandbox_events_explained() -> None:
    wanted = {"allocated": fixedip.ALLOCATED, "pool": "outside every enabled IPPool", "feature": "floating_ips",
              None: None}
    for e in yaml.safe_load((FIX / "events.yaml").read_text()):
        got = fixedip.explain(e["message"])
        want = wanted[e["means"]]
        assert (got is None) if want is None else (want in got), (e["source"], got)


# ---------------------------------------------------------------- floating IP (issue 15 §5)

def inst(**kw: object) -> floating.Install:
    base: dict = dict(mode="manifest", version=(3, 28, 1), dataplane="iptables", encapsulation="IPIP",
                      template=cni(), felix_floating_ips=None)
    base.update(kw)
    return floating.Install(**base)


def test_floating_ip_needs_both_switches() -> None:
    req = FloatingIp(name="fip", ip="10.244.36.99")
    rows = {r[0]: r[1] for r in floating.readiness(req, inst(), parse.pools([pool()]))}
    assert rows == {"floating IP: CNI feature_control": "fail", "floating IP: Felix floatingIPs": "fail",
                    "floating IP: in a pool": "pass"}
    rows = {r[0]: r[1] for r in floating.readiness(req.model_copy(update={"enable": True}), inst(),
                                                   parse.pools([pool()]))}
    assert rows["floating IP: CNI feature_control"] == rows["floating IP: Felix floatingIPs"] == "drift"
    on = inst(template=parse.CniConfig("calico-ipam", "k8s", {"floating_ips": True}), felix_floating_ips="Enabled")
    assert {r[1] for r in floating.readiness(req, on, parse.pools([pool()]))} == {"pass"}
    old = inst(template=on.template, version=(3, 20, 0))  # before Felix's switch: the CNI flag is enough
    assert {r[1] for r in floating.readiness(req, old, parse.pools([pool()]))} == {"pass"}


def test_floating_ip_refusals_and_warnings() -> None:
    req = FloatingIp(name="fip", ip="10.99.0.1")
    rows = floating.readiness(req, inst(mode="operator"), parse.pools([pool()]))
    assert len(rows) == 1 and rows[0][1] == "fail" and "operator" in rows[0][2]
    rows = floating.readiness(req, inst(dataplane="bpf", encapsulation="VXLAN"), parse.pools([pool()]))
    by = {r[0]: r for r in rows}
    assert by["floating IP: dataplane"][1] == by["floating IP: encapsulation"][1] == "warn"
    assert by["floating IP: in a pool"][1] == "fail"


# ---------------------------------------------------------------- install patches, net-tools, settings

def test_install_sets_the_pool_cidr_and_moves_images_to_the_mirror(tmp_path: Path) -> None:
    class R:
        recorder = None
    s = Settings(manifest=str(FIX / "calico.yaml"), image_mirror="registry.example.com/calico")
    objs, notes = install.desired(R(), s, "10.244.0.0/16", "v1.30.4")
    ds = next(o for o in objs if o["kind"] == "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["CALICO_IPV4POOL_CIDR"] == "10.244.0.0/16" and env["CALICO_IPV4POOL_IPIP"] == "Always"
    assert pod["containers"][0]["image"] == "registry.example.com/calico/node:v3.28.1"
    assert pod["initContainers"][0]["image"] == "registry.example.com/calico/cni:v3.28.1"
    assert pod["initContainers"][0]["env"][0]["name"] == "CNI_CONF_NAME"  # the rest of the container kept
    assert notes == ["CALICO_IPV4POOL_CIDR set to the pod subnet 10.244.0.0/16",
                     "2 image reference(s) moved to registry.example.com/calico"]


def test_net_tools_daemonset_is_the_seeds() -> None:
    ds = netcheck.daemonset("mirror.example.com/net-tools:1", "default", {"runbooks.io/run": "r1"})
    spec = ds["spec"]["template"]["spec"]
    assert spec["containers"][0]["command"] == ["/bin/sh", "-c", "set -e -x; tail -f /dev/null"]
    assert {t.get("key") for t in spec["tolerations"]} == {None, "CriticalAddonsOnly"}
    assert ds["spec"]["template"]["metadata"]["labels"]["runbooks.io/run"] == "r1"
    assert [n for n, _ in netcheck.PROBES][:2] == ["nc -vz kubernetes 443", "curl -k https://kubernetes"]


def test_settings_refuse_bad_values() -> None:
    with pytest.raises(ValidationError, match="does not appear to be an IPv4 or IPv6 address"):
        FixedIp(name="a", ip="10.244.1.500")
    with pytest.raises(ValidationError, match="needs manifest_sha256"):
        Settings(manifest_url="https://example.com/calico.yaml")
    with pytest.raises(ValidationError, match="has host bits set"):
        Settings(pod_subnet="10.244.0.1/16")


def test_felix_nat_rules_for_a_floating_ip() -> None:
    text = (FIX / "iptables-save-nat.txt").read_text()
    assert floating.nat_rules(text) == (True, {"10.244.36.100": "10.244.1.11"}, {"10.244.1.11": "10.244.36.100"})
    assert floating.nat_verdict(text, "10.244.36.100", "10.244.1.11") == (
        True, "DNAT 10.244.36.100 -> 10.244.1.11, SNAT 10.244.1.11 -> 10.244.36.100")
    ok, seen = floating.nat_verdict(text, "10.244.36.101", "10.244.1.12")
    assert not ok and "DNAT 10.244.36.101 -> 10.244.1.12 absent" in seen
    empty = "\n".join(line for line in text.splitlines() if not line.startswith("-A cali-fip"))
    ok, seen = floating.nat_verdict(empty, "10.244.36.100", "10.244.1.11")
    assert not ok and "Felix floatingIPs Disabled?" in seen  # chains there, rules not: the classic symptom
    ok, seen = floating.nat_verdict("*nat\nCOMMIT\n", "10.244.36.100", "10.244.1.11")
    assert not ok and "no cali-fip-dnat/cali-fip-snat chains" in seen
