"""Kernel modules: what the kernel can do now (not only ``lsmod``), what is persisted, what can load.

Built-in modules are invisible to ``lsmod``/``/proc/modules`` (lab-notes.md), so capability is
read from procfs/sysfs: overlay in /proc/filesystems, br_netfilter by /proc/sys/net/bridge,
nf_conntrack by /proc/sys/net/netfilter/nf_conntrack_max, others by /sys/module/<name>.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from . import tools

PROC_MODULES = "cat /proc/modules"
FILESYSTEMS = "cat /proc/filesystems"
SYS_MODULE = "ls -1 /sys/module"
PROBES = ("ls -1 /proc/sys/net/bridge 2>/dev/null | sed 's#^#bridge/#'; "
          "[ -e /proc/sys/net/netfilter/nf_conntrack_max ] && echo netfilter/nf_conntrack_max; "
          "[ -e /proc/net/ip_vs ] && echo net/ip_vs; true")
LOAD_DIR = "/etc/modules-load.d"
K8S_FILE = f"{LOAD_DIR}/k8s.conf"


def modinfo_command(names: Iterable[str]) -> str:
    """``name path|(builtin)|-`` per module, from modules.dep/modules.builtin in one awk (what
    modinfo would say); ``-`` for all when the kernel has no /lib/modules (a lab node)."""
    words = " ".join(n for n in names if re.fullmatch(r"[A-Za-z0-9_-]+", n))
    awk = ("BEGIN{n=split(want,w,\" \"); for(i=1;i<=n;i++) W[w[i]]=1} "
           "{f=$1; sub(/:$/,\"\",f); b=f; sub(/.*\\//,\"\",b); sub(/\\.ko.*$/,\"\",b); gsub(/-/,\"_\",b); "
           "if ((b in W) && !(b in S)) S[b]=(FILENAME ~ /builtin$/ ? \"(builtin)\" : d \"/\" f)} "
           "END{for(i=1;i<=n;i++) print w[i], ((w[i] in S) ? S[w[i]] : \"-\")}")
    return (f'd="/lib/modules/$(uname -r)"; if [ -r "$d/modules.dep" ]; then '
            f'awk -v want="{words}" -v d="$d" \'{awk}\' "$d/modules.dep" "$d/modules.builtin" 2>/dev/null; '
            f'else for m in {words}; do echo "$m -"; done; fi')


def parse_proc_modules(text: str) -> set[str]:
    """/proc/modules (what lsmod prints): module names."""
    return {ln.split()[0] for ln in text.splitlines() if ln.strip() and not ln.startswith("Module ")}


def parse_filesystems(text: str) -> set[str]:
    return {ln.split()[-1] for ln in text.splitlines() if ln.strip()}


def parse_lines(text: str) -> set[str]:
    return {ln.strip() for ln in text.splitlines() if ln.strip()}


def parse_modinfo(text: str) -> dict[str, str | None]:
    """name -> module file, "(builtin)", or None when unknown to this kernel / no /lib/modules."""
    return tools.parse(text)  # the same "name value-or-dash" lines


def parse_load_file(text: str) -> list[str]:
    """Module names in a modules-load.d file (comments ``#``/``;`` and blanks skipped)."""
    out: list[str] = []
    for line in text.splitlines():
        s = line.strip()
        if s and not s.startswith(("#", ";")):
            out.append(s.split()[0])
    return out


def capability(name: str, *, loaded: set[str], filesystems: set[str], sys_module: set[str],
               probes: set[str]) -> str | None:
    """Where the kernel shows ``name`` is usable now (a short evidence string), or None."""
    if name in loaded:
        return "/proc/modules"
    if name == "overlay" and "overlay" in filesystems:
        return "/proc/filesystems"
    if name == "br_netfilter" and any(p.startswith("bridge/bridge-nf-call") for p in probes):
        return "/proc/sys/net/bridge"
    if name == "nf_conntrack" and "netfilter/nf_conntrack_max" in probes:
        return "/proc/sys/net/netfilter"
    if name == "ip_vs" and "net/ip_vs" in probes:
        return "/proc/net/ip_vs"
    if name in sys_module:
        return "/sys/module"
    return None
