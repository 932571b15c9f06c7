"""SSH material for a lab: the per-lab client key pair and the lab's own known_hosts file."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519


def ensure_keypair(path: Path, comment: str) -> str:
    """Create an ed25519 key pair at ``path`` (private 0600) unless present; the public line."""
    pub = path.with_name(path.name + ".pub")
    if not path.exists():
        key = ed25519.Ed25519PrivateKey.generate()
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                    serialization.NoEncryption())
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(private)
        pub.write_text(f"{public.decode()} {comment}\n")
    path.chmod(0o600)
    return pub.read_text().strip()


def parse_host_pubkeys(text: str) -> list[tuple[str, str]]:
    """(type, base64) of each ``ssh_host_*_key.pub`` line in ``text`` (comments dropped)."""
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and (words[0].startswith("ssh-") or words[0].startswith("ecdsa-")):
            out.append((words[0], words[1]))
    return out


def known_hosts_lines(names: list[str], keys: list[tuple[str, str]]) -> list[str]:
    """known_hosts lines binding every name/address in ``names`` to each host key."""
    pattern = ",".join(names)
    return [f"{pattern} {kind} {b64}" for kind, b64 in keys]
