"""Every fact system-init needs from one node, in ONE command (a composite script), parsed."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...facts import chrony as chrony_f
from ...facts import containerd as containerd_f
from ...facts import files as files_f
from ...facts import firewall as firewall_f
from ...facts import hardware, hosts, kernel, modules, os_release, ports, script, selinux, swap, sysctl, tools
from ...facts import lab as lab_f
from ...facts import packages as packages_f
from ...facts import services as services_f
from ...facts.chrony import Tracking
from ...facts.firewall import Firewall
from ...facts.hardware import Link
from ...facts.lab import LabFacts
from ...facts.packages import Package
from ...facts.ports import Listener
from ...facts.selinux import SELinux
from ...facts.services import Unit
from ...facts.swap import SwapDevice
from ...facts.sysctl import Runtime
from ...transport.base import Transport

#: module names any mode may want (modinfo is asked about all of them)
ALL_MODULES = ("overlay", "br_netfilter", "nf_conntrack", "ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "nf_tables")
BRIDGE_KEYS = ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables")
UNITS = {
    "rhel": ("firewalld", "chronyd", "containerd", "kubelet", "swap.target"),
    "debian": ("ufw", "chrony", "containerd", "kubelet", "swap.target"),
}
COMMON_FILES = (modules.K8S_FILE, f"{modules.LOAD_DIR}/*.conf", *sysctl.FILE_GLOBS, hosts.PATH, "/etc/fstab",
                containerd_f.CONFIG, containerd_f.CRICTL)
FAMILY_FILES = {
    "rhel": ("/etc/chrony.conf", "/etc/chrony.d/*.conf", "/etc/yum.repos.d/kubernetes.repo"),
    "debian": ("/etc/chrony/chrony.conf", "/etc/chrony/conf.d/*.conf", "/etc/chrony/sources.d/*.sources",
               "/etc/apt/sources.list.d/kubernetes.list"),
}


def sections(tool_names: list[str], sysctl_keys: list[str]) -> dict[str, script.SectionCommand]:
    """The composite script's sections (name -> command, per family where they differ)."""
    return {
        "os_release": os_release.COMMAND,
        "lab": lab_f.COMMAND,
        "uname": kernel.UNAME,
        "pid1": kernel.PID1,
        "cgroup": kernel.CGROUP_FS,
        "hostname": hosts.HOSTNAME,
        "resolve": hosts.RESOLVE,
        "nproc": hardware.NPROC,
        "meminfo": hardware.MEMINFO,
        "product_uuid": hardware.PRODUCT_UUID,
        "ip_link": hardware.IP_LINK,
        "tools": tools.command(tool_names),
        "ports": ports.COMMAND,
        "packages": {**packages_f.COMMAND, "*": "true"},
        "units": {fam: services_f.command(u) for fam, u in UNITS.items()} | {"*": "true"},
        "firewall": {**firewall_f.COMMAND, "*": "echo absent"},
        "selinux": selinux.COMMAND,
        "swaps": swap.PROC_SWAPS,
        "proc_modules": modules.PROC_MODULES,
        "filesystems": modules.FILESYSTEMS,
        "sys_module": modules.SYS_MODULE,
        "probes": modules.PROBES,
        "modinfo": modules.modinfo_command(ALL_MODULES),
        "sysctl": sysctl.runtime_command(sysctl_keys),
        "tracking": chrony_f.TRACKING,
        "containerd_version": containerd_f.VERSION,
        "containerd_default": containerd_f.DEFAULT,
        "ctr_plugins": containerd_f.PLUGINS,
        "files": {fam: files_f.command(COMMON_FILES + extra) for fam, extra in FAMILY_FILES.items()}
        | {"*": files_f.command(COMMON_FILES)},
    }


@dataclass
class NodeFacts:
    """Parsed state of one node (``raw`` keeps every section for the evidence)."""

    host: str
    os: dict[str, str]
    family: str
    kernel: str
    pid1: str
    cgroup_fs: str
    hostname: str
    resolved: list[str]
    nproc: int | None
    mem_mb: int | None
    product_uuid: str | None
    links: list[Link]
    tools: dict[str, str | None]
    listeners: list[Listener]
    packages: dict[str, Package]
    units: dict[str, Unit]
    firewall: Firewall
    selinux: SELinux
    swaps: list[SwapDevice]
    loaded: set[str]
    filesystems: set[str]
    sys_module: set[str]
    probes: set[str]
    modinfo: dict[str, str | None]
    sysctl: dict[str, Runtime]
    tracking: Tracking | None
    containerd_version: str | None
    containerd_default: str | None
    ctr_plugins: dict[tuple[str, str], str]
    files: dict[str, str | None]
    lab: LabFacts = field(default_factory=LabFacts)
    raw: dict[str, script.Section] = field(default_factory=dict, repr=False)


def parse(host: str, raw: dict[str, script.Section]) -> NodeFacts:
    """Pure: sections -> NodeFacts (unit-tested on captured lab gathers)."""
    def out(name: str) -> str:
        s = raw.get(name)
        return s.stdout if s is not None else ""

    def ok(name: str) -> str:
        s = raw.get(name)
        return s.stdout if s is not None and s.ok else ""

    info = os_release.parse(out("os_release"))
    fam = os_release.family(info)
    mem = hardware.parse_meminfo(out("meminfo"))
    version = containerd_f.parse_version(ok("containerd_version"))
    return NodeFacts(
        host=host, os=info, family=fam,
        kernel=kernel.parse_release(out("uname")), pid1=out("pid1").strip(),
        cgroup_fs=kernel.parse_cgroup_fs(out("cgroup")), hostname=out("hostname").strip(),
        resolved=hosts.parse_addresses(ok("resolve")),
        nproc=hardware.parse_nproc(out("nproc")), mem_mb=mem.get("MemTotal"),
        product_uuid=hardware.parse_product_uuid(ok("product_uuid")),
        links=hardware.parse_ip_link(out("ip_link")), tools=tools.parse(out("tools")),
        listeners=ports.parse(out("ports")), packages=packages_f.parse(fam, out("packages")),
        units=services_f.parse(out("units")), firewall=firewall_f.parse(fam, out("firewall")),
        selinux=selinux.parse(out("selinux")), swaps=swap.parse_proc_swaps(out("swaps")),
        loaded=modules.parse_proc_modules(out("proc_modules")),
        filesystems=modules.parse_filesystems(out("filesystems")),
        sys_module=modules.parse_lines(out("sys_module")), probes=modules.parse_lines(out("probes")),
        modinfo=modules.parse_modinfo(out("modinfo")), sysctl=sysctl.parse_runtime(out("sysctl")),
        tracking=chrony_f.parse_tracking(out("tracking")),
        containerd_version=version,
        containerd_default=ok("containerd_default") or None,
        ctr_plugins=containerd_f.parse_plugins(ok("ctr_plugins")),
        files=files_f.parse(out("files")), lab=lab_f.parse(out("lab")), raw=raw,
    )


def gather(transport: Transport, tool_names: list[str], sysctl_keys: list[str],
           timeout: float | None = None) -> NodeFacts:
    """One round trip: run the composite script and parse it."""
    raw = script.gather(transport, sections(tool_names, sysctl_keys), timeout=timeout)
    return parse(transport.name, raw)
