"""Redaction of secrets from any text before it is recorded or displayed.

Patterns cover what a Kubernetes operator's commands print: kubeadm bootstrap tokens,
``--certificate-key`` values, PEM private keys, bearer tokens, kubeconfig credentials,
Secret ``data`` values and passwords. Values the parameters mark secret are added at run
time with :meth:`Redactor.add_secret` and replaced wherever they appear.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

MASK = "***REDACTED***"

# (pattern, replacement). Replacements keep the non-secret prefix so the evidence stays readable.
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(
            r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(-----END \1PRIVATE KEY-----|\Z)",
            re.S,
        ),
        f"-----BEGIN \\1PRIVATE KEY-----{MASK}-----END \\1PRIVATE KEY-----",
    ),
    # kubeadm bootstrap token: [a-z0-9]{6}.[a-z0-9]{16}
    (re.compile(r"(?<![a-z0-9])[a-z0-9]{6}\.[a-z0-9]{16}(?![a-z0-9])"), MASK),
    # --certificate-key <hex> / --certificate-key=<hex>, and kubeadm's "Using certificate key:\n<hex>"
    (re.compile(r"(--certificate-key[ =]+)\S+"), rf"\g<1>{MASK}"),
    (re.compile(r"(certificate key:\s*)[0-9a-f]{64}", re.I), rf"\g<1>{MASK}"),
    (re.compile(r"(?i)(authorization:\s*bearer\s+)\S+"), rf"\g<1>{MASK}"),
    (re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9\-_.~+/]{16,}=*"), rf"\g<1>{MASK}"),
    (re.compile(r"(?i)(--(?:token|password|passwd)[ =]+)\S+"), rf"\g<1>{MASK}"),
    # user:password@host in URLs (an apt/yum source, a proxy); the last "@" before the path ends it
    (re.compile(r"(://[^/\s:@]+:)[^\s/]*(@)"), rf"\g<1>{MASK}\g<2>"),
]

# key = value credentials (YAML, JSON, TOML, INI, mount options): kubeconfig token / client-key-data,
# containerd registry password / auth / identitytoken, CIFS password=, *_password, *_token ...
# A key is a whole word (``--client-cert-auth=true`` is a flag, not a credential) and booleans stay.
_KEY_VALUE = re.compile(
    r"""(?im)(?<![\w.-])(["']?(?:[\w-]*[_-])?(?:token|identitytoken|client-key-data|client_key_data|"""
    r"""password|passwd|secret|auth|registrytoken)["']?[ \t]*[:=][ \t]*)"""
    r"""(?!(?:true|false|null|none|yes|no)\b["']?(?:[\s,;}\]]|$))"""
    r"""(?:"([^"\n]+)"|'([^'\n]+)'|([^\s"',;}\]]+))"""
)

# mount.cifs(8)'s short ``pass=`` is a secret only as a mount option: in a comma-separated option
# list that also names the user, or on a cifs line (fstab, ``mount -t cifs``). ``pass=17`` in a test
# or benchmark summary is a count, and stays.
_CIFS_PASS = re.compile(r"(?i)(?<![^\s,'\"])(pass=)([^\s,'\"]+)")
_CIFS_LINE = re.compile(r"(?i)(?<![\w.-])cifs(?![\w.-])")
_USER_OPTION = re.compile(r"(?i)(?:^|,)user(?:name)?=")


def _mask_cifs_pass(text: str) -> str:
    def in_token(token: str) -> str:
        return _CIFS_PASS.sub(rf"\g<1>{MASK}", token) if _USER_OPTION.search(token.strip("'\"")) else token

    lines = text.split("\n")
    for i, line in enumerate(lines):
        if "pass=" not in line.lower():
            continue
        if _CIFS_LINE.search(line):
            lines[i] = _CIFS_PASS.sub(rf"\g<1>{MASK}", line)
        else:
            lines[i] = re.sub(r"\S*,\S*", lambda m: in_token(m.group(0)), line)
    return "\n".join(lines)


def _mask_key_value(m: re.Match[str]) -> str:
    if m.group(2) is not None:
        return f'{m.group(1)}"{MASK}"'
    if m.group(3) is not None:
        return f"{m.group(1)}'{MASK}'"
    return f"{m.group(1)}{MASK}"


class Redactor:
    """Replaces secrets in text; thread-safe; values can be added while a run goes on."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        for value in secrets:
            self.add_secret(value)

    def add_secret(self, value: str | None) -> None:
        """Register a literal value that must never appear in evidence (ignored when short)."""
        if value and len(value) >= 4:
            with self._lock:
                self._values.add(value)

    @property
    def secret_values(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._values)

    def __call__(self, text: str) -> str:
        return self.redact(text)

    def redact(self, text: str) -> str:
        if not text:
            return text
        # literal values first, longest first, so a value containing another is masked whole
        for value in sorted(self.secret_values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, MASK)
        for pattern, repl in _PATTERNS:
            text = pattern.sub(repl, text)
        return _mask_cifs_pass(_KEY_VALUE.sub(_mask_key_value, text))

    def redact_obj(self, obj: object) -> object:
        """Redact every string in a JSON-like structure; Secret ``data``/``stringData`` masked whole."""
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            is_secret = obj.get("kind") == "Secret"
            out: dict[object, object] = {}
            for key, val in obj.items():
                if is_secret and key in ("data", "stringData") and isinstance(val, dict):
                    out[key] = {k: MASK for k in val}
                else:
                    out[key] = self.redact_obj(val)
            return out
        if isinstance(obj, (list, tuple)):
            return [self.redact_obj(v) for v in obj]
        return obj


_default = Redactor()


def default_redactor() -> Redactor:
    """The process-wide redactor that the recorder and displays share."""
    return _default
