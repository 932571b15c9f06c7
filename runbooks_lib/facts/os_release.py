"""/etc/os-release and the distro family: the ONE place a family is chosen.

rhel: rocky, rhel, centos, almalinux, ol, fedora-like; debian: debian, ubuntu. Every check
picks its variant from :func:`family`.
"""

from __future__ import annotations

import shlex

COMMAND = "cat /etc/os-release"

#: family -> os-release IDs (ID or any ID_LIKE word)
FAMILIES: dict[str, tuple[str, ...]] = {
    "rhel": ("rhel", "rocky", "centos", "almalinux", "alma", "ol", "fedora"),
    "debian": ("debian", "ubuntu"),
}


def parse(text: str) -> dict[str, str]:
    """KEY=value lines (values shell-quoted or bare) to a dict."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            words = shlex.split(raw)
        except ValueError:
            words = [raw.strip("\"'")]
        out[key.strip()] = " ".join(words)
    return out


def family(info: dict[str, str]) -> str:
    """"rhel", "debian" or "unknown" from ID first, then ID_LIKE."""
    ids = [info.get("ID", "").lower()]
    ids += info.get("ID_LIKE", "").lower().split()
    for candidate in ids:
        for fam, members in FAMILIES.items():
            if candidate in members:
                return fam
    return "unknown"


def describe(info: dict[str, str]) -> str:
    return info.get("PRETTY_NAME") or f"{info.get('ID', '?')} {info.get('VERSION_ID', '')}".strip()


def shell_family_function() -> str:
    """A POSIX shell function ``runbooks_family`` printing the family (same rule as :func:`family`)."""
    arms = "\n".join(f"      {'|'.join(ids)}) echo {fam}; return ;;" for fam, ids in FAMILIES.items())
    return (
        "runbooks_family() {\n"
        "  [ -r /etc/os-release ] || { echo unknown; return; }\n"
        "  _ids=\"$(. /etc/os-release; echo \"$ID $ID_LIKE\" | tr 'A-Z' 'a-z')\"\n"
        "  for _i in $_ids; do\n"
        "    case \"$_i\" in\n"
        f"{arms}\n"
        "    esac\n"
        "  done\n"
        "  echo unknown\n"
        "}"
    )
