"""The API double's node set is a parameter: seed, placement, scheduler, CLI ``--node``."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from runbooks_lib import kube
from runbooks_lib.evidence import Recorder
from runbooks_lib.lab.apiserver import ApiDouble
from runbooks_lib.lab.apiserver.seed import DEFAULT_NODES, name_suffix, parse_node_arg, seed_objects

LAB_NODES = [("lab-cp1", "10.77.5.11", "control-plane"), ("lab-w1", "10.77.5.12", "worker"),
             ("lab-w2", "10.77.5.13", "worker"), ("lab-w3", "10.77.5.14", "worker")]


def _pods(objs: list[dict], app: str) -> dict[str, str]:
    return {o["metadata"]["name"]: o["spec"]["nodeName"] for o in objs
            if o["kind"] == "Pod" and o["metadata"]["labels"].get("k8s-app") == app}


def test_default_seed_is_cp1_w1_w2():
    objs = seed_objects("v1.30.4")
    assert [o["metadata"]["name"] for o in objs if o["kind"] == "Node"] == ["cp1", "w1", "w2"]
    assert seed_objects("v1.30.4", DEFAULT_NODES) == objs
    assert sorted(_pods(objs, "kube-dns").values()) == ["w1", "w2"]
    assert list(_pods(objs, "metrics-server").values()) == ["w2"]


def test_seed_follows_the_given_nodes():
    objs = seed_objects("v1.30.9", LAB_NODES)
    nodes = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Node"}
    assert list(nodes) == ["lab-cp1", "lab-w1", "lab-w2", "lab-w3"]
    assert nodes["lab-w2"]["status"]["addresses"][0] == {"type": "InternalIP", "address": "10.77.5.13"}
    assert nodes["lab-w2"]["spec"]["podCIDR"] == "10.244.2.0/24"
    assert "node-role.kubernetes.io/control-plane" in nodes["lab-cp1"]["metadata"]["labels"]
    assert "node-role.kubernetes.io/control-plane" not in nodes["lab-w1"]["metadata"]["labels"]
    assert nodes["lab-w1"]["status"]["nodeInfo"]["kubeletVersion"] == "v1.30.9"
    proxies = _pods(objs, "kube-proxy")
    assert sorted(proxies.values()) == sorted(nodes)
    assert f"kube-proxy-{name_suffix('lab-w3', 'kube-proxy')}" in proxies
    # suffixes: hash of the node name, 5 characters of Kubernetes' alphabet, distinct per node and app
    suffixes = {n.rsplit("-", 1)[1] for n in [*proxies, *_pods(objs, "calico-node")]}
    assert len(suffixes) == 8 and all(len(s) == 5 and not set(s) & set("aeiou013") for s in suffixes)
    assert name_suffix("lab-w3", "kube-proxy") == name_suffix("lab-w3", "kube-proxy") != name_suffix("w3", "kube-proxy")
    assert set(_pods(objs, "kube-dns").values()) <= {"lab-w1", "lab-w2", "lab-w3"}
    assert set(_pods(objs, "metrics-server").values()) <= {"lab-w1", "lab-w2", "lab-w3"}
    cm = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "kube-proxy")
    assert "server: https://10.77.5.11:6443" in cm["data"]["kubeconfig.conf"]
    for pod in (o for o in objs if o["kind"] == "Pod"):
        host = next(n for n in nodes.values() if n["metadata"]["name"] == pod["spec"]["nodeName"])
        assert pod["status"]["hostIP"] == host["status"]["addresses"][0]["address"]


def test_control_plane_only_cluster_runs_everything_on_it():
    objs = seed_objects("v1.30.4", [("solo", "10.77.9.11", "control-plane")])
    assert set(_pods(objs, "kube-dns").values()) == {"solo"} and set(_pods(objs, "metrics-server").values()) == {"solo"}
    dns_ips = [o["status"]["podIP"] for o in objs if o["kind"] == "Pod" and o["spec"]["nodeName"] == "solo"
               and not o["spec"]["hostNetwork"]]
    assert len(set(dns_ips)) == 3 and all(ip.startswith("10.244.0.") for ip in dns_ips)


@pytest.mark.parametrize("bad", [[], [("a", "10.0.0.1", "worker"), ("a", "10.0.0.2", "worker")],
                                 [("a", "10.0.0.1", "master")], [("a", "not-an-ip", "worker")]])
def test_bad_node_sets_are_refused(bad):
    with pytest.raises(ValueError):
        seed_objects("v1.30.4", bad)


def test_parse_node_arg():
    assert parse_node_arg("lab-cp1=10.77.5.11:control-plane") == ("lab-cp1", "10.77.5.11", "control-plane")
    for bad in ("lab-cp1", "lab-cp1=10.77.5.11", "=10.1.1.1:worker", "x=10.1.1.1:boss"):
        with pytest.raises(ValueError):
            parse_node_arg(bad)


def test_double_with_lab_nodes_schedules_on_workers(tmp_path):
    double = ApiDouble(nodes=LAB_NODES[:2], rollout_step_s=0.1, pod_ready_s=0.1)
    double.start()
    try:
        kc = kube.KubeClient.from_kubeconfig(double.write_kubeconfig(tmp_path / "kc"), recorder=Recorder())
        assert [n.name for n in kc.nodes()] == ["lab-cp1", "lab-w1"]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
               "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}
        kc.create(pod)
        kc.wait_pod_ready("p", "default", timeout=10)
        got = kc.get("Pod", "p", "default")
        assert got["spec"]["nodeName"] == "lab-w1" and got["status"]["hostIP"] == "10.77.5.12"
        assert got["status"]["podIP"].startswith("10.244.1.")
        assert kc.raw_get("/api")["serverAddressByClientCIDRs"][0]["serverAddress"] == "10.77.5.11:6443"
    finally:
        double.stop()


def test_cli_node_option(tmp_path):
    path = tmp_path / "cli.kubeconfig"
    args = [sys.executable, "-m", "runbooks_lib.lab.apiserver", "--kubeconfig", str(path), "--version", "v1.30.9"]
    for name, ip, role in LAB_NODES[:3]:
        args += ["--node", f"{name}={ip}:{role}"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "API double serving at" in line
        kc = kube.KubeClient.from_kubeconfig(path, recorder=Recorder())
        assert [n.name for n in kc.nodes()] == ["lab-cp1", "lab-w1", "lab-w2"]
        assert kc.version["gitVersion"] == "v1.30.9"
        assert yaml.safe_load(path.read_text())["current-context"] == "kubernetes-admin@runbooks-api-double"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    bad = subprocess.run([sys.executable, "-m", "runbooks_lib.lab.apiserver", "--kubeconfig", str(path),
                          "--node", "x=10.1.1.1"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "NAME=IP:ROLE" in bad.stderr
