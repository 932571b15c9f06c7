"""Fact parsers on Debian 12 outputs captured from lab nodes, Rocky 9 outputs written from the tools'
documented formats (marked ``written_fixture``) and a Rocky 9.7 os-release found in public material
(tests/fixtures/facts/PROVENANCE.md)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runbooks_lib.facts import (
    chrony,
    containerd,
    files,
    firewall,
    hardware,
    kernel,
    modules,
    os_release,
    packages,
    ports,
    script,
    selinux,
    services,
    swap,
    sysctl,
    tools,
)

FX = Path(__file__).resolve().parent / "fixtures" / "facts"


def fx(name: str) -> str:
    return (FX / name).read_text()


WRITTEN = pytest.mark.written_fixture


@pytest.mark.parametrize(("name", "family", "pretty"), [
    pytest.param("rocky9-os-release", "rhel", "Rocky Linux 9.4 (Blue Onyx)", marks=WRITTEN),
    ("rocky9.7-os-release", "rhel", "Rocky Linux 9.7 (Blue Onyx)"),
    ("debian12-os-release", "debian", "Debian GNU/Linux 12 (bookworm)"),
])
def test_os_release_family(name: str, family: str, pretty: str) -> None:
    info = os_release.parse(fx(name))
    assert os_release.family(info) == family
    assert os_release.describe(info) == pretty


def test_family_by_id_like_and_unknown() -> None:
    assert os_release.family({"ID": "almalinux", "ID_LIKE": "rhel centos fedora"}) == "rhel"
    assert os_release.family({"ID": "linuxmint", "ID_LIKE": "ubuntu debian"}) == "debian"
    assert os_release.family({"ID": "arch"}) == "unknown"


@pytest.mark.parametrize(("name", "family"), [("rocky9.7-os-release", "rhel"), ("debian12-os-release", "debian"),
                                              (None, "unknown")])
def test_shell_family_detection_agrees_with_python(tmp_path: Path, name: str | None, family: str) -> None:
    """The family detection inside the composite script is generated from the same table."""
    target = tmp_path / "os-release"
    target.write_text(fx(name) if name else 'ID=arch\nNAME="Arch Linux"\n')
    fn = os_release.shell_family_function().replace("/etc/os-release", str(target))
    out = subprocess.run(["sh", "-c", fn + "\nrunbooks_family"], capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == family


def test_composite_script_sections_exit_codes_and_family_variants() -> None:
    src = script.build({
        "one": "printf 'a\\nb\\n'",
        "noeol": "printf 'no newline'",
        "failing": "echo partial; exit 3",
        "empty": "true",
        "variant": {"rhel": "echo rpm", "debian": "echo dpkg", "*": "echo other"},
    })
    res = subprocess.run(["sh", "-c", src], capture_output=True, text=True, timeout=10)
    got = script.split(res.stdout)
    assert got["one"].stdout == "a\nb\n" and got["one"].ok
    assert got["noeol"].stdout == "no newline\n"
    assert got["failing"].exit_code == 3 and got["failing"].stdout == "partial\n"
    assert got["empty"].stdout == "" and got["empty"].ok
    here = os_release.family(os_release.parse(Path("/etc/os-release").read_text()))
    assert got["variant"].stdout.strip() == {"rhel": "rpm", "debian": "dpkg"}.get(here, "other")


def test_files_exact_content_round_trip(tmp_path: Path) -> None:
    (tmp_path / "a.conf").write_text("x = 1\n")
    (tmp_path / "b.conf").write_text("no final newline")
    cmd = files.command([str(tmp_path / "*.conf"), str(tmp_path / "missing"), str(tmp_path / "none-*.txt")])
    out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=10).stdout
    got = files.parse(out)
    assert got[str(tmp_path / "a.conf")] == "x = 1\n"
    assert got[str(tmp_path / "b.conf")] == "no final newline"
    assert got[str(tmp_path / "missing")] is None
    assert not any("*" in p for p in got)


@pytest.mark.written_fixture
def test_hardware_links_and_identity_macs() -> None:
    rocky = hardware.parse_ip_link(fx("rocky9-ip-o-link.txt"))
    assert [ln.name for ln in rocky] == ["lo", "ens192", "tunl0", "cali4f2d1c0b7a3", "kube-ipvs0"]
    assert hardware.identity_macs(rocky) == {"ens192": "00:50:56:8a:3c:1f"}
    deb = hardware.identity_macs(hardware.parse_ip_link(fx("debian12-ip-o-link.txt")))
    assert list(deb) == ["eth0"] and len(deb["eth0"]) == 17
    assert hardware.parse_product_uuid(fx("rocky9-product_uuid")) == "4c1e2d42-8f6b-95a3-7d1c-3e5f0a9b8c21"
    assert hardware.parse_product_uuid("cat: /sys/class/dmi/id/product_uuid: No such file or directory") is None
    assert hardware.parse_meminfo("MemTotal:       24683520 kB\nSwapTotal:             0 kB\n") == {
        "MemTotal": 24105, "SwapTotal": 0}


@pytest.mark.written_fixture
def test_kernel_and_cgroup() -> None:
    assert kernel.version_tuple(fx("rocky9-uname-r.txt")) == (5, 14, 0)
    assert kernel.version_tuple(fx("debian12-uname-r.txt")) >= (5, 13, 0)
    assert kernel.cgroup_version(kernel.parse_cgroup_fs(fx("rocky9-cgroup-fs.txt"))) == 2
    assert kernel.cgroup_version("tmpfs") == 1


@pytest.mark.written_fixture
def test_ports_owners_rocky_control_plane_and_lab_etcd() -> None:
    owners = ports.port_owners(ports.parse(fx("rocky9-ss-ltnpH.txt")))
    assert owners[6443] == {"kube-apiserver"} and owners[2379] == {"etcd"} and owners[10259] == {"kube-scheduler"}
    lab = ports.port_owners(ports.parse(fx("debian12-ss-ltnpH-cp.txt")))
    assert lab[2380] == {"etcd"} and 6443 not in lab
    assert ports.expand("2379-2380") == [2379, 2380]


@pytest.mark.written_fixture
def test_packages_rpm_dpkg_and_name_mapping() -> None:
    rpm = packages.parse("rhel", fx("rocky9-rpm-qa.txt"))
    assert packages.find(rpm, "curl", "rhel").name == "curl-minimal"          # curl-minimal satisfies curl
    assert packages.find(rpm, "conntrack", "rhel").name == "conntrack-tools"
    assert packages.find(rpm, "containerd", "rhel").version == "1.7.25-3.1.el9"
    assert packages.find(rpm, "sysstat", "rhel") is None
    assert packages.version_matches(rpm["kubelet"].version, "1.30")
    assert not packages.version_matches(rpm["kubectl"].version, "1.30")
    assert packages.version_matches("1.30.2-1.1", "1.30.2") and not packages.version_matches("1.3.0-1", "1.30")
    deb = packages.parse("debian", fx("debian12-dpkg-query.txt"))
    assert "chrony" in deb and "iptables" in deb
    assert packages.find(deb, "nfs-utils", "debian") is None and packages.candidates("nfs-utils", "debian") == (
        "nfs-common",)


@pytest.mark.written_fixture
def test_services_show() -> None:
    rocky = services.parse(fx("rocky9-systemctl-show.txt"))
    assert rocky["firewalld"].enabled and rocky["firewalld"].active
    assert not rocky["containerd"].enabled and not rocky["containerd"].active
    assert not rocky["swap.target"].masked
    deb = services.parse(fx("debian12-systemctl-show.txt"))
    assert not deb["ufw"].exists and not deb["containerd"].exists and deb["chrony"].active
    applied = services.parse(fx("debian12-systemctl-show-applied.txt"))
    assert applied["swap.target"].masked and applied["containerd"].active and applied["containerd"].enabled


@pytest.mark.written_fixture
def test_firewall_firewalld_and_ufw() -> None:
    on = firewall.parse("rhel", "installed\n" + fx("rocky9-firewall-cmd-state.txt") + fx("rocky9-firewall-cmd-list-ports.txt"))
    assert on.running and on.open_ports == {"6443/tcp", "2379-2380/tcp", "10250/tcp"}
    off = firewall.parse("rhel", "installed\n" + fx("rocky9-firewall-cmd-state-stopped.txt"))
    assert off.installed and not off.running
    ufw = firewall.parse("debian", "installed\n" + fx("debian12-ufw-status-active.txt"))
    assert ufw.running and "2379-2380/tcp" in ufw.open_ports and "22/tcp" in ufw.open_ports
    assert not firewall.parse("debian", "installed\n" + fx("debian12-ufw-status-inactive.txt")).running
    assert not firewall.parse("debian", "absent\n").installed


@pytest.mark.written_fixture
def test_selinux() -> None:
    se = selinux.parse(fx("rocky9-getenforce.txt") + "--\n" + fx("rocky9-selinux-config"))
    assert se.runtime == "enforcing" and se.config == "enforcing"
    deb = selinux.parse(fx("debian12-getenforce.txt") + "--\n")
    assert deb.runtime == "absent" and deb.config is None


@pytest.mark.written_fixture
def test_swap() -> None:
    assert [s.name for s in swap.parse_proc_swaps(fx("rocky9-proc-swaps"))] == ["/dev/dm-1"]
    assert swap.parse_proc_swaps(fx("debian12-proc-swaps")) == []
    assert swap.parse_swapon(fx("rocky9-swapon-show.txt")) == ["/dev/dm-1"]
    lines = fx("rocky9-fstab").splitlines()
    assert [lines[i] for i in swap.fstab_swap_lines(fx("rocky9-fstab"))] == [
        "/dev/mapper/rl-swap     none                    swap    defaults        0 0"]


@pytest.mark.written_fixture
def test_modules_capability_not_only_lsmod() -> None:
    """Debian lab node: no /proc/modules, no /lib/modules; overlay/br_netfilter built in."""
    probes = {f"bridge/{k}" for k in modules.parse_lines(fx("debian12-bridge.txt"))} | {"netfilter/nf_conntrack_max"}
    kw = dict(loaded=set(), filesystems=modules.parse_filesystems(fx("debian12-proc-filesystems")),
              sys_module=modules.parse_lines(fx("debian12-sys-module.txt")), probes=probes)
    assert modules.capability("overlay", **kw) == "/proc/filesystems"
    assert modules.capability("br_netfilter", **kw) == "/proc/sys/net/bridge"
    assert modules.capability("nf_conntrack", **kw) == "/proc/sys/net/netfilter"
    assert modules.capability("ip_vs", **kw) is None
    assert all(v is None for v in modules.parse_modinfo(fx("debian12-modinfo.txt")).values())
    rocky = modules.parse_proc_modules(fx("rocky9-proc-modules.txt"))
    assert {"ip_vs", "ip_vs_rr", "br_netfilter", "overlay"} <= rocky
    assert modules.parse_modinfo(fx("rocky9-modinfo.txt"))["ip_vs"].endswith("ip_vs.ko.xz")
    assert modules.parse_load_file("# c\noverlay\n; x\nbr_netfilter\n\n") == ["overlay", "br_netfilter"]


@pytest.mark.written_fixture
def test_sysctl_runtime_conf_and_override_order() -> None:
    a = sysctl.parse_sysctl_a(fx("rocky9-sysctl.txt"))
    assert a["vm.swappiness"] == "30" and a["net.ipv4.ip_local_port_range"].split() == ["32768", "60999"]
    rt = sysctl.parse_runtime("net.ipv4.ip_forward\trw\t1\nvm.swappiness\tro\t60\nnet.bridge.x\t-\t\n")
    assert rt["net.ipv4.ip_forward"].writable and not rt["vm.swappiness"].writable
    assert rt["net.bridge.x"].value is None
    files_ = {"/etc/sysctl.d/99-kubernetes.conf": fx("debian12-sysctl-99-kubernetes.conf"),
              "/etc/sysctl.d/99-sysctl.conf": "net.ipv4.ip_forward=0\n",
              "/usr/lib/sysctl.d/50-default.conf": "-net.ipv4.conf.all.rp_filter = 2\nvm.swappiness = 10\n",
              "/etc/sysctl.conf": "vm.swappiness = 99\n"}
    assert sysctl.effective_order(files_) == ["/usr/lib/sysctl.d/50-default.conf",
                                              "/etc/sysctl.d/99-kubernetes.conf", "/etc/sysctl.d/99-sysctl.conf"]
    eff = sysctl.persisted(files_)
    assert eff["net.ipv4.ip_forward"] == ("0", "/etc/sysctl.d/99-sysctl.conf")   # the later file wins
    assert eff["vm.swappiness"] == ("0", "/etc/sysctl.d/99-kubernetes.conf")
    assert eff["net.ipv4.conf.all.rp_filter"][0] == "2"


@pytest.mark.written_fixture
def test_chrony_tracking_and_sources() -> None:
    t = chrony.parse_tracking(fx("rocky9-chronyc-tracking.txt"))
    assert t is not None and t.synchronised and t.stratum == 3 and t.offset_s == pytest.approx(-0.000231474)
    w = chrony.parse_tracking(fx("debian12-chronyc-tracking-worker.txt"))
    assert w is not None and w.synchronised and "10.77" in w.reference
    unsynced = chrony.parse_tracking(fx("chronyc-tracking-unsynchronised.txt"))
    assert unsynced is not None and not unsynced.synchronised
    assert chrony.parse_tracking("506 Cannot talk to daemon\n") is None
    assert chrony.sources(fx("rocky9-chrony.conf")) == [("pool", "2.rocky.pool.ntp.org")]
    assert chrony.sources(fx("debian12-chrony.conf")) == []      # the lab commented the pools out


@pytest.mark.written_fixture
def test_containerd_versions_and_layouts() -> None:
    assert containerd.parse_version(fx("debian12-containerd-version.txt")) == "1.6.20"
    assert containerd.parse_version(fx("rocky9-containerd-version.txt")) == "1.7.25"
    assert containerd.parse_version(fx("rocky9-containerd2-version.txt")) == "2.0.2"
    v2, _ = containerd.parse_config(fx("debian12-containerd-1.6-config-default.toml"))
    c = containerd.cri_config(v2)
    assert (c.version, c.systemd_cgroup, c.sandbox_image, c.disabled_cri) == (2, False, "registry.k8s.io/pause:3.6", ())
    v3, _ = containerd.parse_config(fx("containerd-2.0-config-default-excerpt.toml"))
    c3 = containerd.cri_config(v3)
    assert (c3.version, c3.systemd_cgroup, c3.sandbox_image, c3.runtime_type) == (
        3, None, "registry.k8s.io/pause:3.10", "io.containerd.runc.v2")
    stub, _ = containerd.parse_config(fx("containerd.io-config.toml"))
    cs = containerd.cri_config(stub)
    assert cs.disabled_cri == ("cri",) and not cs.has_cri_table
    bad, err = containerd.parse_config("version = 2\n[plugins\n")
    assert bad is None and err


@pytest.mark.written_fixture
def test_ctr_plugins_cri_status() -> None:
    assert containerd.cri_status(containerd.parse_plugins(fx("debian12-ctr-plugins-ls.txt"))) == "ok"
    assert containerd.cri_status(containerd.parse_plugins(fx("rocky9-ctr-plugins-ls.txt"))) is None
    assert containerd.parse_crictl(fx("debian12-crictl.yaml"))["timeout"] == 10


def test_tools() -> None:
    out = subprocess.run(["sh", "-c", tools.command(["sh", "no-such-tool-xyz"])], capture_output=True,
                         text=True, timeout=10).stdout
    got = tools.parse(out)
    assert got["sh"] and got["no-such-tool-xyz"] is None


def test_modinfo_command_reads_modules_dep_and_builtin(tmp_path: Path) -> None:
    d = tmp_path / "lib" / "modules" / "9.9.9"
    d.mkdir(parents=True)
    (d / "modules.dep").write_text("kernel/fs/overlayfs/overlay.ko.xz:\n"
                                   "kernel/net/netfilter/ipvs/ip_vs.ko.xz: kernel/net/netfilter/nf_conntrack.ko.xz\n")
    (d / "modules.builtin").write_text("kernel/net/bridge/br_netfilter.ko\n")
    cmd = modules.modinfo_command(["overlay", "br_netfilter", "ip_vs", "nf_tables"]).replace(
        "/lib/modules/$(uname -r)", str(d))
    got = modules.parse_modinfo(subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=10).stdout)
    assert got == {"overlay": f"{d}/kernel/fs/overlayfs/overlay.ko.xz", "br_netfilter": "(builtin)",
                   "ip_vs": f"{d}/kernel/net/netfilter/ipvs/ip_vs.ko.xz", "nf_tables": None}
    none = modules.modinfo_command(["overlay"]).replace("/lib/modules/$(uname -r)", str(tmp_path / "absent"))
    assert subprocess.run(["sh", "-c", none], capture_output=True, text=True, timeout=10).stdout == "overlay -\n"


def test_sysctl_runtime_command_on_this_kernel() -> None:
    cmd = sysctl.runtime_command(["net.ipv4.ip_local_port_range", "kernel.no_such_key_xyz", "bad key;rm"])
    got = sysctl.parse_runtime(subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=10).stdout)
    lo, hi = got["net.ipv4.ip_local_port_range"].value.split()   # a two-value key, tab-separated in procfs
    assert int(lo) < int(hi)
    assert got["kernel.no_such_key_xyz"].value is None and "bad key;rm" not in got


@pytest.mark.written_fixture
def test_containerd_default_only_when_no_cri_section(tmp_path: Path) -> None:
    for name, renders in (("containerd-2.0-config-default-excerpt.toml", False),
                          ("debian12-containerd-config-applied.toml", False), ("containerd.io-config.toml", True)):
        cmd = containerd.DEFAULT.replace(containerd.CONFIG, str(FX / name)).replace(
            "command -v containerd >/dev/null", "true").replace("containerd config default", "echo DEFAULT")
        out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=10).stdout
        assert (out == "DEFAULT\n") is renders, name
