"""Compliance: facts + desired state -> one Finding per check, with the change that fixes it.

Host asserts and uniqueness are in :mod:`.host_checks`, the types in :mod:`.model`; both are re-exported.
Pure functions (no I/O): unit-tested on captured and written outputs. Status rules:
- compliant -> pass; differs and a change fixes it -> drift with the change attached (``drift.py``
  turns what apply left differing into fail); what apply cannot fix -> fail;
- a step that cannot apply in the lab (host-global kernel state, module loading, unreachable
  package repositories) -> "n/a in lab", never pass; no change attached.
"""

from __future__ import annotations

from ...changes import Change
from ...changes import chrony as chrony_c
from ...changes import containerd as containerd_c
from ...changes import firewall as firewall_c
from ...changes import hosts as hosts_c
from ...changes import kube as kube_c
from ...changes import modules as modules_c
from ...changes import packages as packages_c
from ...changes import selinux as selinux_c
from ...changes import swap as swap_c
from ...changes import sysctl as sysctl_c
from ...changes.services import service_state
from ...facts import chrony as chrony_f
from ...facts import containerd as containerd_f
from ...facts import hosts, os_release, sysctl
from ...facts import packages as packages_f
from ...facts.modules import capability
from .gather import BRIDGE_KEYS, NodeFacts
from .host_checks import host_asserts, uniqueness
from .model import MODULES, Desired, Finding, Node, desired_from, from_change

__all__ = ["APPLY_ORDER", "BRIDGE_KEYS", "CHECKS", "MODULES", "Desired", "Finding", "Node", "desired_from",
           "evaluate", "host_asserts", "pending_changes", "uniqueness"]

CHECKS = (
    "host.os", "host.lab", "host.cpu", "host.memory", "host.hostname", "host.resolvable",
    "unique.hostname", "unique.mac", "unique.product_uuid",
    "host.systemd", "host.cgroup", "host.kernel", "host.tools", "host.ports",
    "packages", "firewall", "selinux.runtime", "selinux.config",
    "swap.off", "swap.fstab", "swap.masked", "modules.persisted", "modules.loaded",
    "sysctl.persisted", "sysctl.runtime", "chrony.config", "chrony.service", "chrony.sync", "hosts",
    "containerd.config", "containerd.service", "containerd.cri", "crictl.config",
    "kube.packages", "kubelet.enabled",
)
#: the order changes are applied in (packages first: later checks need what they install)
APPLY_ORDER = ("packages", "firewall", "selinux.runtime", "selinux.config", "swap.off", "swap.fstab",
               "swap.masked", "modules.persisted", "modules.loaded", "sysctl.persisted", "sysctl.runtime",
               "chrony.config", "chrony.service", "hosts", "containerd.config", "containerd.service",
               "crictl.config", "kube.packages", "kubelet.enabled")
LAB_NO_KUBE = ("not installable in the lab: kubelet/kubeadm are not in Debian 12 and the Kubernetes "
               "package repository is unreachable")


# ----------------------------------------------------------------------------- node state

def packages(f: NodeFacts, d: Desired) -> Finding:
    missing = [c for c in d.packages if packages_f.find(f.packages, c, f.family) is None]
    names = [packages_f.candidates(c, f.family)[0] for c in missing]
    return from_change("packages", packages_c.install_change("packages", f.family, names),
                 f"missing: {', '.join(names)}" if names else "")


def firewall(f: NodeFacts, node: Node, d: Desired) -> Finding:
    unit = f.units.get(f.firewall.tool)
    enabled = bool(unit and unit.exists and unit.enabled)
    return from_change("firewall", firewall_c.change(f.firewall, d.settings.firewall, node.roles, enabled),
                 f"{f.firewall.tool} {'running' if f.firewall.running else 'enabled'}"
                 if d.settings.firewall == "disable" else "")


def selinux(f: NodeFacts, d: Desired) -> list[Finding]:
    if f.family != "rhel":
        why = f"{os_release.describe(f.os)}: SELinux is not used on the {f.family} family (AppArmor is)"
        return [Finding("selinux.runtime", "n/a", why), Finding("selinux.config", "n/a", why)]
    se = f.selinux
    if se.runtime == "absent":
        return [Finding("selinux.runtime", "pass", "SELinux not present"),
                Finding("selinux.config", "pass" if se.config in (None, d.settings.selinux, "disabled") else "fail",
                        f"SELINUX={se.config}")]
    return [from_change("selinux.runtime", selinux_c.runtime_change(se), f"SELinux {se.runtime}"),
            from_change("selinux.config", selinux_c.config_change(se, d.settings.selinux), f"SELINUX={se.config}")]


def swap(f: NodeFacts, node: Node) -> list[Finding]:
    out: list[Finding] = []
    active = [s.name for s in f.swaps]
    if active and node.lab:
        out.append(Finding("swap.off", "n/a in lab", f"active swap {', '.join(active)} belongs to the host "
                           "(shared kernel): not turned off in the lab"))
    else:
        out.append(from_change("swap.off", swap_c.off_change(active), f"swap on: {', '.join(active)}"))
    out.append(from_change("swap.fstab", swap_c.fstab_change(f.files.get("/etc/fstab")), "swap in /etc/fstab"))
    unit = f.units.get("swap.target")
    out.append(from_change("swap.masked", swap_c.mask_change(bool(unit and unit.masked)), "swap.target not masked"))
    return out


def kmodules(f: NodeFacts, node: Node, d: Desired) -> list[Finding]:
    wanted = d.modules
    out = [from_change("modules.persisted", modules_c.persist_change(f.files.get("/etc/modules-load.d/k8s.conf"), wanted),
                 "modules not persisted")]
    where: dict[str, str] = {}
    missing: list[str] = []
    for m in wanted:
        cap = _capability(f, m)
        if cap:
            where[m] = cap
        else:
            missing.append(m)
    have = ", ".join(f"{m} ({w})" for m, w in where.items())
    if not missing:
        out.append(Finding("modules.loaded", "pass", have))
    elif node.lab:
        unknown = [m for m in missing if not f.modinfo.get(m)]
        why = f"; not in this kernel: {', '.join(unknown)}" if unknown else ""
        out.append(Finding("modules.loaded", "n/a in lab",
                           f"not loaded: {', '.join(missing)} (modules cannot be loaded from a lab node: shared "
                           f"host kernel, no /lib/modules){why}" + (f"; usable: {have}" if have else "")))
    else:
        unknown = [m for m in missing if not f.modinfo.get(m)]
        if unknown:
            out.append(Finding("modules.loaded", "fail", f"not available in kernel {f.kernel}: {', '.join(unknown)}"))
        else:
            out.append(from_change("modules.loaded", modules_c.load_change(missing), f"not loaded: {', '.join(missing)}"))
    return out


def _capability(f: NodeFacts, name: str) -> str | None:
    return capability(name, loaded=f.loaded, filesystems=f.filesystems, sys_module=f.sys_module, probes=f.probes)


def sysctl_values(f: NodeFacts, node: Node, d: Desired) -> tuple[dict[str, str], list[str]]:
    """The wanted values for this node, and notes on keys left out."""
    notes: list[str] = []
    exact = {"net.ipv4.ip_forward": "1"}
    for key in BRIDGE_KEYS:
        rt = f.sysctl.get(key)
        exists = rt is not None and rt.value is not None
        if exists or (not node.lab and (f.modinfo.get("br_netfilter") or _capability(f, "br_netfilter"))):
            exact[key] = "1"
        else:
            notes.append(f"{key} left out (no such key: br_netfilter absent)")
    exact["vm.swappiness"] = "0"
    exact.update(d.settings.sysctl_extra)
    files = {p: c for p, c in f.files.items() if _is_sysctl_file(p)}
    values = sysctl_c.desired_values(exact, d.settings.sysctl_minimum, f.sysctl, sysctl.persisted(files))
    return values, notes


def _is_sysctl_file(path: str) -> bool:
    return path == "/etc/sysctl.conf" or any(path.startswith(dd + "/") for dd in sysctl.DIRS)


def sysctls(f: NodeFacts, node: Node, d: Desired) -> list[Finding]:
    values, notes = sysctl_values(f, node, d)
    current = f.files.get(sysctl_c.PATH)
    change = sysctl_c.file_change(current, values)
    # would another file override ours once it is written?
    files = {p: c for p, c in f.files.items() if _is_sysctl_file(p)}
    files[sysctl_c.PATH] = sysctl_c.render(values) if isinstance(change, Change) else current
    eff = sysctl.persisted(files)
    overridden = [f"{k} = {eff[k][0]} in {eff[k][1]}" for k, v in values.items()
                  if k in eff and eff[k][1] != sysctl_c.PATH and not sysctl.same_value(eff[k][0], v)]
    note = f" ({'; '.join(notes)})" if notes else ""
    if overridden:
        fd = Finding("sysctl.persisted", "fail", f"overridden by a later file: {', '.join(overridden)}{note}",
                     change if isinstance(change, Change) else None)
    else:
        fd = from_change("sysctl.persisted", change, "kernel parameters not persisted")
        fd.detail += note
    out = [fd]
    differs = sysctl_c.runtime_differs(values, d.settings.sysctl_minimum, f.sysctl)
    can = {k: v for k, v in differs.items() if (f.sysctl.get(k) and f.sysctl[k].writable) or not node.lab}
    cannot = {k: v for k, v in differs.items() if k not in can}
    lab_desc = ", ".join(f"{k} is {_rt(f, k)} (want {v})" for k, v in cannot.items())
    lab_why = "host-global keys, read-only in a lab node (persisted only)"
    if can:
        fd = from_change("sysctl.runtime", sysctl_c.runtime_change(can),
                   "runtime differs: " + ", ".join(f"{k}={_rt(f, k)}" for k in can))
        if cannot:
            fd.detail += f"; n/a in lab: {lab_desc} ({lab_why})"
    elif cannot:
        fd = Finding("sysctl.runtime", "n/a in lab", f"{lab_desc} ({lab_why})")
    else:
        fd = Finding("sysctl.runtime", "pass", ", ".join(f"{k}={_rt(f, k)}" for k in values))
    out.append(fd)
    return out


def _rt(f: NodeFacts, key: str) -> str:
    rt = f.sysctl.get(key)
    return rt.value if rt and rt.value is not None else "absent"


def chrony(f: NodeFacts, node: Node, d: Desired) -> list[Finding]:
    path = chrony_f.CONFIG.get(f.family, "/etc/chrony.conf")
    service = chrony_f.SERVICE.get(f.family, "chronyd")
    servers = d.settings.ntp_servers
    included = {p: c for p, c in f.files.items()
                if c is not None and p != path and p.startswith(("/etc/chrony/", "/etc/chrony.d/"))}
    elsewhere = {h for c in included.values() for _, h in chrony_f.sources(c)}
    unwanted = sorted(elsewhere - set(servers))
    out = []
    fd = from_change("chrony.config", chrony_c.config_change(path, f.files.get(path), servers, service, elsewhere),
               "time sources differ")
    if unwanted:
        fd.detail += f"; other sources in included files (not edited): {', '.join(unwanted)}"
        if fd.status == "pass":
            fd.status = "warn"
    out.append(fd)
    unit = f.units.get(service)
    out.append(from_change("chrony.service", service_state("chrony.service", service, unit, enabled=True, running=True),
                     f"{service} not enabled/running"))
    tr = f.tracking
    if tr is not None and tr.synchronised:
        off = f"{tr.offset_s:+.6f} s" if tr.offset_s is not None else "?"
        out.append(Finding("chrony.sync", "pass", f"synchronised: stratum {tr.stratum}, offset {off}, "
                           f"reference {tr.reference}"))
    else:
        what = "no answer from chronyd" if tr is None else f"not synchronised (leap status {tr.leap})"
        out.append(Finding("chrony.sync", "warn" if node.lab else "fail",
                           what + (" — the lab has no route to internet time servers" if node.lab else "")))
    return out


def etc_hosts(f: NodeFacts, d: Desired) -> Finding:
    current = f.files.get(hosts.PATH)
    rendered = hosts_c.render(current, d.cluster)
    entries = hosts.parse(rendered)
    wrong = [f"{n} -> {hosts.lookup(entries, n)} (want {a})" for n, a in d.cluster
             if hosts.lookup(entries, n) != a]
    fd = from_change("hosts", hosts_c.change(current, d.cluster), "cluster nodes not all named in /etc/hosts")
    if wrong:
        fd.status = "fail"
        fd.detail += "; an earlier line wins: " + ", ".join(wrong)
    if d.unnamed:
        fd.detail += f"; not an IP address, left out: {', '.join(d.unnamed)}"
    return fd


def containerd(f: NodeFacts, d: Desired) -> list[Finding]:
    out: list[Finding] = []
    ver = f.containerd_version
    text = f.files.get(containerd_f.CONFIG)
    cfg, err = containerd_f.parse_config(text) if text is not None else (None, None)
    default = containerd_f.parse_config(f.containerd_default)[0] if f.containerd_default else None
    if ver is None:
        out.append(Finding("containerd.config", "fail", "containerd is not installed (the packages step installs "
                           "it; the config is then rendered from `containerd config default`)"))
    else:
        problems = containerd_c.compliant(containerd_f.cri_config(cfg), d.sandbox_image) if cfg else (
            [f"unreadable TOML: {err}"] if err else [f"no {containerd_f.CONFIG}"])
        if cfg and containerd_f.cri_config(cfg).version >= 3 and (containerd_f.major(ver) or 0) < 2:
            problems.append(f"version 3 config needs containerd 2.x (have {ver})")
            cfg = None
        if cfg is not None and not problems:
            out.append(Finding("containerd.config", "pass", f"containerd {ver}: CRI on, SystemdCgroup = true, "
                               f"sandbox {d.sandbox_image}"))
        else:
            ch = containerd_c.config_change(text, cfg, default, d.sandbox_image)
            out.append(from_change("containerd.config", ch, f"containerd {ver}: {'; '.join(problems)}"))
    unit = f.units.get("containerd")
    if ver is None or unit is None or not unit.exists:
        out.append(Finding("containerd.service", "fail", "containerd is not installed"))
    else:
        out.append(from_change("containerd.service", service_state("containerd.service", "containerd", unit,
                                                             enabled=True, running=True),
                         "containerd not enabled/running"))
    status = containerd_f.cri_status(f.ctr_plugins)
    if status == "ok":
        out.append(Finding("containerd.cri", "pass", "CRI plugin io.containerd.grpc.v1 cri: ok"))
    else:
        why = ("containerd not running" if not f.ctr_plugins else
               f"CRI plugin {'not loaded' if status is None else status}")
        out.append(Finding("containerd.cri", "fail", why + " (kubeadm preflight: [ERROR CRI])"))
    current = f.files.get(containerd_f.CRICTL)
    parsed = containerd_f.parse_crictl(current) if current is not None else None
    out.append(from_change("crictl.config", containerd_c.crictl_change(
        current, parsed, containerd_c.crictl_desired(d.settings.containerd_socket)), "no /etc/crictl.yaml"
        if current is None else "crictl.yaml differs"))
    return out


def kube(f: NodeFacts, node: Node, d: Desired) -> list[Finding]:
    want = d.kubernetes_version
    have = {p: f.packages.get(p) for p in kube_c.PACKAGES}
    missing = [p for p, pkg in have.items() if pkg is None or not packages_f.version_matches(pkg.version, want)]
    desc = ", ".join(f"{p} {pkg.version}" if pkg else f"{p} missing" for p, pkg in have.items())
    out: list[Finding] = []
    if not missing:
        out.append(Finding("kube.packages", "pass", f"{desc} (want {want})"))
    elif node.lab:
        out.append(Finding("kube.packages", "n/a in lab", f"{desc}: {LAB_NO_KUBE}"))
    elif not d.settings.install_kubernetes_packages:
        out.append(Finding("kube.packages", "fail", f"{desc} (want {want}); install_kubernetes_packages is off"))
    else:
        url = kube_c.repo_url(d.settings.kubernetes_repo, want)
        repo = f.files.get(kube_c.REPO_FILE.get(f.family, ""))
        out.append(from_change("kube.packages", kube_c.install_change(f.family, missing, want, url, repo),
                         f"{desc} (want {want})"))
    unit = f.units.get("kubelet")
    if unit is None or not unit.exists:
        out.append(Finding("kubelet.enabled", "n/a in lab" if node.lab else "fail",
                           "kubelet is not installed" + (f" ({LAB_NO_KUBE})" if node.lab else "")))
    elif unit.enabled:
        out.append(Finding("kubelet.enabled", "pass", f"kubelet {unit.unit_file_state}, {unit.active_state} "
                           "(it restarts until kubeadm init/join configures it)"))
    else:
        out.append(from_change("kubelet.enabled", Change("kubelet.enabled", "enable kubelet",
                                                   ["systemctl enable kubelet"]), "kubelet not enabled"))
    return out


def evaluate(f: NodeFacts, node: Node, d: Desired) -> list[Finding]:
    """Every per-node finding (unique.* come from :func:`uniqueness`)."""
    out = host_asserts(f, node, d)
    out.append(packages(f, d))
    out.append(firewall(f, node, d))
    out += selinux(f, d)
    out += swap(f, node)
    out += kmodules(f, node, d)
    out += sysctls(f, node, d)
    out += chrony(f, node, d)
    out.append(etc_hosts(f, d))
    out += containerd(f, d)
    out += kube(f, node, d)
    return out


def pending_changes(findings: list[Finding]) -> list[Change]:
    """The changes to apply, in APPLY_ORDER."""
    by = {fd.check: fd.change for fd in findings if fd.change is not None}
    return [by[c] for c in APPLY_ORDER if c in by]
