"""Judge one node's facts for the chosen engine: (check, status, detail) rows, no I/O."""

from __future__ import annotations

from ...facts.kernel import version_tuple
from .nodes import NodeFacts
from .settings import Settings

Row = tuple[str, str, str]
GIB = 1024 ** 3
MAYASTOR_HUGEPAGES = 1024      # 2 MiB pages: 2 GiB per io-engine node (Mayastor prerequisites)
MAYASTOR_KERNEL = (5, 13, 0)


def _module(f: NodeFacts, name: str, check: str, need: str) -> Row:
    if f.lab:
        return (check, "n/a in lab", f"kernel modules are the host's in a lab container ({need})")
    where = f.module(name)
    if where:
        return (check, "pass", f"{name}: {where}")
    if not f.kernel_modules_known:
        return (check, "warn", f"no /lib/modules/{f.kernel}: cannot tell whether {name} loads ({need})")
    return (check, "fail", f"{name} is neither loaded nor available to kernel {f.kernel} ({need})")


def iscsi(f: NodeFacts, needed: bool) -> list[Row]:
    why = "cStor/Jiva volumes attach over iSCSI"
    if not needed:
        have = "installed" if f.tools.get("iscsiadm") else "not installed"
        return [("iscsi", "info", f"not needed for this engine (iscsiadm {have})")]
    rows: list[Row] = []
    unit = f.iscsid
    if not f.tools.get("iscsiadm") or unit is None or not unit.exists:
        rows.append(("iscsi", "drift", "iscsiadm/iscsid not installed: apply installs iscsi-initiator-utils (Rocky) "
                                       "or open-iscsi (Debian) and runs systemctl enable --now iscsid — "
                                       f"{why} ('can not connect to iSCSI daemon', openebs#3400)"))
    elif not unit.active and f.lab:
        rows.append(("iscsi", "n/a in lab", f"iscsid is {unit.active_state}: a lab container cannot run it (the "
                                            "iSCSI netlink transport is the host kernel's)"))
    elif not unit.active:
        rows.append(("iscsi", "drift", f"iscsid is {unit.active_state}: apply runs systemctl enable --now iscsid "
                                       f"({why})"))
    else:
        rows.append(("iscsi", "pass", f"iscsiadm {f.tools['iscsiadm']}, iscsid {unit.active_state}"))
    rows.append(_module(f, "iscsi_tcp", "iscsi_tcp", "'iSCSI driver not found' otherwise, openebs#3273"))
    return rows


def base_dir(f: NodeFacts, s: Settings) -> list[Row]:
    b = f.base
    where = s.base_path if b.exists else f"{b.path} (nearest existing parent of {s.base_path})"
    rows: list[Row] = []
    if b.exists:
        rows.append(("hostpath.base", "pass", f"{s.base_path} exists on {b.fstype}"))
    else:
        rows.append(("hostpath.base", "info", f"{s.base_path} absent: the provisioner's helper pod creates it on the "
                                              f"first PVC, on {b.fstype} of {b.path}"))
    if b.free_bytes is None:
        rows.append(("hostpath.free", "warn", f"df gave no free space for {where}"))
    else:
        free = b.free_bytes / GIB
        status = "pass" if free >= s.min_free_gib else "warn"
        rows.append(("hostpath.free", status, f"{free:.1f} GiB free at {where} (wanted >= {s.min_free_gib:g} GiB; "
                                              "hostpath capacity is not enforced without quotas)"))
    se = f.selinux.runtime
    ctype = b.context.split(":")[2] if b.context.count(":") >= 3 else ""
    if se != "enforcing":
        rows.append(("hostpath.selinux", "pass", f"SELinux {se}"))
    elif ctype == "container_file_t":
        rows.append(("hostpath.selinux", "pass", f"SELinux enforcing, {where} is container_file_t"))
    else:
        rows.append(("hostpath.selinux", "warn", f"SELinux enforcing and {where} is {b.context or 'unlabelled'}: "
                                                 "pods cannot write there until relabelled — semanage fcontext -a -t "
                                                 f"container_file_t '{s.base_path}(/.*)?' && restorecon -R "
                                                 f"{s.base_path}"))
    rows.append(quota(f))
    return rows


def quota(f: NodeFacts) -> Row:
    b = f.base
    if b.fstype == "xfs":
        if b.project_quota:
            return ("hostpath.xfs_quota", "pass", "XFS mounted with project quota: enable xfsQuota on the class")
        return ("hostpath.xfs_quota", "warn", "XFS without prjquota: PVC sizes are not enforced; mount with "
                                              "prjquota (a root XFS needs rootflags=pquota + reboot)")
    if b.fstype == "ext4":
        return ("hostpath.xfs_quota", "warn" if not b.project_quota else "pass",
                "ext4 " + ("with" if b.project_quota else "without") + " prjquota (ext4Quota)")
    return ("hostpath.xfs_quota", "info", f"{b.fstype or 'unknown'} filesystem: no project quota, PVC sizes are "
                                          "not enforced (over-provisioning is possible)")


def disks(f: NodeFacts, needed: bool) -> Row:
    cands = [d for d in f.disks if d.why_not() is None]
    names = ", ".join(f"{d.path} ({d.size / GIB:.0f} GiB)" for d in cands) or "none"
    if needed and not cands:
        return ("disks.raw", "fail", f"no raw disk (no filesystem, not mounted, not an LVM PV) among "
                                     f"{len(f.disks)} device(s): a cStor pool needs one")
    return ("disks.raw", "info", f"raw candidates: {names} ({len(f.disks)} device(s) seen)")


def mayastor(f: NodeFacts) -> list[Row]:
    total = f.hugepages.get("HugePages_Total", 0)
    size = f.hugepages.get("Hugepagesize", 0)
    rows: list[Row] = []
    if size == 2048 and total >= MAYASTOR_HUGEPAGES:
        rows.append(("mayastor.hugepages", "pass", f"{total} x 2 MiB hugepages"))
    else:
        rows.append(("mayastor.hugepages", "fail", f"{total} x {size} kB hugepages: Mayastor needs >= "
                                                   f"{MAYASTOR_HUGEPAGES} x 2 MiB (sysctl vm.nr_hugepages=1024, then "
                                                   "restart kubelet)"))
    rows.append(_module(f, "nvme_tcp", "mayastor.nvme_tcp", "Mayastor exports volumes over NVMe-oF TCP"))
    ok = version_tuple(f.kernel) >= MAYASTOR_KERNEL
    rows.append(("mayastor.kernel", "pass" if ok else "fail", f"kernel {f.kernel} (Mayastor needs >= 5.13)"))
    return rows


def judge(f: NodeFacts, s: Settings) -> list[Row]:
    legacy = s.engine == "cstor-legacy"
    rows = iscsi(f, legacy) + base_dir(f, s) + [disks(f, legacy)]
    if s.engine == "mayastor":
        rows += mayastor(f)
    return rows
