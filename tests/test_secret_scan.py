"""Secrets that live in node files never reach any output of `runbooks run system-init`.

A one-node lab (named ``secretscan``) gets three kinds of node-file secret planted — containerd registry
password / auth / identitytoken, a CIFS password in /etc/fstab, credentials in an apt source URL — and
the run gets a secret parameter. Every output (reports, index, terminal, files the run left in /tmp) is
searched for every planted value, plain and inside every base64-looking run.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks_lib.cli import main

pytestmark = [pytest.mark.lab, pytest.mark.slow]
LAB = "secretscan"
NODE = f"{LAB}-cp1"
B64_RUN = re.compile(rb"[A-Za-z0-9+/_-]{16,}={0,2}")
MAX_SCAN_BYTES = 64 * 1024 * 1024


def _value(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(8)}"


PLANTED = {
    "registry password": _value("RegPw"),
    "registry identitytoken": _value("IdTok"),
    "registry auth user": _value("authuser"),
    "registry auth password": _value("AuthPw"),
    "cifs password": _value("CifsPw"),
    "apt url password": _value("AptPw"),
    "param certificate_key": secrets.token_hex(32),
}
AUTH = base64.b64encode(f"{PLANTED['registry auth user']}:{PLANTED['registry auth password']}".encode()).decode()
CONTAINERD = f"""version = 2

[plugins."io.containerd.grpc.v1.cri".registry.configs."registry.example.invalid".auth]
  username = "ops"
  password = "{PLANTED['registry password']}"
  auth = "{AUTH}"
  identitytoken = "{PLANTED['registry identitytoken']}"
"""
FSTAB_LINE = (f"//files.example.invalid/share /mnt/share cifs username=ops,password={PLANTED['cifs password']},"
              "uid=0 0 0")
APT_SOURCE = (f"deb [signed-by=/etc/apt/keyrings/k.gpg] https://ops:{PLANTED['apt url password']}"
              "@pkgs.example.invalid/core:/stable:/v1.30/deb/ /")


def _decoded(run: bytes) -> list[bytes]:
    """``run`` decoded as standard and URL-safe base64 at every alignment (a run may be cut anywhere)."""
    out = []
    for start in range(4):
        part = run[start:].rstrip(b"=")
        part = part[:-1] if len(part) % 4 == 1 else part
        for alt in (None, b"-_"):
            try:
                out.append(base64.b64decode(part + b"=" * (-len(part) % 4), altchars=alt))
            except (binascii.Error, ValueError):
                continue
    return out


def _leaks(data: bytes, values: dict[str, str], depth: int = 2) -> set[str]:
    """Names of the planted values found in ``data``, plain or inside base64 (nested ``depth`` deep)."""
    found = {name for name, v in values.items() if v.encode() in data}
    if depth:
        for m in B64_RUN.finditer(data):
            for dec in _decoded(m.group()):
                found |= _leaks(dec, values, depth - 1)
    return found


def _scan(paths: list[Path], values: dict[str, str]) -> dict[str, set[str]]:
    hits: dict[str, set[str]] = {}
    for p in paths:
        try:
            if not p.is_file() or p.stat().st_size > MAX_SCAN_BYTES:
                continue
            data = p.read_bytes()
        except OSError:  # another process's file that vanished or is not ours to read
            continue
        found = _leaks(data, values)
        if found:
            hits[str(p)] = found
    return hits


def test_scanner_finds_values_plain_and_in_base64() -> None:
    """The scanner itself: plain, base64 (cut at any point), base64 inside base64."""
    v = {"x": "Sekr1t-value-0042"}
    assert _leaks(b"a Sekr1t-value-0042 b", v) == {"x"}
    enc = base64.b64encode(b"prefix text " + v["x"].encode() + b" suffix")
    assert _leaks(b"line " + enc[5:] + b" end", v) == {"x"}
    assert _leaks(base64.b64encode(b"auth = " + base64.b64encode(b"u:" + v["x"].encode())), v) == {"x"}
    assert _leaks(b"***REDACTED*** nothing here", v) == set()


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh one-node lab with the secrets planted in its files; parameters for it."""
    from runbooks_lib.lab import lab

    lab.down(LAB)
    state = lab.up(LAB, nodes=1)
    t = state.transport(NODE)
    for path, text, how in (("/etc/containerd/config.toml", CONTAINERD, ">"), ("/etc/fstab", FSTAB_LINE, ">>"),
                            ("/etc/apt/sources.list.d/kubernetes.list", APT_SOURCE, ">")):
        t.run(f"mkdir -p \"$(dirname {path})\" && cat {how} {shlex.quote(path)}", stdin=text + "\n", check=True,
              record=False)
    params = tmp_path_factory.mktemp("secretscan") / "secretscan.yaml"
    params.write_text(f"cluster_name: {LAB}\ninventory: {state.inventory}\n"
                      f"ssh: {{known_hosts: {state.known_hosts}}}\n")
    yield params
    if not os.environ.get("RUNBOOKS_KEEP_LAB"):
        lab.down(LAB)


def test_no_planted_secret_in_any_output(planted: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    tmp_root = Path("/tmp")
    before = set(_files_under(tmp_root))
    t0 = time.time() - 1
    out = tmp_path / "reports"
    code = main(["run", "system-init", "-p", str(planted), "--out", str(out), "-q",
                 "--set", f"kubeadm.certificate_key={PLANTED['param certificate_key']}"])
    terminal = capfd.readouterr()
    reports = sorted(p for p in out.rglob("*") if p.is_file())
    suffixes = {p.suffix for p in reports}
    assert {".html", ".ipynb", ".json"} <= suffixes and (out / "index.html").exists(), reports
    left = [p for p in _files_under(tmp_root) if p not in before and _recent(p, t0)]
    hits = _scan(reports + left, PLANTED)
    term = _leaks((terminal.out + terminal.err).encode(), PLANTED)
    if term:
        hits["terminal"] = term
    assert hits == {}, f"planted secrets found: {hits}"
    assert code in (0, 1), terminal.out[-2000:]
    # the files were read and are shown decoded and redacted, not dropped from the evidence
    evidence = next(p for p in reports if p.suffix == ".json").read_text()
    assert "password=***REDACTED***" in evidence and "@@file /etc/fstab (" in evidence
    assert "https://ops:***REDACTED***@pkgs.example.invalid" in evidence


def _files_under(root: Path) -> list[Path]:
    """Every file below ``root``; a directory that vanishes during the walk (another process's temp
    dir on a shared machine) is passed over, where ``Path.rglob`` raises FileNotFoundError."""
    return [Path(d) / f for d, _, files in os.walk(root) for f in files]


def _recent(p: Path, since: float) -> bool:
    try:
        return p.is_file() and p.stat().st_mtime >= since
    except OSError:
        return False
