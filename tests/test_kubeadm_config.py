"""Chapter 02: the rendered kubeadm config, its offline schema validation, the consistency checks."""

from __future__ import annotations

import pytest
import yaml

from runbooks_lib.chapters.kubeadm import config, consistency, schema
from runbooks_lib.chapters.kubeadm.settings import Settings

CP = config.Node("cp1", "10.10.1.21")


def render(version: str, **kw: object) -> config.Rendered:
    return config.render(Settings(**kw), version, "prod", CP, "iptables")  # type: ignore[arg-type]


def test_seed_version_renders_v1beta3_with_extra_args_as_a_map_and_is_valid() -> None:
    r = render("1.28.6", control_plane_endpoint="10.10.1.21")
    docs = {d["kind"]: d for d in yaml.safe_load_all(r.text)}
    assert r.api_version == "kubeadm.k8s.io/v1beta3"
    cluster = docs["ClusterConfiguration"]
    assert cluster["kubernetesVersion"] == "v1.28.6"
    assert cluster["imageRepository"] == "registry.aliyuncs.com/google_containers"
    assert cluster["networking"] == {"podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/16",
                                     "dnsDomain": "cluster.local"}
    assert cluster["controlPlaneEndpoint"] == "10.10.1.21:6443"
    assert isinstance(cluster["controllerManager"]["extraArgs"], dict)
    assert "timeouts" not in docs["InitConfiguration"]
    assert docs["KubeletConfiguration"]["cgroupDriver"] == "systemd"
    assert "127.0.0.1" in cluster["apiServer"]["certSANs"]
    assert "token" not in r.text and "certificateKey" not in r.text
    assert schema.validate(r.text) == []


def test_current_version_renders_v1beta4_with_name_value_args_and_timeouts() -> None:
    r = render("1.37.1")
    docs = {d["kind"]: d for d in yaml.safe_load_all(r.text)}
    assert r.api_version == "kubeadm.k8s.io/v1beta4"
    assert docs["ClusterConfiguration"]["controllerManager"]["extraArgs"][0] == {"name": "allocate-node-cidrs",
                                                                                 "value": "true"}
    assert docs["InitConfiguration"]["timeouts"]["controlPlaneComponentHealthCheck"] == "4m0s"
    assert schema.validate(r.text) == []


def test_v1beta3_for_137_is_refused_with_the_migrate_command() -> None:
    with pytest.raises(config.ConfigRefused, match="kubeadm config migrate"):
        render("1.37", api_version="v1beta3")
    with pytest.raises(config.ConfigRefused, match="1.31"):
        render("1.30.2", api_version="v1beta4")
    assert render("1.31.0").api_version.endswith("v1beta4") and render("1.30.9").api_version.endswith("v1beta3")


def test_schema_finds_unknown_fields_bad_cidrs_wrong_types_and_cross_version_fields() -> None:
    text = render("1.28.6").text
    bad = (text.replace("  podSubnet: 10.244.0.0/16", "  podSubnet: 10.244.0.1/16\n  podSubnett: x")
           .replace("cgroupDriver: systemd", "cgroupDrivr: systemd").replace("bindPort: 6443", "bindPort: '6443'"))
    problems = schema.validate(bad)
    assert any("podSubnett" in p for p in problems)
    assert any("networking.podSubnet" in p and "cidr" in p for p in problems)
    assert any("cgroupDrivr" in p for p in problems)
    assert any("localAPIEndpoint.bindPort" in p for p in problems)
    # v1beta4's timeouts block is unknown to v1beta3; a map extraArgs is wrong in v1beta4
    v3_with_timeouts = text.replace("kind: InitConfiguration\n", "kind: InitConfiguration\ntimeouts: {}\n")
    assert any("timeouts" in p for p in schema.validate(v3_with_timeouts))
    v4 = render("1.37.1").text.replace("  - name: allocate-node-cidrs\n    value: 'true'\n  - name: cluster-cidr\n"
                                       "    value: 10.244.0.0/16\n", "    allocate-node-cidrs: 'true'\n")
    assert any("controllerManager.extraArgs" in p for p in schema.validate(v4))
    mixed = text.replace("kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration", "kubeadm.k8s.io/v1beta4\nkind: "
                         "ClusterConfiguration")
    assert any("mix API versions" in p for p in schema.validate(mixed))


def test_networks_overlap_and_calico_pool() -> None:
    f = consistency.networks("10.96.0.0/12", "10.96.0.0/16", {"cp1": "10.0.0.1"}, None)
    assert ("networks.overlap", "fail") in [(c, s) for c, s, _ in f]
    f = consistency.networks("10.244.0.0/16", "10.96.0.0/16", {"cp1": "10.244.3.4"}, "10.245.0.0/16")
    statuses = {c: s for c, s, _ in f}
    assert statuses["networks.nodes"] == "fail" and statuses["networks.calico_pool"] == "fail"
    ok = {c: s for c, s, _ in consistency.networks("10.244.0.0/16", "10.96.0.0/16", {"a": "10.0.0.1"},
                                                   "10.244.0.0/16")}
    assert ok == {"networks.overlap": "pass", "networks.calico_pool": "pass"}
    unset = {c: s for c, s, _ in consistency.networks("10.244.0.0/16", "10.96.0.0/16", {}, None)}
    assert unset["networks.calico_pool"] == "pass"


def test_endpoint_rules_for_several_control_planes() -> None:
    cps = {"cp1": "10.0.0.1", "cp2": "10.0.0.2"}
    assert consistency.endpoint(cps, None, "none")[0][1] == "fail"
    spof = consistency.endpoint(cps, "10.0.0.1:6443", "none")[0]
    assert spof[1] == "fail" and "single point of failure" in spof[2]
    assert consistency.endpoint(cps, "10.0.0.100", "kube-vip")[0][1] == "pass"
    clash = consistency.endpoint(cps, "10.0.0.100", "keepalived-haproxy")[0]
    assert clash[1] == "fail" and "8443" in clash[2]
    assert consistency.endpoint(cps, "10.0.0.100:8443", "keepalived-haproxy")[0][1] == "pass"
    assert consistency.endpoint({"cp1": "10.0.0.1"}, None, "none")[0][1] == "info"


def test_images_coredns_path_rule_and_pause_mismatch() -> None:
    v = config.Version.parse("1.28.6")
    custom = consistency.images(v, "registry.aliyuncs.com/google_containers")
    assert "registry.aliyuncs.com/google_containers/coredns:v1.10.1" in custom.images
    upstream = consistency.images(v, "registry.k8s.io")
    assert "registry.k8s.io/coredns/coredns:v1.10.1" in upstream.images
    assert custom.pause == "registry.aliyuncs.com/google_containers/pause:3.9"
    assert consistency.sandbox(custom.pause, "registry.k8s.io/pause:3.6", "n1")[1] == "warn"
    assert consistency.sandbox(custom.pause, custom.pause, "n1")[1] == "pass"
    assert consistency.images(config.Version.parse("1.37.1"), "r").pause is None  # not guessed


def test_skew_and_ipvs_deprecation() -> None:
    target = config.Version.parse("1.30.2")
    found = {c: s for c, s, _ in consistency.skew(target, "v1.29.3", "v1.26.0", "n1")}
    assert found == {"version.kubeadm": "fail", "version.kubelet": "fail"}
    assert {s for _c, s, _ in consistency.skew(target, "v1.30.2", "v1.28.1", "n1")} == {"pass"}
    assert consistency.proxy_mode("ipvs", config.Version.parse("1.35.0"))[1] == "warn"
    assert consistency.proxy_mode("ipvs", config.Version.parse("1.30.0"))[1] == "pass"


def test_settings_refuse_bad_cidrs_and_sans() -> None:
    with pytest.raises(ValueError, match="host bits"):
        Settings(pod_network_cidr="10.244.0.1/16")
    with pytest.raises(ValueError, match="not an IP address or DNS name"):
        Settings(cert_sans=["bad name"])


def test_ha_configs_kube_vip_super_admin_trap_and_haproxy_backends() -> None:
    from runbooks_lib.chapters.kubeadm import ha

    cps = [("cp1", "10.0.0.1"), ("cp2", "10.0.0.2")]
    files = ha.render("kube-vip", "10.0.0.100", "eth0", cps, config.Version.parse("1.30.2"))
    first, others = (yaml.safe_load(t) for t in files.values())
    assert first["spec"]["volumes"][0]["hostPath"]["path"] == "/etc/kubernetes/super-admin.conf"
    assert others["spec"]["volumes"][0]["hostPath"]["path"] == "/etc/kubernetes/admin.conf"
    old = yaml.safe_load(next(iter(ha.render("kube-vip", "10.0.0.100", "eth0", cps,
                                             config.Version.parse("1.28.6")).values())))
    assert old["spec"]["volumes"][0]["hostPath"]["path"] == "/etc/kubernetes/admin.conf"
    kh = ha.render("keepalived-haproxy", "10.0.0.100:8443", "eth0", cps, config.Version.parse("1.30.2"))
    cfg = kh["/etc/haproxy/haproxy.cfg"]
    assert "bind *:8443" in cfg and "server cp2 10.0.0.2:6443 check" in cfg
    assert "10.0.0.100" in kh["/etc/keepalived/keepalived.conf (first control plane)"]
    assert ha.render("none", "10.0.0.100", "eth0", cps, config.Version.parse("1.30.2")) == {}


def test_reset_must_name_inventory_hosts(tmp_path: object) -> None:
    from pathlib import Path

    from runbooks_lib.params import ParamsError, load_params

    path = Path(str(tmp_path)) / "p.yaml"
    path.write_text("cluster_name: c\nssh: {strict_host_key: false}\nhosts: [{name: n1, address: 10.0.0.1}]\n"
                    "kubeadm: {reset: [n1, nope]}\n")
    with pytest.raises(ParamsError, match=r"kubeadm.reset: 'nope' names no host"):
        load_params(str(path), [])
    path.write_text(path.read_text().replace(", nope", ""))
    assert load_params(str(path), []).kubeadm.reset == ["n1"]


def test_endpoint_setting_refuses_anything_but_host_and_port() -> None:
    for bad in ("x';rm -rf /;'", "10.0.0.1:99999", "vip:https", "a b:6443"):
        with pytest.raises(ValueError):
            Settings(control_plane_endpoint=bad)
    for good in ("10.0.0.100", "vip.example:8443", "[fd00::1]:6443", "fd00::1"):
        assert Settings(control_plane_endpoint=good).control_plane_endpoint == good
    with pytest.raises(ValueError):
        Settings(vip_interface="eth0; reboot")
