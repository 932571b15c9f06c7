"""Parsers of kubeadm's output (pure): init, token create, upload-certs, preflight, certs check-expiration.

Secrets parsed here (tokens, the certificate key) are returned to the caller to use and register with
the redactor; they are never put into a summary meant for display (:meth:`JoinCommand.shown`).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

TOKEN = re.compile(r"\b([a-z0-9]{6}\.[a-z0-9]{16})\b")
CERT_KEY = re.compile(r"\b([0-9a-f]{64})\b")
CA_HASH = re.compile(r"(sha256:[0-9a-f]{64})")


@dataclass
class JoinCommand:
    endpoint: str
    token: str
    ca_hashes: list[str]
    control_plane: bool = False
    certificate_key: str | None = None

    def shown(self) -> str:
        """The command with every secret replaced by a placeholder."""
        parts = ["kubeadm join", self.endpoint, "--token <token>"]
        parts += [f"--discovery-token-ca-cert-hash {h}" for h in self.ca_hashes]
        if self.control_plane:
            parts.append("--control-plane")
            if self.certificate_key:
                parts.append("--certificate-key <certificate-key>")
        return " ".join(parts)

    def secrets(self) -> list[str]:
        return [s for s in (self.token, self.certificate_key) if s]


def _joins(text: str) -> list[JoinCommand]:
    """Every `kubeadm join` command in ``text`` (continuation backslashes joined)."""
    flat = re.sub(r"\\\s*\n\s*", " ", text)
    out = []
    for line in flat.splitlines():
        idx = line.find("kubeadm join ")
        if idx < 0:
            continue
        try:
            words = shlex.split(line[idx:])
        except ValueError:
            words = line[idx:].split()
        endpoint, token, hashes, cp, key = "", "", [], False, None
        it = iter(range(2, len(words)))
        for i in it:
            w = words[i]
            if w == "--token" and i + 1 < len(words):
                token = words[i + 1]
                next(it, None)
            elif w == "--discovery-token-ca-cert-hash" and i + 1 < len(words):
                hashes.append(words[i + 1])
                next(it, None)
            elif w == "--certificate-key" and i + 1 < len(words):
                key = words[i + 1]
                next(it, None)
            elif w == "--control-plane":
                cp = True
            elif not w.startswith("-") and not endpoint:
                endpoint = w
        if endpoint and token:
            out.append(JoinCommand(endpoint, token, hashes, cp, key))
    return out


@dataclass
class InitOutput:
    succeeded: bool
    joins: list[JoinCommand] = field(default_factory=list)
    certificate_key: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def worker_join(self) -> JoinCommand | None:
        return next((j for j in self.joins if not j.control_plane), None)

    @property
    def control_plane_join(self) -> JoinCommand | None:
        return next((j for j in self.joins if j.control_plane), None)


def parse_init(text: str) -> InitOutput:
    """`kubeadm init` stdout: success line, join commands, the certificate key (with --upload-certs)."""
    ok = "Your Kubernetes control-plane has initialized successfully!" in text
    joins = _joins(text)
    key = next((j.certificate_key for j in joins if j.certificate_key), None)
    if key is None:
        m = re.search(r"Using certificate key:\s*\n?\s*([0-9a-f]{64})", text)
        key = m.group(1) if m else None
    return InitOutput(ok, joins, key, error_lines(text))


def error_lines(text: str) -> list[str]:
    """kubeadm's fatal lines: ``error execution phase …`` and preflight ``[ERROR …]``."""
    return [ln.strip() for ln in text.splitlines() if ln.lstrip().startswith(("error execution phase", "[ERROR"))]


def parse_token_create(text: str) -> JoinCommand | str | None:
    """`kubeadm token create` prints a token; with --print-join-command a join command."""
    joins = _joins(text)
    if joins:
        return joins[0]
    m = TOKEN.search(text)
    return m.group(1) if m else None


def parse_upload_certs(text: str) -> str | None:
    """`kubeadm init phase upload-certs --upload-certs`: the key is the last line (as Kubespray reads it)."""
    m = re.search(r"Using certificate key:\s*\n?\s*([0-9a-f]{64})", text)
    if m:
        return m.group(1)
    for line in reversed(text.strip().splitlines()):
        if CERT_KEY.fullmatch(line.strip()):
            return line.strip()
    return None


@dataclass
class PreflightItem:
    level: str  # ERROR | WARNING
    name: str
    message: str


_PREFLIGHT = re.compile(r"\[(ERROR|WARNING) ([^\]]+)\]:\s*(.*)")


def parse_preflight(text: str) -> list[PreflightItem]:
    """`[ERROR Name]: msg` / `[WARNING Name]: msg` lines of kubeadm's preflight (init, join, phase)."""
    out = []
    for line in text.splitlines():
        m = _PREFLIGHT.search(line)
        if m:
            out.append(PreflightItem(m.group(1), m.group(2).strip(), m.group(3).strip()))
    return out


@dataclass
class CertExpiry:
    name: str
    expires: str
    residual: str
    authority: str
    externally_managed: bool
    is_ca: bool


_ROW = re.compile(r"^(\S+)\s+(\w{3} \d{2}, \d{4} \d{2}:\d{2} \w+)\s+(\S+)\s+(.*?)\s{2,}(yes|no)\s*$")


def residual_days(text: str) -> float | None:
    """kubeadm's residual time ("364d", "9y", "23h", "<invalid>") in days."""
    m = re.fullmatch(r"(\d+)([ydhm])", text.strip())
    if not m:
        return None
    n = int(m.group(1))
    return {"y": 365.0 * n, "d": float(n), "h": n / 24, "m": n / 1440}[m.group(2)]


def parse_check_expiration(text: str) -> list[CertExpiry]:
    """`kubeadm certs check-expiration`: the certificate table and the CA table."""
    out: list[CertExpiry] = []
    section = ""
    for line in text.splitlines():
        if line.startswith("CERTIFICATE AUTHORITY"):
            section = "ca"
            continue
        if line.startswith("CERTIFICATE "):
            section = "cert"
            continue
        if not section or not line.strip():
            continue
        m = _ROW.match(line.rstrip())
        if m:
            out.append(CertExpiry(m.group(1), m.group(2), m.group(3), m.group(4).strip(), m.group(5) == "yes",
                                  section == "ca"))
        else:  # the CA table has no authority column
            m2 = re.match(r"^(\S+)\s+(\w{3} \d{2}, \d{4} \d{2}:\d{2} \w+)\s+(\S+)\s+(yes|no)\s*$", line.rstrip())
            if m2:
                out.append(CertExpiry(m2.group(1), m2.group(2), m2.group(3), "", m2.group(4) == "yes",
                                      section == "ca"))
    return out
