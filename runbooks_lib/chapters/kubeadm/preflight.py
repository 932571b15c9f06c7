"""kubeadm's preflight checks, by kubeadm's names, evaluated on a node's facts (pure).

Status policy: what kubeadm reports as an [ERROR] is ``fail``; what chapter 01 (system-init) apply
converges (swap, ip_forward, containerd, binaries, SELinux) is ``drift`` with that said; kubeadm's
[WARNING]s are ``warn``. On a node that is already initialised kubeadm does not run, so its
problems are ``warn``. On a proven lab node two things are "n/a in lab", with the reason: crictl
(not installable there) and the lab's own etcd holding 2379/2380 and /var/lib/etcd.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ...facts import ports as ports_f
from ...facts.hosts import valid_hostname
from .config import Version
from .nodes import OPTIONAL_TOOLS, REQUIRED_TOOLS, NodeFacts
from .parse import parse_preflight

Row = tuple[str, str, str]
CONTROL_PLANE_PORTS = (6443, 10259, 10257, 2379, 2380)
CALICO_UNMANAGED = ("cali", "tunl", "vxlan.calico")
FIREWALL_PORTS = {"control-plane": ("6443/tcp", "2379-2380/tcp", "10250/tcp", "10257/tcp", "10259/tcp"),
                  "worker": ("10250/tcp", "30000-32767/tcp")}
CH01 = "chapter 01 (system-init) apply"


@dataclass
class Context:
    role: str                  # control-plane | worker
    lab: bool                  # proven lab node
    initialised: bool          # kubeadm already ran here: no init/join planned
    target: Version
    pod_cidr: str
    service_cidr: str
    node_addresses: list[str]
    fsync_p99_ms: float = 10.0


def _ports(f: NodeFacts, c: Context) -> list[Row]:
    owners = ports_f.port_owners(f.listeners)
    wanted = [10250] + (list(CONTROL_PLANE_PORTS) if c.role == "control-plane" else [])
    rows = []
    for port in sorted(wanted):
        held = owners.get(port)
        name = f"Port-{port}"
        if not held:
            rows.append((name, "pass", f"port {port} is free"))
        elif c.lab and port in (2379, 2380) and "etcd" in held:
            rows.append((name, "n/a in lab", f"port {port} is held by the lab's etcd (runbooks lab runs etcd under "
                                             "systemd here); kubeadm init would report [ERROR "
                                             f"{name}]: Port {port} is in use"))
        else:
            rows.append((name, "fail", f"port {port} is in use by {', '.join(sorted(held))}"))
    return rows


def _tools(f: NodeFacts, c: Context) -> list[Row]:
    rows = []
    for t in REQUIRED_TOOLS:
        name = f"FileExisting-{t}"
        if f.tools.get(t):
            rows.append((name, "pass", f"{t}: {f.tools[t]}"))
        elif t == "crictl" and c.lab:
            rows.append((name, "n/a in lab", "crictl is not installable in the lab (not in Debian 12, the "
                                             "Kubernetes package repository is unreachable)"))
        else:
            rows.append((name, "drift", f"{t} not found in system path; {CH01} installs it"))
    for t in OPTIONAL_TOOLS[:4]:
        name = f"FileExisting-{t}"
        rows.append((name, "pass", f"{t}: {f.tools[t]}") if f.tools.get(t)
                    else (name, "warn", f"{t} not found in system path (kubeadm warns)"))
    return rows


def _proxy(f: NodeFacts, c: Context) -> Row:
    proxy = f.proxy.get("https_proxy") or f.proxy.get("http_proxy")
    if not proxy:
        return ("HTTPProxyCIDR", "pass", "no HTTP(S)_PROXY in the environment")
    no_proxy = [p.strip() for p in f.proxy.get("no_proxy", "").split(",") if p.strip()]
    nets = []
    for p in no_proxy:
        try:
            nets.append(ipaddress.ip_network(p, strict=False))
        except ValueError:
            continue
    missing = []
    for want in (c.pod_cidr, c.service_cidr, *c.node_addresses):
        w = ipaddress.ip_network(want, strict=False)
        if not any(w.subnet_of(n) for n in nets if n.version == w.version):  # type: ignore[arg-type]
            missing.append(want)
    if missing:
        return ("HTTPProxyCIDR", "warn", f"a proxy is set but NO_PROXY does not cover {', '.join(missing)}: "
                                         "requests to the API, services or pods would go to the proxy")
    return ("HTTPProxyCIDR", "pass", "proxy set; NO_PROXY covers the pod and service subnets and the nodes")


def _network_manager(f: NodeFacts) -> Row:
    if not f.kube.network_manager:
        return ("NetworkManager", "pass", "NetworkManager not active")
    text = "\n".join(v for k, v in f.files.items() if v and "NetworkManager" in k)
    unmanaged = [ln for ln in text.splitlines() if ln.strip().startswith("unmanaged-devices")]
    missing = [p for p in CALICO_UNMANAGED if not any(p in ln for ln in unmanaged)]
    if missing:
        return ("NetworkManager", "warn", f"NetworkManager may manage Calico's interfaces: unmanaged-devices lacks "
                                          f"{', '.join(m + '*' for m in missing)} (Calico's NetworkManager guide)")
    return ("NetworkManager", "pass", "cali*, tunl* and vxlan.calico are unmanaged")


def _disk(f: NodeFacts, c: Context) -> Row:
    if f.fio is None:
        return ("EtcdDisk", "info", "etcd disk test not run (kubeadm.etcd_disk_test: false)")
    if isinstance(f.fio, str):
        return ("EtcdDisk", "warn", f"etcd disk test not run: {f.fio} (install fio, Debian/Rocky package 'fio')")
    p90, p99 = f.fio["p90"], f.fio["p99"]
    detail = f"fdatasync p90 {p90:.2f} ms, p99 {p99:.2f} ms (etcd's guideline: p99 < {c.fsync_p99_ms:g} ms)"
    if p99 <= c.fsync_p99_ms:
        return ("EtcdDisk", "pass", detail)
    if p90 <= c.fsync_p99_ms:
        return ("EtcdDisk", "warn", detail + "; KubeKey's gate (p90) passes, etcd's p99 guideline does not")
    return ("EtcdDisk", "fail", detail + "; too slow for etcd's WAL (leader elections, timeouts)")


def evaluate(f: NodeFacts, c: Context) -> list[Row]:
    """Every check for one node: (kubeadm name, status, detail)."""
    cp = c.role == "control-plane"
    rows: list[Row] = []
    if cp:
        rows.append(("NumCPU", "pass" if (f.nproc or 0) >= 2 else "fail", f"{f.nproc} CPUs (control planes need 2)"))
        rows.append(("Mem", "pass" if (f.mem_mb or 0) >= 1700 else "fail",
                     f"{f.mem_mb} MB (control planes need 1700 MB)"))
    rows += _ports(f, c)
    if cp:
        rows.append(("FileAvailable--etc-kubernetes-manifests", "pass" if not f.kube.manifests else "fail",
                     "manifests dir empty" if not f.kube.manifests else
                     f"/etc/kubernetes/manifests holds {', '.join(f.kube.manifests)}"))
        if not f.kube.etcd_data:
            rows.append(("DirAvailable--var-lib-etcd", "pass", "/var/lib/etcd is empty or absent"))
        elif c.lab:
            rows.append(("DirAvailable--var-lib-etcd", "n/a in lab", "/var/lib/etcd holds the lab's etcd data"))
        else:
            rows.append(("DirAvailable--var-lib-etcd", "fail", "/var/lib/etcd is not empty"))
    rows.append(("Swap", "pass", "no active swap") if f.swaps == 0 else
                ("Swap", "drift", f"{f.swaps} swap device(s) active; {CH01} turns swap off"))
    rows.append(("FileContent--proc-sys-net-ipv4-ip_forward", "pass", "ip_forward = 1") if f.ip_forward == "1"
                else ("FileContent--proc-sys-net-ipv4-ip_forward", "drift",
                      f"ip_forward = {f.ip_forward}; {CH01} sets it to 1"))
    if f.cgroup_fs == "cgroup2fs":
        rows.append(("SystemVerification", "pass", "cgroup v2"))
    else:
        late = (c.target.major, c.target.minor) >= (1, 35)
        rows.append(("SystemVerification", "fail" if late else "warn",
                     f"cgroup v1 ({f.cgroup_fs}): " + ("kubelet ≥ 1.35 refuses it (failCgroupV1)" if late
                                                       else "deprecated; kubelet 1.35+ refuses it")))
    if "socket" in f.cri and "answers" in f.cri:
        rows.append(("CRI", "pass", "container runtime answers `crictl info`"))
    elif "socket" in f.cri:
        status = "n/a in lab" if c.lab and not f.tools.get("crictl") else "fail"
        rows.append(("CRI", status, "runtime socket present but `crictl info` did not answer"
                     + (" (no crictl in the lab)" if status == "n/a in lab" else "")))
    else:
        rows.append(("CRI", "drift", f"no containerd socket; {CH01} installs and starts containerd"))
    rows += _tools(f, c)
    if not valid_hostname(f.hostname):
        rows.append(("Hostname", "fail", f"hostname {f.hostname!r} is not a lowercase RFC 1123 name"))
    elif not f.resolved:
        rows.append(("Hostname", "warn", f"hostname {f.hostname!r} could not be reached (does not resolve)"))
    else:
        rows.append(("Hostname", "pass", f"{f.hostname} resolves to {', '.join(f.resolved)}"))
    rows.append(_proxy(f, c))
    if f.firewall.running:
        need = FIREWALL_PORTS[c.role]
        closed = [p for p in need if p not in f.firewall.open_ports]
        rows.append(("Firewalld", "warn", f"{f.firewall.tool} is active" +
                     (f"; not open: {', '.join(closed)}" if closed else "; the Kubernetes ports are open")))
    else:
        rows.append(("Firewalld", "pass", f"{f.firewall.tool} not active"))
    if f.family == "rhel":
        rows.append(("SELinux", "drift", f"SELinux {f.selinux.runtime}; {CH01} sets permissive")
                    if f.selinux.runtime == "enforcing" else ("SELinux", "pass", f"SELinux {f.selinux.runtime}"))
    rows.append(_network_manager(f))
    if cp:
        rows.append(_disk(f, c))
    if f.kubeadm.available:
        items = parse_preflight(f.kubeadm.preflight_out)
        rows += [(f"kubeadm:{i.name}", "fail" if i.level == "ERROR" else "warn", i.message) for i in items]
        if f.kubeadm.preflight_rc == 0 and not items:
            rows.append(("kubeadm:preflight", "pass", "kubeadm init phase preflight --dry-run passed"))
    if c.initialised:
        rows = [(n, "warn" if s in ("fail", "drift") else s,
                 (f"initialised node, kubeadm does not run here: {d}" if s in ("fail", "drift") else d))
                for n, s, d in rows]
    return rows
