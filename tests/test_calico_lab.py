"""Chapter 04 on its own 2-node lab `calico`: the conflist is read over SSH from real files (one node
gets the file install-cni writes, the other none), and the fresh-lab plan's verdict is PASS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_support import own_lab, params_file

from runbooks_lib.chapters.calico_ips import chapter, parse
from runbooks_lib.run import Run
from runbooks_lib.verdict import verdict_for

pytestmark = [pytest.mark.lab, pytest.mark.slow]
LAB = "calico"
FIX = Path(__file__).resolve().parent / "fixtures" / "calico"


@pytest.fixture(scope="module")
def lab_params(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The `calico` lab (brought up here unless it is up) and a parameter file; taken down if started."""
    with own_lab(LAB, nodes=2) as state:
        yield params_file(state, tmp_path_factory.mktemp(LAB) / f"{LAB}.yaml")


def plan(params: Path, run_dir: Path) -> Run:
    run = Run.start("calico-ips", str(params), [], str(run_dir))
    cl = chapter.connect(run)
    chapter.inspect(run, cl, run.params.calico_ips)
    chapter.conflists(run, cl)
    return run


def test_conflist_read_over_ssh_from_each_node(lab_params: Path, tmp_path: Path) -> None:
    fresh = plan(lab_params, tmp_path / "fresh")
    conf = {c.host: (c.status, c.detail) for c in fresh.checks if c.check == "calico: CNI conflist"}
    assert set(conf) == {f"{LAB}-cp1", f"{LAB}-w1"}
    assert {s for s, _ in conf.values()} == {"n/a in lab"}
    assert all("No such file" in d and "no calico-node" in d for _, d in conf.values())
    assert verdict_for(fresh.checks) == "PASS"

    node = fresh.transport(f"{LAB}-w1")
    text = (FIX / "10-calico.conflist").read_text().replace('"type": "k8s"\n',
                                                             '"type": "k8s"\n      },\n      "feature_control": {'
                                                             '\n          "floating_ips": true\n')
    assert parse.cni_config(text).floating_ips
    put = node.run(f"mkdir -p /etc/cni/net.d && cat > {parse.CONFLIST} <<'EOF'\n{text}\nEOF", sudo=True, timeout=30)
    assert put.ok, put.stderr
    try:
        run = plan(lab_params, tmp_path / "with-file")
    finally:
        assert node.run(f"rm -f {parse.CONFLIST}", sudo=True, timeout=30).ok
    conf = {c.host: (c.status, c.detail) for c in run.checks if c.check == "calico: CNI conflist"}
    assert conf[f"{LAB}-w1"] == ("pass", "ipam.type calico-ipam, policy.type k8s, feature_control "
                                         "{'floating_ips': True}")
    assert conf[f"{LAB}-cp1"][0] == "n/a in lab"
    assert any(r.kind == "command" and parse.CONFLIST in r.command and r.target == f"{LAB}-w1"
               for r in run.recorder.records)


def test_floating_ip_applied_and_its_node_level_checks_are_real_but_n_a(lab_params: Path, tmp_path: Path) -> None:
    """CRDs and a pool created in the lab's API server (as a manifest install and calico-node would),
    then floating IPs switched on (calico-node restarted node by node, gated) and the annotated
    Deployment applied; Felix's NAT rules are read over SSH for real; the floating IP from the other
    node is not probed (not a lab node's address): both n/a in lab, the first with what the node answered."""
    import yaml

    from runbooks_lib import kube
    from runbooks_lib.kube import plan

    setup = Run.start("calico-ips", str(lab_params), [], str(tmp_path / "setup"))
    kc = kube.connect(setup)
    crds = [o for o in yaml.safe_load_all((FIX / "calico.yaml").read_text()) if o["kind"] == "CustomResourceDefinition"]
    plan.apply(kc, plan.plan(kc, crds))
    if kc.get_or_none("IPPool", "default-ipv4-ippool", None, parse.CRD_API) is None:
        kc.create({"apiVersion": parse.CRD_API, "kind": "IPPool", "metadata": {"name": "default-ipv4-ippool"},
                   "spec": {"cidr": "10.244.0.0/16", "ipipMode": "Always", "nodeSelector": "all()"}})
    before = kc.get("ConfigMap", "calico-config", "kube-system")["data"]["cni_network_config"]
    run = Run.start("calico-ips", str(lab_params), ["mode=apply", f"confirm={LAB}", "calico_ips.floating_ip="
                    "{name: fip, ip: 10.244.200.10, enable: true}", "calico_ips.rollout_timeout_s=60"],
                    str(tmp_path / "apply"))
    try:
        cl = chapter.connect(run)
        chapter.inspect(run, cl, run.params.calico_ips)
        chapter.conflists(run, cl)
        chapter.floating_ip(run, cl, run.params.calico_ips)
    finally:  # the lab as it was: switches off, no workload
        kc.delete("Deployment", "fip", "default")
        kc.patch_configmap_key("calico-config", "kube-system", "cni_network_config", before)
        kc.delete("FelixConfiguration", "default", None, api_version=parse.CRD_API)
    got = {c.check: (c.host, c.status, c.detail) for c in run.checks}
    assert got["floating IP: switch on"][1] == "changed", got["floating IP: switch on"]
    host, status, detail = got["floating IP: NAT on the node"]
    assert host.startswith(f"{LAB}-") and status == "n/a in lab"
    assert "no cali-fip-dnat/cali-fip-snat chains" in detail
    other, status, detail = got["floating IP: reached from another node"]
    assert other != host and status == "n/a in lab" and "not probed: 10.244.200.10 is no lab node's address" in detail
    assert not [r for r in run.recorder.records if r.kind == "command" and "10.244.200.10" in r.command]
    assert any(r.kind == "command" and r.command == "iptables-save -t nat" and r.target == host
               for r in run.recorder.records)
    assert verdict_for(run.checks) == "PASS"
