"""Is this node a runbooks lab node? Container detection, the lab's marker file, the SSH host keys.

Facts only: whether they prove a lab node is decided in ``chapters/system_init/labproof.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MARKER = "/etc/runbooks-lab"
SEP = "@@--"
#: systemd-detect-virt -c, /run/.containerenv, PID 1's container=, the marker, the host public keys
COMMAND = (f"systemd-detect-virt -c 2>/dev/null; echo {SEP}; [ -e /run/.containerenv ] && echo present; "
           f"echo {SEP}; (tr '\\0' '\\n' < /proc/1/environ) 2>/dev/null | grep '^container=' ; echo {SEP}; "
           f"cat {MARKER} 2>/dev/null; echo {SEP}; cat /etc/ssh/ssh_host_*_key.pub 2>/dev/null; true")
LAB_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")


@dataclass
class LabFacts:
    virt: str = ""                      # systemd-detect-virt -c ("none" on a host)
    containerenv: bool = False          # /run/.containerenv exists (podman)
    pid1_container: str = ""            # container= in PID 1's environment
    marker: dict[str, str] = field(default_factory=dict)   # key=value lines of the lab's marker file
    host_keys: list[tuple[str, str]] = field(default_factory=list)  # (type, base64) of the host keys

    @property
    def container(self) -> str:
        """What says this is a container ("" when nothing does)."""
        signs = [f"systemd-detect-virt -c: {self.virt}" if self.virt not in ("", "none") else "",
                 "/run/.containerenv" if self.containerenv else "",
                 f"PID 1 container={self.pid1_container}" if self.pid1_container else ""]
        return ", ".join(s for s in signs if s)

    @property
    def lab_name(self) -> str | None:
        name = self.marker.get("lab", "")
        return name if LAB_NAME.match(name) else None


def parse(text: str) -> LabFacts:
    parts = (text.split(SEP + "\n") + [""] * 5)[:5]
    marker = {}
    for line in parts[3].splitlines():
        key, eq, value = line.partition("=")
        if eq and not key.startswith("#"):
            marker[key.strip()] = value.strip()
    keys = []
    for line in parts[4].splitlines():
        words = line.split()
        if len(words) >= 2 and words[0].startswith(("ssh-", "ecdsa-", "sk-")):
            keys.append((words[0], words[1]))
    env = next((ln.partition("=")[2] for ln in parts[2].splitlines() if ln.startswith("container=")), "")
    return LabFacts(virt=parts[0].strip(), containerenv="present" in parts[1], pid1_container=env.strip(),
                    marker=marker, host_keys=keys)


def known_host_keys(known_hosts: str) -> set[tuple[str, str]]:
    """(type, base64) of every key in a known_hosts file (markers such as @cert-authority skipped)."""
    out = set()
    for line in known_hosts.splitlines():
        words = line.split()
        if len(words) >= 3 and not words[0].startswith(("#", "@")):
            out.add((words[1], words[2]))
    return out
