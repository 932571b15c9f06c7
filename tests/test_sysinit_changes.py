"""Idempotent changes: a change only when the fact differs, "no change" after it is applied."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from runbooks_lib.changes import (
    Change,
    NoChange,
    containerd,
    firewall,
    hosts,
    kube,
    modules,
    packages,
    selinux,
    swap,
)
from runbooks_lib.changes import chrony as chrony_c
from runbooks_lib.changes import sysctl as sysctl_c
from runbooks_lib.changes.files import managed_block, unified_diff
from runbooks_lib.changes.toml import dumps
from runbooks_lib.facts import containerd as containerd_f
from runbooks_lib.facts import firewall as firewall_f
from runbooks_lib.facts import selinux as selinux_f
from runbooks_lib.facts.chrony import sources
from runbooks_lib.facts.sysctl import Runtime

FX = Path(__file__).resolve().parent / "fixtures" / "facts"
SANDBOX = "registry.aliyuncs.com/google_containers/pause:3.9"


def fx(name: str) -> str:
    return (FX / name).read_text()


@pytest.mark.parametrize("name", ["debian12-containerd-1.6-config-default.toml",
                                  "containerd-2.0-config-default-excerpt.toml",
                                  "debian12-containerd-config-applied.toml"])
def test_toml_writer_round_trips(name: str) -> None:
    data = tomllib.loads(fx(name))
    assert tomllib.loads(dumps(data)) == data


def test_toml_writer_is_containerds_layout() -> None:
    text = fx("debian12-containerd-1.6-config-default.toml")
    assert dumps(tomllib.loads(text)) == text


def test_containerd_io_stub_renders_from_default_and_then_no_change() -> None:
    stub_text = fx("containerd.io-config.toml")
    stub, _ = containerd_f.parse_config(stub_text)
    default, _ = containerd_f.parse_config(fx("debian12-containerd-1.6-config-default.toml"))
    ch = containerd.config_change(stub_text, stub, default, SANDBOX)
    assert isinstance(ch, Change) and ch.path == "/etc/containerd/config.toml"
    assert '-disabled_plugins = ["cri"]' in ch.diff and "+            SystemdCgroup = true" in ch.diff
    assert ch.commands == ["systemctl restart containerd"]
    new = tomllib.loads(ch.content or "")
    assert containerd.compliant(containerd_f.cri_config(new), SANDBOX) == []
    assert new["plugins"]["io.containerd.grpc.v1.cri"]["cni"]["bin_dir"] == "/opt/cni/bin"   # default kept
    again = containerd.config_change(ch.content, new, default, SANDBOX)
    assert isinstance(again, NoChange) and "no change" in str(again)


def test_containerd_v3_layout_edit() -> None:
    text = fx("containerd-2.0-config-default-excerpt.toml")
    cfg, _ = containerd_f.parse_config(text)
    ch = containerd.config_change(text, cfg, cfg, SANDBOX)
    assert isinstance(ch, Change)
    new = tomllib.loads(ch.content or "")
    runc = new["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]["runc"]
    assert runc["options"]["SystemdCgroup"] is True and runc["runtime_type"] == "io.containerd.runc.v2"
    assert new["plugins"]["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"] == SANDBOX
    assert new["version"] == 3


def test_containerd_partial_debian_config_gets_runtime_type() -> None:
    """Debian's shipped config is partial: a runtimes.runc table must not lose runtime_type."""
    partial = ('version = 2\n[plugins]\n  [plugins."io.containerd.grpc.v1.cri"]\n'
               '    [plugins."io.containerd.grpc.v1.cri".cni]\n      bin_dir = "/usr/lib/cni"\n')
    cfg, _ = containerd_f.parse_config(partial)
    default, _ = containerd_f.parse_config(fx("debian12-containerd-1.6-config-default.toml"))
    ch = containerd.config_change(partial, cfg, default, SANDBOX)
    assert isinstance(ch, Change)
    new = tomllib.loads(ch.content or "")
    cri = new["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["cni"]["bin_dir"] == "/usr/lib/cni"                   # the operator's/package's value survives
    assert cri["containerd"]["runtimes"]["runc"]["runtime_type"] == "io.containerd.runc.v2"
    applied, _ = containerd_f.parse_config(fx("debian12-containerd-config-applied.toml"))
    assert containerd.compliant(containerd_f.cri_config(applied), SANDBOX) == []


def test_crictl() -> None:
    want = containerd.crictl_desired("unix:///var/run/containerd/containerd.sock")
    ch = containerd.crictl_change(None, None, want)
    assert isinstance(ch, Change) and ch.diff.startswith("--- /dev/null")
    assert ch.content == fx("debian12-crictl.yaml")
    assert isinstance(containerd.crictl_change(ch.content, containerd_f.parse_crictl(ch.content or ""), want), NoChange)


def test_sysctl_never_lowers_operator_values() -> None:
    rt = {"fs.inotify.max_user_instances": Runtime("fs.inotify.max_user_instances", "128", False),
          "fs.inotify.max_user_watches": Runtime("fs.inotify.max_user_watches", "1048576", False)}
    persisted = {"fs.inotify.max_user_instances": ("16384", "/etc/sysctl.d/90-operator.conf")}
    values = sysctl_c.desired_values({"net.ipv4.ip_forward": "1"},
                                     {"fs.inotify.max_user_instances": 8192, "fs.inotify.max_user_watches": 524288},
                                     rt, persisted)
    assert values == {"net.ipv4.ip_forward": "1", "fs.inotify.max_user_instances": "16384",
                      "fs.inotify.max_user_watches": "1048576"}
    text = sysctl_c.render(values)
    assert isinstance(sysctl_c.file_change(text, values), NoChange)
    ch = sysctl_c.file_change(None, values)
    assert isinstance(ch, Change) and "+net.ipv4.ip_forward = 1" in ch.diff
    differs = sysctl_c.runtime_differs(values, {"fs.inotify.max_user_instances": 8192}, {
        **rt, "net.ipv4.ip_forward": Runtime("net.ipv4.ip_forward", "0", True)})
    assert differs == {"net.ipv4.ip_forward": "1", "fs.inotify.max_user_instances": "16384"}
    run = sysctl_c.runtime_change({"net.ipv4.ip_local_port_range": "1024 65000"})
    assert isinstance(run, Change) and run.commands == ["sysctl -w 'net.ipv4.ip_local_port_range=1024 65000'"]


def test_swap_fstab_commented_once() -> None:
    ch = swap.fstab_change(fx("rocky9-fstab"))
    assert isinstance(ch, Change) and ch.content is not None
    assert "+# disabled by runbooks (kubelet needs swap off): /dev/mapper/rl-swap" in ch.diff
    assert isinstance(swap.fstab_change(ch.content), NoChange)
    assert isinstance(swap.off_change(["/dev/dm-1"]), Change) and isinstance(swap.off_change([]), NoChange)


def test_modules_file_semantic_compare() -> None:
    want = ["overlay", "br_netfilter", "nf_conntrack"]
    ch = modules.persist_change(None, want)
    assert isinstance(ch, Change) and ch.path == "/etc/modules-load.d/k8s.conf"
    assert isinstance(modules.persist_change("nf_conntrack\noverlay\nbr_netfilter\n", want), NoChange)
    assert isinstance(modules.persist_change("overlay\n", want), Change)
    assert modules.load_change(["ip_vs"]).commands == ["modprobe ip_vs"]  # type: ignore[union-attr]


def test_chrony_rocky_pool_replaced_idempotently() -> None:
    conf = fx("rocky9-chrony.conf")
    ch = chrony_c.config_change("/etc/chrony.conf", conf, ["ntp.aliyun.com"], "chronyd")
    assert isinstance(ch, Change) and ch.commands == ["systemctl restart chronyd"]
    assert sources(ch.content or "") == [("server", "ntp.aliyun.com")]
    assert "sourcedir /run/chrony-dhcp" in (ch.content or "")
    assert isinstance(chrony_c.config_change("/etc/chrony.conf", ch.content, ["ntp.aliyun.com"], "chronyd"), NoChange)
    # a wanted server already configured in an included file is not added twice
    deb = fx("debian12-chrony.conf")
    assert isinstance(chrony_c.config_change("/etc/chrony/chrony.conf", deb, ["10.77.109.11"], "chrony",
                                             {"10.77.109.11"}), NoChange)


def test_hosts_managed_block_replaced_not_duplicated() -> None:
    nodes = [("cp1", "10.0.0.1"), ("w1", "10.0.0.2")]
    once = hosts.render("127.0.0.1 localhost\n", nodes)
    assert once.count("# BEGIN runbooks k8s nodes") == 1 and "10.0.0.2 w1" in once
    assert hosts.render(once, nodes) == once
    changed = hosts.render(once, [("cp1", "10.0.0.9")])
    assert "10.0.0.9 cp1" in changed and "w1" not in changed and changed.startswith("127.0.0.1 localhost\n")
    ch = hosts.change(once, nodes)
    assert isinstance(ch, NoChange)
    assert hosts.change("", nodes).in_place  # type: ignore[union-attr]
    assert managed_block(once, "runbooks k8s nodes", []) == "127.0.0.1 localhost\n"


def test_selinux_rocky_enforcing() -> None:
    se = selinux_f.parse("Enforcing\n--\n" + fx("rocky9-selinux-config"))
    ch = selinux.config_change(se, "permissive")
    assert isinstance(ch, Change) and "-SELINUX=enforcing\n+SELINUX=permissive" in ch.diff
    assert "SELINUXTYPE=targeted" in (ch.content or "")
    assert selinux.runtime_change(se).commands == ["setenforce 0"]  # type: ignore[union-attr]
    permissive = selinux_f.parse("Permissive\n--\n" + (ch.content or ""))
    assert isinstance(selinux.config_change(permissive, "permissive"), NoChange)
    assert isinstance(selinux.runtime_change(permissive), NoChange)


def test_firewall_modes() -> None:
    fwd = firewall_f.parse("rhel", "installed\nrunning\n6443/tcp\n")
    assert firewall.change(fwd, "disable", ["worker"], True).commands == [  # type: ignore[union-attr]
        "systemctl disable --now firewalld"]
    opened = firewall.change(fwd, "open-ports", ["control-plane", "etcd"], True)
    assert isinstance(opened, Change)
    assert "firewall-cmd --permanent --add-port=2379-2380/tcp" in opened.commands
    assert "firewall-cmd --permanent --add-port=6443/tcp" not in opened.commands
    assert opened.commands[-1] == "firewall-cmd --reload"
    ufw = firewall_f.parse("debian", "installed\n" + fx("debian12-ufw-status-active.txt"))
    w = firewall.change(ufw, "open-ports", ["worker"], True)
    assert isinstance(w, Change) and w.commands == ["ufw allow 10256/tcp", "ufw allow 30000:32767/tcp"]
    assert isinstance(firewall.change(firewall_f.parse("debian", "absent\n"), "disable", [], False), NoChange)


def test_package_commands_per_family() -> None:
    assert packages.install_commands("rhel", ["conntrack-tools", "socat"]) == ["dnf install -y conntrack-tools socat"]
    deb = packages.install_commands("debian", ["conntrack"])
    assert deb[0] == "apt-get update -q" and deb[1].endswith("--no-install-recommends conntrack")
    assert isinstance(packages.install_change("packages", "debian", []), NoChange)


def test_kube_repo_and_pins() -> None:
    url = kube.repo_url("https://pkgs.k8s.io/core:/stable:/v{minor}", "1.30.2")
    assert url == "https://pkgs.k8s.io/core:/stable:/v1.30"
    r = kube.install_change("rhel", ["kubectl"], "1.30", url, None)
    assert isinstance(r, Change) and r.path == "/etc/yum.repos.d/kubernetes.repo"
    assert r.commands == ["dnf install -y --disableexcludes=kubernetes kubectl-1.30* cri-tools"]
    assert "baseurl=https://pkgs.k8s.io/core:/stable:/v1.30/rpm/" in (r.content or "")
    d = kube.install_change("debian", ["kubelet", "kubeadm"], "1.30", url, kube.render_repo("debian", url))
    assert isinstance(d, Change) and d.path is None and "kubelet=1.30* kubeadm=1.30* cri-tools" in d.commands[1]
    assert d.commands[-1] == "apt-mark hold kubelet kubeadm kubectl"


def test_unified_diff_marks_missing_newline() -> None:
    assert "\\ No newline at end of file" in unified_diff("/f", "a", "b\n")
