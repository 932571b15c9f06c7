"""Every fact chapter 02 needs from one node, in one SSH round trip (a composite script), parsed.

Read-only: the etcd disk test writes only into a private ``mktemp -d`` directory under /var/lib (same
filesystem as etcd's data, removed by a trap); kubeadm's own preflight and config validation, where
kubeadm is installed, read the config from stdin (``--dry-run``), nothing is written.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

from ...facts import containerd as containerd_f
from ...facts import files as files_f
from ...facts import firewall as firewall_f
from ...facts import hardware, hosts, kernel, os_release, ports, script, selinux, swap, sysctl, tools
from ...facts import lab as lab_f
from ...facts.firewall import Firewall
from ...facts.lab import LabFacts
from ...facts.ports import Listener
from ...facts.selinux import SELinux
from ...transport.base import Transport
from . import pki

REQUIRED_TOOLS = ("crictl", "ip", "iptables", "mount", "nsenter")
OPTIONAL_TOOLS = ("ebtables", "ethtool", "socat", "tc", "fio", "kubeadm", "kubelet")
NM_FILES = ("/etc/NetworkManager/conf.d/*.conf", "/etc/NetworkManager/NetworkManager.conf")
PROXY = ("env | grep -iE '^(https?|no)_proxy=' ; "
         "grep -hiE '^[[:space:]]*(export[[:space:]]+)?(https?|no)_proxy=' /etc/environment /etc/profile.d/*.sh "
         "2>/dev/null | sed -E 's/^[[:space:]]*(export[[:space:]]+)?//'; true")
KUBE_STATE = ("for f in /var/lib/kubelet/config.yaml /etc/kubernetes/admin.conf /etc/kubernetes/super-admin.conf "
              "/etc/kubernetes/kubelet.conf; do [ -e \"$f\" ] && echo \"present $f\"; done; "
              "command -v kubeadm >/dev/null && echo \"kubeadm $(kubeadm version -o short 2>/dev/null)\"; "
              "command -v kubelet >/dev/null && echo \"kubelet $(kubelet --version 2>/dev/null)\"; "
              "echo \"manifests $(ls -A /etc/kubernetes/manifests 2>/dev/null | tr '\\n' ' ')\"; "
              "echo \"etcd-data $(ls -A /var/lib/etcd 2>/dev/null | head -5 | tr '\\n' ' ')\"; "
              "systemctl is-active NetworkManager 2>/dev/null | sed 's/^/nm /'; true")
ADDRS = "ip -o addr show | awk '{print $4}'"
#: KubeKey's etcd disk job (roles/precheck/etcd): sequential 2300-byte writes, fdatasync after each
FIO_JOB = ("--rw=write --ioengine=sync --fdatasync=1 --size=22m --bs=2300 --name=etcd-disk "
           "--output-format=json")


def cri_command(socket: str) -> str:
    path = socket.removeprefix("unix://")
    return (f"[ -S {shlex.quote(path)} ] && echo socket; command -v crictl >/dev/null && "
            f"timeout 10 crictl --runtime-endpoint {shlex.quote(socket)} info >/dev/null 2>&1 && echo answers; true")


def fio_command(timeout_s: int = 120) -> str:
    return ("command -v fio >/dev/null || { echo absent; exit 0; }; "
            "d=$(mktemp -d /var/lib/.runbooks-fio.XXXXXX) || exit 3; trap 'rm -rf \"$d\"' EXIT; "
            f"timeout {timeout_s} fio {FIO_JOB} --directory=\"$d\"")


def kubeadm_command(config_text: str | None) -> str:
    """Where kubeadm exists: validate the rendered config and run init's preflight (dry run), config on stdin."""
    if not config_text:
        return "true"
    doc = config_text.replace("\\", "\\\\")
    heredoc = f"<<'RUNBOOKS_KUBEADM_EOF'\n{doc}RUNBOOKS_KUBEADM_EOF"
    return ("command -v kubeadm >/dev/null || { echo absent; exit 0; }; "
            f"echo '@@validate'; kubeadm config validate --config /dev/stdin 2>&1 {heredoc}\n"
            f"echo \"@@rc $?\"; echo '@@preflight'; "
            f"timeout 120 kubeadm init phase preflight --dry-run --config /dev/stdin 2>&1 {heredoc}\n"
            "echo \"@@rc $?\"")


def sections(cri_socket: str, control_plane: bool, fio: bool, kubeadm_config: str | None
             ) -> dict[str, script.SectionCommand]:
    out: dict[str, script.SectionCommand] = {
        "os_release": os_release.COMMAND, "lab": lab_f.COMMAND, "hostname": hosts.HOSTNAME,
        "resolve": hosts.RESOLVE, "nproc": hardware.NPROC, "meminfo": hardware.MEMINFO,
        "ports": ports.COMMAND, "swaps": swap.PROC_SWAPS, "cgroup": kernel.CGROUP_FS,
        "tools": tools.command(REQUIRED_TOOLS + OPTIONAL_TOOLS),
        "firewall": {**firewall_f.COMMAND, "*": "echo absent"}, "selinux": selinux.COMMAND,
        "sysctl": sysctl.runtime_command(["net.ipv4.ip_forward"]),
        "proxy": PROXY, "kube": KUBE_STATE, "cri": cri_command(cri_socket), "addrs": ADDRS,
        "files": files_f.command([*NM_FILES, containerd_f.CONFIG]),
        "pki": files_f.command([f"{pki.PKI_DIR}/{p}" for p in (*pki.CERTS, *pki.PUBLIC_KEYS)]),
    }
    if control_plane and fio:
        out["fio"] = fio_command()
    out["kubeadm"] = kubeadm_command(kubeadm_config)
    return out


@dataclass
class KubeState:
    present: set[str] = field(default_factory=set)
    kubeadm: str | None = None
    kubelet: str | None = None
    manifests: list[str] = field(default_factory=list)
    etcd_data: list[str] = field(default_factory=list)
    network_manager: bool = False


def parse_kube(text: str) -> KubeState:
    st = KubeState()
    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        rest = rest.strip()
        if key == "present":
            st.present.add(rest)
        elif key == "kubeadm" and rest:
            st.kubeadm = rest
        elif key == "kubelet" and rest:
            st.kubelet = rest.removeprefix("Kubernetes ").strip() or None
        elif key == "manifests":
            st.manifests = rest.split()
        elif key == "etcd-data":
            st.etcd_data = rest.split()
        elif key == "nm":
            st.network_manager = rest == "active"
    return st


def parse_proxy(text: str) -> dict[str, str]:
    """Proxy variables (lower-cased names; the environment wins over files)."""
    out: dict[str, str] = {}
    for line in reversed(text.splitlines()):
        name, sep, value = line.partition("=")
        if sep:
            out[name.strip().lower()] = value.strip().strip("'\"")
    return out


def parse_fio(text: str) -> dict[str, float] | str:
    """fdatasync latency percentiles in ms (``p90``, ``p99``) from fio's JSON, or why there are none."""
    if text.strip() == "absent":
        return "fio not installed"
    start = text.find("{")
    if start < 0:
        return f"no fio JSON output ({text.strip()[:200] or 'empty'})"
    try:
        doc = json.loads(text[start:])
        pct = doc["jobs"][0]["sync"]["lat_ns"]["percentile"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return f"fio output without fdatasync percentiles ({exc})"
    return {"p90": float(pct["90.000000"]) / 1e6, "p99": float(pct["99.000000"]) / 1e6}


@dataclass
class KubeadmRun:
    available: bool
    validate_rc: int | None = None
    validate_out: str = ""
    preflight_rc: int | None = None
    preflight_out: str = ""


def parse_kubeadm(text: str) -> KubeadmRun:
    if not text.strip() or text.strip() == "absent":
        return KubeadmRun(False)
    run = KubeadmRun(True)
    part, buf = "", list[str]()
    for line in text.splitlines():
        if line in ("@@validate", "@@preflight"):
            part, buf = line[2:], []
        elif line.startswith("@@rc ") and part:
            rc = int(line[5:]) if line[5:].strip().lstrip("-").isdigit() else None
            if part == "validate":
                run.validate_rc, run.validate_out = rc, "\n".join(buf)
            else:
                run.preflight_rc, run.preflight_out = rc, "\n".join(buf)
        else:
            buf.append(line)
    return run


@dataclass
class NodeFacts:
    host: str
    family: str
    hostname: str
    resolved: list[str]
    nproc: int | None
    mem_mb: int | None
    listeners: list[Listener]
    swaps: int
    cgroup_fs: str
    tools: dict[str, str | None]
    firewall: Firewall
    selinux: SELinux
    ip_forward: str | None
    proxy: dict[str, str]
    kube: KubeState
    cri: set[str]
    files: dict[str, str | None]
    certs: dict[str, str | None]
    lab: LabFacts
    fio: dict[str, float] | str | None
    kubeadm: KubeadmRun
    addresses: list[str] = field(default_factory=list)


def parse(host: str, raw: dict[str, script.Section]) -> NodeFacts:
    """Pure: sections -> NodeFacts."""
    def out(name: str) -> str:
        s = raw.get(name)
        return s.stdout if s is not None else ""

    info = os_release.parse(out("os_release"))
    fam = os_release.family(info)
    rt = sysctl.parse_runtime(out("sysctl")).get("net.ipv4.ip_forward")
    certs = {p.removeprefix(pki.PKI_DIR + "/"): v for p, v in files_f.parse(out("pki")).items()}
    return NodeFacts(
        host=host, family=fam, hostname=out("hostname").strip(), resolved=hosts.parse_addresses(out("resolve")),
        nproc=hardware.parse_nproc(out("nproc")), mem_mb=hardware.parse_meminfo(out("meminfo")).get("MemTotal"),
        listeners=ports.parse(out("ports")), swaps=len(swap.parse_proc_swaps(out("swaps"))),
        cgroup_fs=kernel.parse_cgroup_fs(out("cgroup")), tools=tools.parse(out("tools")),
        firewall=firewall_f.parse(fam, out("firewall")), selinux=selinux.parse(out("selinux")),
        ip_forward=rt.value if rt else None, proxy=parse_proxy(out("proxy")), kube=parse_kube(out("kube")),
        cri=set(out("cri").split()), files=files_f.parse(out("files")), certs=certs, lab=lab_f.parse(out("lab")),
        fio=parse_fio(out("fio")) if "fio" in raw else None, kubeadm=parse_kubeadm(out("kubeadm")),
        addresses=[a.split("/", 1)[0] for a in out("addrs").split()],
    )


def tcp_open(t: Transport, host: str, port: str) -> bool:
    """Whether ``host:port`` accepts a TCP connection from node ``t`` (bash's /dev/tcp, 3 s)."""
    res = t.run(f"timeout 3 bash -c {shlex.quote(f'</dev/tcp/{host}/{port}')} && echo open", timeout=10)
    return "open" in res.stdout


def gather(transport: Transport, cri_socket: str, control_plane: bool, fio: bool,
           kubeadm_config: str | None, timeout: float | None = None) -> NodeFacts:
    """One round trip: run the composite script and parse it."""
    raw = script.gather(transport, sections(cri_socket, control_plane, fio, kubeadm_config), timeout=timeout)
    return parse(transport.name, raw)
