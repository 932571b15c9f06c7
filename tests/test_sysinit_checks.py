"""Compliance evaluation (pure): a fresh and an applied Debian lab node (captured gathers), and a Rocky 9
node assembled from written Rocky outputs (fixtures/facts/PROVENANCE.md)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from runbooks_lib.chapters.system_init.checks import (
    CHECKS,
    Desired,
    Node,
    pending_changes,
    uniqueness,
)
from runbooks_lib.chapters.system_init.drift import plan_findings as evaluate
from runbooks_lib.chapters.system_init.gather import NodeFacts, parse
from runbooks_lib.chapters.system_init.settings import Settings
from runbooks_lib.facts import files, script

FX = Path(__file__).resolve().parent / "fixtures" / "facts"
CLUSTER = [("sysinit-cp1", "10.77.109.11"), ("sysinit-w1", "10.77.109.12"), ("sysinit-w2", "10.77.109.13")]
SANDBOX = "registry.aliyuncs.com/google_containers/pause:3.9"


def desired(**settings: object) -> Desired:
    s = Settings(ntp_servers=["10.77.109.11"], **settings)  # type: ignore[arg-type]
    return Desired(s, "1.30", SANDBOX, s.kube_proxy_mode, CLUSTER)


def lab_facts(state: str, node: str) -> NodeFacts:
    text = (FX / f"debian12-lab-gather-{state}-{node}.txt").read_text()
    return parse(f"sysinit-{node}", script.split(text))


def by_check(findings: list) -> dict:
    return {f.check: f for f in findings}


def test_fresh_lab_node_lists_the_non_compliances() -> None:
    f = lab_facts("fresh", "w1")
    got = by_check(evaluate(f, Node("sysinit-w1", "10.77.109.12", ["worker"], True), desired()))
    for check in ("sysctl.persisted", "modules.persisted", "crictl.config", "containerd.config", "hosts", "packages"):
        assert got[check].status == "drift", check
    assert got["sysctl.persisted"].change is not None and "+net.ipv4.ip_forward = 1" in got["sysctl.persisted"].change.diff
    assert "containerd is not installed" in got["containerd.config"].detail
    assert got["kube.packages"].status == "n/a in lab" and got["sysctl.runtime"].status == "n/a in lab"
    assert got["selinux.runtime"].status == "n/a" and "SELinux is not used" in got["selinux.runtime"].detail
    assert got["modules.loaded"].status == "pass"          # built in: seen via procfs, not lsmod
    assert got["swap.off"].status == "pass"
    order = [c.check for c in pending_changes(list(got.values()))]
    assert order[0] == "packages" and order.index("sysctl.persisted") < order.index("hosts")


def test_applied_lab_node_is_compliant_with_no_changes() -> None:
    for node, roles in (("cp1", ["control-plane", "etcd"]), ("w1", ["worker"])):
        f = lab_facts("applied", node)
        findings = evaluate(f, Node(f"sysinit-{node}", "", roles, True), desired())
        bad = [(x.check, x.status, x.detail) for x in findings if x.status in ("fail", "error")]
        assert bad == []
        assert pending_changes(findings) == []
        assert {x.check for x in findings} | {"host.lab", "unique.hostname", "unique.mac",
                                              "unique.product_uuid"} == set(CHECKS)


def test_same_facts_outside_the_lab_drift_instead_of_na() -> None:
    f = lab_facts("applied", "w1")
    got = by_check(evaluate(f, Node("sysinit-w1", "", ["worker"], False), desired()))
    assert got["kube.packages"].status == "drift" and got["kube.packages"].change is not None
    assert got["sysctl.runtime"].status == "drift"
    assert "sysctl -w vm.swappiness=0" in got["sysctl.runtime"].change.commands
    assert got["kubelet.enabled"].status == "drift"       # not installed: the kube.packages change installs it
    assert "kube.packages change" in got["kubelet.enabled"].detail


def test_ipvs_mode_in_the_lab_is_na_with_the_reason() -> None:
    f = lab_facts("applied", "w1")
    got = by_check(evaluate(f, Node("sysinit-w1", "", ["worker"], True), desired(kube_proxy_mode="ipvs")))
    assert got["modules.persisted"].status == "drift"           # ip_vs* not yet in k8s.conf
    assert got["modules.loaded"].status == "n/a in lab"
    assert "not in this kernel: ip_vs" in got["modules.loaded"].detail


def test_nftables_mode_needs_kernel_5_13() -> None:
    f = lab_facts("applied", "w1")
    f.kernel = "5.10.0-28-amd64"
    got = by_check(evaluate(f, Node("sysinit-w1", "", ["worker"], True), desired(kube_proxy_mode="nftables")))
    assert got["host.kernel"].status == "fail" and "5.13" in got["host.kernel"].detail


def rocky_node() -> NodeFacts:
    def sec(name: str, text: str, code: int = 0) -> script.Section:
        return script.Section(name, text, code)

    rd = (FX / "rocky9-").as_posix()
    file_map = {"/etc/chrony.conf": Path(rd + "chrony.conf").read_text(),
                "/etc/fstab": Path(rd + "fstab").read_text(), "/etc/hosts": "127.0.0.1 localhost\n"}
    files_out = "".join(
        f"{files.MARK} {p} {base64.b64encode(c.encode()).decode()}\n" for p, c in file_map.items())
    raw = {
        "os_release": sec("os_release", Path(rd + "os-release").read_text()),
        "uname": sec("uname", Path(rd + "uname-r.txt").read_text()),
        "pid1": sec("pid1", "systemd\n"), "cgroup": sec("cgroup", Path(rd + "cgroup-fs.txt").read_text()),
        "hostname": sec("hostname", "k8s-master01\n"), "resolve": sec("resolve", "10.10.1.21\n"),
        "nproc": sec("nproc", "4\n"), "meminfo": sec("meminfo", "MemTotal:        7864320 kB\n"),
        "product_uuid": sec("product_uuid", Path(rd + "product_uuid").read_text()),
        "ip_link": sec("ip_link", Path(rd + "ip-o-link.txt").read_text()),
        "tools": sec("tools", "ip /usr/sbin/ip\niptables /usr/sbin/iptables\nmount /usr/bin/mount\n"
                     "nsenter /usr/bin/nsenter\nconntrack /usr/sbin/conntrack\nsocat /usr/bin/socat\n"
                     "ebtables -\nethtool /usr/sbin/ethtool\ntc /usr/sbin/tc\n"),
        "ports": sec("ports", Path(rd + "ss-ltnpH.txt").read_text()),
        "packages": sec("packages", Path(rd + "rpm-qa.txt").read_text()),
        "units": sec("units", Path(rd + "systemctl-show.txt").read_text()),
        "firewall": sec("firewall", "installed\nrunning\n"),
        "selinux": sec("selinux", "Enforcing\n--\n" + Path(rd + "selinux-config").read_text()),
        "swaps": sec("swaps", Path(rd + "proc-swaps").read_text()),
        "proc_modules": sec("proc_modules", Path(rd + "proc-modules.txt").read_text()),
        "filesystems": sec("filesystems", "nodev\toverlay\n"), "sys_module": sec("sys_module", ""),
        "probes": sec("probes", "bridge/bridge-nf-call-iptables\nbridge/bridge-nf-call-ip6tables\n"),
        "modinfo": sec("modinfo", Path(rd + "modinfo.txt").read_text()),
        "sysctl": sec("sysctl", "net.ipv4.ip_forward\trw\t1\nvm.swappiness\trw\t30\n"),
        "tracking": sec("tracking", Path(rd + "chronyc-tracking.txt").read_text()),
        "containerd_version": sec("containerd_version", Path(rd + "containerd-version.txt").read_text()),
        "containerd_default": sec("containerd_default",
                                  (FX / "debian12-containerd-1.6-config-default.toml").read_text()),
        "ctr_plugins": sec("ctr_plugins", Path(rd + "ctr-plugins-ls.txt").read_text()),
        "files": sec("files", files_out + f"{files.MARK} /etc/containerd/config.toml "
                     + base64.b64encode((FX / "containerd.io-config.toml").read_bytes()).decode()
                     + "\n"),
    }
    return parse("k8s-master01", raw)


@pytest.mark.written_fixture
def test_rocky9_node_plan() -> None:
    f = rocky_node()
    assert f.family == "rhel"
    node = Node("k8s-master01", "10.10.1.21", ["control-plane", "etcd"], False)
    d = Desired(Settings(), "1.30", SANDBOX, "iptables", [("k8s-master01", "10.10.1.21")])
    got = by_check(evaluate(f, node, d))
    assert got["selinux.runtime"].change.commands == ["setenforce 0"]
    assert "+SELINUX=permissive" in got["selinux.config"].change.diff
    assert got["firewall"].change.commands == ["systemctl disable --now firewalld"]
    assert got["swap.off"].change.commands == ["swapoff -a"]
    assert got["swap.fstab"].status == "drift"
    assert got["host.ports"].status == "pass"                       # held by the cluster's own components
    assert "curl" not in got["packages"].detail                     # curl-minimal counts
    assert "sysstat" in got["packages"].detail
    assert got["containerd.config"].status == "drift" and "CRI plugin disabled" in got["containerd.config"].detail
    assert '-disabled_plugins = ["cri"]' in got["containerd.config"].change.diff
    assert got["containerd.cri"].status == "drift" and "[ERROR CRI]" in got["containerd.cri"].detail
    assert "fixed by apply's packages, containerd.config and containerd.service changes" in got["containerd.cri"].detail
    assert got["kube.packages"].status == "drift" and "kubectl 1.29.6" in got["kube.packages"].detail
    assert got["kube.packages"].change.commands[0].startswith("dnf install -y --disableexcludes=kubernetes kubectl-1.30*")
    assert got["chrony.config"].status == "drift" and got["chrony.sync"].status == "pass"
    # nothing here is beyond apply: a plan of this node is DRIFT, not FAIL
    assert [c for c, fd in got.items() if fd.status in ("fail", "error")] == []
    assert got["host.cgroup"].status == "pass" and got["host.memory"].status == "pass"
    assert got["sysctl.runtime"].change.commands == ["sysctl -w net.bridge.bridge-nf-call-iptables=1",
                                                      "sysctl -w net.bridge.bridge-nf-call-ip6tables=1",
                                                      "sysctl -w vm.swappiness=0",
                                                      "sysctl -w fs.inotify.max_user_instances=8192",
                                                      "sysctl -w fs.inotify.max_user_watches=524288"]


@pytest.mark.written_fixture
def test_uniqueness_across_nodes() -> None:
    a, b = rocky_node(), rocky_node()
    nodes = {"a": Node("a", "", ["worker"], False), "b": Node("b", "", ["worker"], False)}
    res = uniqueness({"a": a, "b": b}, nodes)
    got = {f.check: f.status for f in res["a"]}
    assert got == {"unique.hostname": "fail", "unique.mac": "fail", "unique.product_uuid": "fail"}
    lab_nodes = {k: Node(k, "", ["worker"], True) for k in nodes}
    assert {f.check: f.status for f in uniqueness({"a": a, "b": b}, lab_nodes)["b"]}["unique.product_uuid"] == "n/a in lab"
    w1, w2 = lab_facts("applied", "w1"), lab_facts("applied", "cp1")
    ok = uniqueness({"w1": w1, "cp1": w2}, {"w1": Node("w1", "", [], True), "cp1": Node("cp1", "", [], True)})
    assert {f.check: f.status for f in ok["w1"]} == {"unique.hostname": "pass", "unique.mac": "pass",
                                                     "unique.product_uuid": "n/a in lab"}
