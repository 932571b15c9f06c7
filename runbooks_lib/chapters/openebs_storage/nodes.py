"""Node facts for OpenEBS, in one SSH round trip per node: iSCSI (cStor/Jiva), the hostpath base
directory (existence, free space, filesystem and mount options, SELinux context), candidate raw
disks (``lsblk`` JSON) and Mayastor's needs (2 MiB hugepages, nvme-tcp, kernel)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...facts import kernel, modules, script, selinux, services, tools
from ...facts import lab as labfacts
from ...transport import Transport
from ..system_init.labproof import missing_proof

MODULES = ("iscsi_tcp", "nvme_tcp")
LSBLK_COLS = "NAME,PATH,TYPE,SIZE,FSTYPE,MOUNTPOINTS,RO"


def base_command(base: str) -> str:
    """The base path, or its nearest existing ancestor (where a new base dir would land): path,
    existence, ``df`` bytes, filesystem type and mount options, SELinux context."""
    return (f'p="{base}"; while [ ! -e "$p" ]; do p="$(dirname "$p")"; done; echo "path=$p"; '
            f'[ "$p" = "{base}" ] && echo exists=yes || echo exists=no; '
            'echo "df=$(df -PB1 "$p" | tail -n 1)"; echo "mount=$(findmnt -no FSTYPE,OPTIONS -T "$p")"; '
            'echo "context=$(stat -c %C "$p" 2>/dev/null)"')


def sections(base: str) -> dict[str, str]:
    return {
        "kernel": kernel.UNAME,
        "tools": tools.command(["iscsiadm", "fio", "xfs_quota"]),
        "iscsid": services.command(["iscsid.service"]),
        "modinfo": modules.modinfo_command(MODULES),
        "loaded": modules.PROC_MODULES,
        "base": base_command(base),
        "selinux": str(selinux.COMMAND["*"]),
        "lsblk": f"lsblk -J -b -o {LSBLK_COLS} 2>/dev/null || lsblk -J -b -o {LSBLK_COLS.replace('POINTS', 'POINT')}",
        "hugepages": "grep -E '^(HugePages_Total|HugePages_Free|Hugepagesize):' /proc/meminfo",
        "hostname": "hostname",
        "lab": labfacts.COMMAND,
    }


@dataclass
class BaseDir:
    path: str                 # the base path, or its nearest existing ancestor
    exists: bool
    free_bytes: int | None
    fstype: str
    options: list[str]
    context: str              # SELinux context ("" or "?" without SELinux)

    @property
    def project_quota(self) -> bool:
        return bool({"prjquota", "pquota"} & set(self.options))


@dataclass
class Disk:
    name: str
    path: str
    type: str
    size: int
    fstype: str | None
    mountpoints: list[str]
    ro: bool
    children: int

    def why_not(self) -> str | None:
        """Why this device cannot back a raw pool / device volume; None for a candidate."""
        if self.type not in ("disk", "part"):
            return f"type {self.type}"
        if self.ro:
            return "read-only"
        if self.fstype == "LVM2_member":
            return "an LVM physical volume"
        if self.fstype:
            return f"has a filesystem ({self.fstype})"
        if self.mountpoints:
            return f"mounted at {', '.join(self.mountpoints)}"
        if self.children:
            return "partitioned / in use by a child device"
        return None


@dataclass
class NodeFacts:
    host: str
    kernel: str
    tools: dict[str, str | None]
    iscsid: services.Unit | None
    modinfo: dict[str, str | None]
    loaded: set[str]
    base: BaseDir
    selinux: selinux.SELinux
    disks: list[Disk]
    hugepages: dict[str, int]
    lab: bool                 # proven a lab node (container, marker, host key in the lab's known_hosts)
    lab_missing: list[str]    # what is missing for that proof
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def kernel_modules_known(self) -> bool:
        """False when the node has no /lib/modules (a lab container: modules are the host's)."""
        return any(v is not None for v in self.modinfo.values()) or bool(self.loaded)

    def module(self, name: str) -> str | None:
        """Where ``name`` is usable: loaded, built in, or loadable from a file; None when not."""
        if name in self.loaded:
            return "loaded"
        return self.modinfo.get(name)


def parse_base(text: str) -> BaseDir:
    kv = dict(line.partition("=")[::2] for line in text.splitlines() if "=" in line)
    df = kv.get("df", "").split()
    free = int(df[3]) if len(df) >= 4 and df[3].isdigit() else None
    mount = kv.get("mount", "").split()
    return BaseDir(kv.get("path", ""), kv.get("exists") == "yes", free, mount[0] if mount else "",
                   mount[1].split(",") if len(mount) > 1 else [], kv.get("context", "").strip())


def _disks(devs: list[dict[str, Any]]) -> list[Disk]:
    out = []
    for d in devs:
        mps = d.get("mountpoints")
        if mps is None:
            mps = [d.get("mountpoint")]
        kids = d.get("children") or []
        out.append(Disk(str(d.get("name", "")), str(d.get("path") or f"/dev/{d.get('name')}"), str(d.get("type", "")),
                        int(d.get("size") or 0), d.get("fstype") or None, [m for m in mps if m],
                        d.get("ro") in (True, 1, "1"), len(kids)))
        out.extend(_disks(kids))
    return out


def parse_lsblk(text: str) -> list[Disk]:
    """Every device in ``lsblk -J -b -o NAME,PATH,TYPE,SIZE,FSTYPE,MOUNTPOINTS,RO`` output, children
    flattened after their parent; a malformed output raises ValueError."""
    doc = json.loads(text or '{"blockdevices": []}')
    return _disks(list(doc.get("blockdevices") or []))


def parse_hugepages(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if v.split():
            out[k.strip()] = int(v.split()[0])
    return out


def parse(host: str, got: dict[str, script.Section], known_hosts: Callable[[str], str | None]) -> NodeFacts:
    """Facts from the gathered sections; ``known_hosts(lab name)`` gives that lab's known_hosts."""
    missing = missing_proof(labfacts.parse(got["lab"].stdout), got["hostname"].stdout.strip(), known_hosts)
    return NodeFacts(
        host=host, kernel=kernel.parse_release(got["kernel"].stdout), tools=tools.parse(got["tools"].stdout),
        iscsid=services.parse(got["iscsid"].stdout).get("iscsid.service"),
        modinfo=modules.parse_modinfo(got["modinfo"].stdout), loaded=modules.parse_proc_modules(got["loaded"].stdout),
        base=parse_base(got["base"].stdout), selinux=selinux.parse(got["selinux"].stdout),
        disks=parse_lsblk(got["lsblk"].stdout), hugepages=parse_hugepages(got["hugepages"].stdout),
        lab=not missing, lab_missing=missing, raw={k: v.stdout for k, v in got.items()})


#: install the iSCSI initiator and start iscsid (apply; cStor/Jiva only), per distro family
ISCSI_INSTALL = ("if command -v apt-get >/dev/null; then command -v iscsiadm >/dev/null || { "
                 "DEBIAN_FRONTEND=noninteractive apt-get -qq update && DEBIAN_FRONTEND=noninteractive "
                 "apt-get -qq install -y open-iscsi >/dev/null; }; "
                 "else command -v iscsiadm >/dev/null || dnf -q -y install iscsi-initiator-utils >/dev/null; fi "
                 "&& systemctl enable -q iscsid && { systemctl start iscsid 2>/dev/null && echo started || "
                 "{ echo 'iscsid did not start:'; journalctl -u iscsid -n 6 --no-pager -o cat; }; }")


def install_iscsi(transport: Transport) -> str:
    """Install the initiator where missing, enable and start iscsid (apply only): what happened; a
    daemon that does not start is reported with its journal (the re-read facts judge it)."""
    res = transport.run(ISCSI_INSTALL, sudo=True, timeout=300)
    if not res.ok:
        raise RuntimeError(f"iSCSI initiator install failed (exit {res.exit_code}): {res.stderr.strip()[-300:]}")
    out = res.stdout.strip()
    return "initiator installed, iscsid enabled and started" if out == "started" else \
        "initiator installed, iscsid enabled; " + " ".join(out.split())


def lab_known_hosts(name: str) -> str | None:
    """The known_hosts `runbooks lab up` wrote for lab ``name`` here (None: no such lab)."""
    from ...lab.lab import state_dir

    path = state_dir(name) / "known_hosts"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def gather(transport: Transport, base: str, known_hosts: Callable[[str], str | None],
           timeout: float = 60.0) -> NodeFacts:
    return parse(transport.name, script.gather(transport, sections(base), timeout=timeout), known_hosts)
