"""Host asserts (OS, CPU, memory, names, cgroup, kernel, tools, ports) and cross-node uniqueness.

Pure functions over gathered facts; see :mod:`.checks` for the status rules.
"""

from __future__ import annotations

from ...facts import hardware, hosts, kernel, os_release
from ...facts.ports import expand, port_owners
from .gather import NodeFacts
from .model import Desired, Finding, Node

#: port -> processes that may hold it on an initialised node
EXPECTED_OWNERS = {6443: {"kube-apiserver"}, 2379: {"etcd"}, 2380: {"etcd"}, 10250: {"kubelet"},
                   10257: {"kube-controller"}, 10259: {"kube-scheduler"}}
ROLE_FREE_PORTS = {"control-plane": ("6443", "2379-2380", "10250", "10257", "10259"), "worker": ("10250",)}


def host_asserts(f: NodeFacts, node: Node, d: Desired) -> list[Finding]:
    s = d.settings
    out: list[Finding] = []
    fam_ok = f.family in ("rhel", "debian")
    out.append(Finding("host.os", "pass" if fam_ok else "fail",
                       f"{os_release.describe(f.os)} ({f.family} family)"))
    cp = "control-plane" in node.roles
    if cp:
        ok = (f.nproc or 0) >= s.min_cpus_control_plane
        out.append(Finding("host.cpu", "pass" if ok else "fail",
                           f"{f.nproc} CPUs (control plane needs ≥ {s.min_cpus_control_plane})"))
        ok = (f.mem_mb or 0) >= s.min_memory_mb_control_plane
        out.append(Finding("host.memory", "pass" if ok else "fail",
                           f"{f.mem_mb} MiB (control plane needs ≥ {s.min_memory_mb_control_plane} MiB)"))
    else:
        out.append(Finding("host.cpu", "n/a", f"{f.nproc} CPUs (no minimum for workers)"))
        out.append(Finding("host.memory", "n/a", f"{f.mem_mb} MiB (no minimum for workers)"))
    if not hosts.valid_hostname(f.hostname):
        out.append(Finding("host.hostname", "fail", f"{f.hostname!r} is not a lowercase RFC 1123 name"))
    elif f.hostname != node.name:
        out.append(Finding("host.hostname", "warn", f"{f.hostname} differs from the inventory name {node.name} "
                           "(the node registers as its hostname)"))
    else:
        out.append(Finding("host.hostname", "pass", f.hostname))
    out.append(Finding("host.resolvable", "pass" if f.resolved else "fail",
                       f"{f.hostname} -> {', '.join(f.resolved)}" if f.resolved
                       else f"{f.hostname} does not resolve (the hosts check adds it)"))
    out.append(Finding("host.systemd", "pass" if f.pid1 == "systemd" else "fail", f"PID 1 is {f.pid1 or '?'}"))
    cg = kernel.cgroup_version(f.cgroup_fs)
    out.append(Finding("host.cgroup", {2: "pass", 1: "warn"}.get(cg or 0, "fail"),
                       f"{f.cgroup_fs}: " + {2: "cgroup v2", 1: "cgroup v1 (in maintenance since Kubernetes 1.31)"}
                       .get(cg or 0, "no cgroup filesystem")))
    kv = kernel.version_tuple(f.kernel)
    if d.proxy_mode == "nftables" and kv < (5, 13, 0):
        out.append(Finding("host.kernel", "fail", f"{f.kernel}: kube-proxy nftables mode needs ≥ 5.13"))
    elif kv < (4, 19, 0):
        out.append(Finding("host.kernel", "warn", f"{f.kernel}: older than 4.19"))
    else:
        need = " (nftables mode needs ≥ 5.13)" if d.proxy_mode == "nftables" else ""
        out.append(Finding("host.kernel", "pass", f"{f.kernel}{need}"))
    missing = [t for t in s.required_tools if not f.tools.get(t)]
    weak = [t for t in s.recommended_tools if not f.tools.get(t)]
    if missing:
        out.append(Finding("host.tools", "fail", f"missing: {', '.join(missing)}"
                           + (f"; recommended missing: {', '.join(weak)}" if weak else "")))
    elif weak:
        out.append(Finding("host.tools", "warn", f"recommended missing: {', '.join(weak)}"))
    else:
        out.append(Finding("host.tools", "pass", "all present"))
    out.append(_ports(f, node))
    return out


def _ports(f: NodeFacts, node: Node) -> Finding:
    wanted: list[int] = []
    for role in node.roles:
        for spec in ROLE_FREE_PORTS.get(role, ()):
            wanted += [p for p in expand(spec) if p not in wanted]
    owners = port_owners(f.listeners)
    busy, kube = [], []
    for port in sorted(wanted):
        who = owners.get(port)
        if not who:
            continue
        expected = EXPECTED_OWNERS.get(port, set())
        if port in (2379, 2380) and "etcd" in node.roles:
            expected = {"etcd"}
        if who and all(any(w.startswith(e) for e in expected) for w in who):
            kube.append(f"{port} ({'/'.join(sorted(who))})")
        else:
            busy.append(f"{port} ({'/'.join(sorted(who))})")
    spec = ", ".join(str(p) for p in sorted(wanted))
    if busy:
        return Finding("host.ports", "fail", f"in use: {', '.join(busy)}")
    if kube:
        return Finding("host.ports", "pass", f"free or held by their Kubernetes component: {', '.join(kube)}")
    return Finding("host.ports", "pass", f"free: {spec}")


def uniqueness(facts: dict[str, NodeFacts], nodes: dict[str, Node]) -> dict[str, list[Finding]]:
    """unique.hostname / unique.mac / unique.product_uuid across all reachable nodes."""
    out: dict[str, list[Finding]] = {h: [] for h in facts}
    by_name: dict[str, list[str]] = {}
    by_mac: dict[str, list[str]] = {}
    by_uuid: dict[str, list[str]] = {}
    for h, f in facts.items():
        by_name.setdefault(f.hostname, []).append(h)
        for mac in set(hardware.identity_macs(f.links).values()):
            by_mac.setdefault(mac, []).append(h)
        if f.product_uuid:
            by_uuid.setdefault(f.product_uuid, []).append(h)
    for h, f in facts.items():
        lab = nodes[h].lab
        dup = [o for o in by_name.get(f.hostname, []) if o != h]
        out[h].append(Finding("unique.hostname", "fail" if dup else "pass",
                              f"{f.hostname} also on {', '.join(dup)}" if dup else f.hostname))
        macs = hardware.identity_macs(f.links)
        clash = sorted({o for m in macs.values() for o in by_mac.get(m, []) if o != h})
        if not macs:
            out[h].append(Finding("unique.mac", "warn", "no Ethernet interface found"))
        else:
            out[h].append(Finding("unique.mac", "fail" if clash else "pass",
                                  f"MAC shared with {', '.join(clash)}" if clash
                                  else ", ".join(f"{n} {m}" for n, m in sorted(macs.items()))))
        if not f.product_uuid:
            st = "n/a in lab" if lab else "warn"
            why = "lab nodes are containers on one host (no DMI)" if lab else "cannot read it"
            out[h].append(Finding("unique.product_uuid", st, f"/sys/class/dmi/id/product_uuid: {why}"))
        else:
            dup = [o for o in by_uuid[f.product_uuid] if o != h]
            st = ("n/a in lab" if lab else "fail") if dup else "pass"
            extra = " (lab nodes share the host's DMI)" if dup and lab else ""
            out[h].append(Finding("unique.product_uuid", st,
                                  f"{f.product_uuid} also on {', '.join(dup)}{extra}" if dup else f.product_uuid))
    return out
