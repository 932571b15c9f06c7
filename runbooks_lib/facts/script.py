"""Many facts in one round trip: a composite shell script printing delimited sections.

Each section runs in a subshell; its stdout is captured between markers with its exit code.
Sections may differ per distro family: the script detects the family in shell with a
function generated from :data:`runbooks_lib.facts.os_release.FAMILIES` (one place).
Stderr of sections goes to the command's stderr (kept in the evidence log).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ..evidence import utc_now
from ..transport.base import CommandFailed, TargetUnreachable, Transport
from . import files, os_release

BEGIN = "@@runbooks-fact@@"
END = "@@runbooks-rc@@"

#: a section's shell: one string for every family, or one per family ("*" is the fallback)
SectionCommand = str | Mapping[str, str]


@dataclass(frozen=True)
class Section:
    """One section's output."""

    name: str
    stdout: str
    exit_code: int

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def build(sections: Mapping[str, SectionCommand]) -> str:
    """The composite script for ``sections`` (name -> command)."""
    lines = [os_release.shell_family_function(), 'fam="$(runbooks_family)"']
    for name, cmd in sections.items():
        if not name.replace("_", "").replace(".", "").isalnum():
            raise ValueError(f"bad section name {name!r}")
        lines.append(f"echo '{BEGIN} {name}'")
        if isinstance(cmd, str):
            lines.append(f"( {cmd}\n)")
        else:
            arms = [f"  {fam}) ( {c}\n) ;;" for fam, c in cmd.items() if fam != "*"]
            fallback = cmd.get("*", "exit 127")
            arms.append(f"  *) ( {fallback}\n) ;;")
            lines.append('case "$fam" in\n' + "\n".join(arms) + "\nesac")
        lines.append(f"rc=$?; echo; echo \"{END} $rc\"")
    return "\n".join(lines) + "\n"


def split(stdout: str) -> dict[str, Section]:
    """Sections back from the script's stdout (the newline added before each end marker removed)."""
    out: dict[str, Section] = {}
    name: str | None = None
    buf: list[str] = []
    for line in stdout.split("\n"):
        if line.startswith(BEGIN + " "):
            name, buf = line[len(BEGIN) + 1:].strip(), []
        elif line.startswith(END + " ") and name is not None:
            text = "\n".join(buf)
            # the script printed one extra newline before the end marker
            text = text[:-1] if text.endswith("\n") else text
            if text and not text.endswith("\n"):
                text += "\n"
            try:
                code = int(line[len(END) + 1:].strip())
            except ValueError:
                code = -1
            out[name] = Section(name, text, code)
            name, buf = None, []
        elif name is not None:
            buf.append(line)
    return out


def gather(transport: Transport, sections: Mapping[str, SectionCommand], timeout: float | None = None
           ) -> dict[str, Section]:
    """Run ``sections`` on ``transport`` in one command (with sudo); every section must come back.

    Recorded with file contents decoded and redacted (:func:`files.evidence_view`), never base64."""
    display = f"gather facts: {', '.join(sections)}"
    rec = transport.recorder
    started, t0 = utc_now(), time.monotonic()
    try:
        res = transport.run(build(sections), sudo=True, timeout=timeout, display=display, record=False)
    except TargetUnreachable as exc:
        rec.record(kind="command", target=transport.name, command=display, exit_code=None, stderr=exc.reason,
                   duration_s=time.monotonic() - t0, started_utc=started, status="unreachable")
        raise
    rec.record(kind="command", target=transport.name, command=display, exit_code=res.exit_code,
               stdout=files.evidence_view(res.stdout, rec.redactor.redact),
               stderr=files.evidence_view(res.stderr, rec.redactor.redact),
               duration_s=res.duration_s, started_utc=started,
               status="timeout" if res.timed_out else ("ok" if res.exit_code == 0 else "failed"))
    got = split(res.stdout)
    missing = [n for n in sections if n not in got]
    if missing:
        shown = dataclasses.replace(res, stdout=files.evidence_view(res.stdout, rec.redactor.redact))
        raise CommandFailed(shown) if res.exit_code else RuntimeError(
            f"{transport.name}: fact sections missing from output: {', '.join(missing)}")
    return got
