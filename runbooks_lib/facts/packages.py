"""Installed packages (rpm on the rhel family, dpkg on the debian family) and name mapping."""

from __future__ import annotations

from dataclasses import dataclass

COMMAND = {
    "rhel": r"rpm -qa --qf '%{NAME}\t%{VERSION}-%{RELEASE}\tinstalled\n'",
    "debian": r"dpkg-query -W -f '${Package}\t${Version}\t${db:Status-Abbrev}\n'",
}

#: canonical name -> family -> acceptable package names (the first is the one to install)
NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "conntrack": {"rhel": ("conntrack-tools",), "debian": ("conntrack",)},
    "iptables": {"rhel": ("iptables-nft", "iptables-legacy"), "debian": ("iptables",)},
    "curl": {"rhel": ("curl", "curl-minimal"), "debian": ("curl",)},
    "nfs-utils": {"rhel": ("nfs-utils",), "debian": ("nfs-common",)},
    "libseccomp": {"rhel": ("libseccomp",), "debian": ("libseccomp2",)},
    "containerd": {"rhel": ("containerd.io",), "debian": ("containerd", "containerd.io")},
    "telnet": {"rhel": ("telnet",), "debian": ("telnet", "inetutils-telnet")},
    "tc": {"rhel": ("iproute-tc",), "debian": ("iproute2",)},
    "iproute": {"rhel": ("iproute",), "debian": ("iproute2",)},
    "ebtables": {"rhel": ("ebtables-legacy", "iptables-nft"), "debian": ("ebtables",)},
}


@dataclass(frozen=True)
class Package:
    name: str
    version: str


def parse_rpm(text: str) -> dict[str, Package]:
    out: dict[str, Package] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0]:
            out[parts[0]] = Package(parts[0], parts[1])
    return out


def parse_dpkg(text: str) -> dict[str, Package]:
    """Only packages whose status is installed ("ii", "hi")."""
    out: dict[str, Package] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[2].strip()[:2] in ("ii", "hi"):
            out[parts[0]] = Package(parts[0], parts[1])
    return out


def parse(family: str, text: str) -> dict[str, Package]:
    return parse_rpm(text) if family == "rhel" else parse_dpkg(text)


def candidates(canonical: str, family: str) -> tuple[str, ...]:
    """Acceptable package names for ``canonical`` on ``family`` (itself when not mapped)."""
    return NAMES.get(canonical, {}).get(family, (canonical,))


def find(installed: dict[str, Package], canonical: str, family: str) -> Package | None:
    for name in candidates(canonical, family):
        if name in installed:
            return installed[name]
    return None


def version_matches(version: str, wanted: str) -> bool:
    """"1.30.2-150500.1.1" matches wanted "1.30" and "1.30.2" (epoch "1:" ignored)."""
    v = version.split(":", 1)[-1]
    return v == wanted or v.startswith(wanted + ".") or v.startswith(wanted + "-")
