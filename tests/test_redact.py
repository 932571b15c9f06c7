"""Redaction happens before anything is recorded (fixture sources: fixtures/redact/PROVENANCE.md)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from runbooks_lib.evidence import Recorder, cap_text, load_records
from runbooks_lib.redact import MASK, Redactor

TOKEN = "dt63lv.vas53zh1hhurw1qz"
CERT_KEY = "9555b74008f24687eb964bd90a164ecb5760a89481d9c55a77c129b7db438168"


@pytest.mark.written_fixture
def test_kubeadm_init_output(fixtures: Path) -> None:
    text = (fixtures / "redact" / "kubeadm-init.txt").read_text()
    assert TOKEN in text and CERT_KEY in text
    out = Redactor().redact(text)
    assert TOKEN not in out
    assert CERT_KEY not in out
    # the non-secret parts stay readable
    assert "--discovery-token-ca-cert-hash sha256:041af3cde7a1" in out
    assert "kubeadm join 192.168.207.131:6443 --token " + MASK in out


@pytest.mark.written_fixture
def test_kubeconfig_credentials(fixtures: Path) -> None:
    text = (fixtures / "redact" / "kubeconfig.yaml").read_text()
    out = Redactor().redact(text)
    assert "client-key-data: " + MASK in out
    assert "eyJhbGciOiJSUzI1NiIs" not in out
    assert "server: https://10.10.1.21:6443" in out  # not a secret


def test_pem_private_key_and_bearer() -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    body = pem.splitlines()[1]
    out = Redactor().redact(f"key follows\n{pem}\ncurl -H 'Authorization: Bearer abc.def.ghi-123456789'")
    assert body not in out
    assert "BEGIN PRIVATE " + "KEY" in out and "abc.def.ghi" not in out


@pytest.mark.written_fixture
def test_secret_object_data_masked(fixtures: Path) -> None:
    obj = json.loads((fixtures / "redact" / "secret.json").read_text())
    out = Redactor().redact_obj(obj)
    assert isinstance(out, dict)
    assert set(out["data"].values()) == {MASK}
    assert out["metadata"]["name"] == "bootstrap-token-dt63lv"


def test_marked_values_and_passwords() -> None:
    r = Redactor(["hunter2-very-secret"])
    out = r.redact("mysql -u root --password=abc123 ; echo hunter2-very-secret; "
                   "https://user:p4ss@example.invalid/x")
    assert "hunter2-very-secret" not in out and "abc123" not in out and "p4ss" not in out


def test_recorder_redacts_before_writing(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "ev.jsonl", Redactor())
    rec.record(kind="command", target="cp1", command=f"kubeadm token create {TOKEN}", exit_code=0,
               stdout=f"kubeadm join 1.2.3.4:6443 --token {TOKEN}")
    raw = (tmp_path / "ev.jsonl").read_text()
    assert TOKEN not in raw
    assert load_records(tmp_path / "ev.jsonl")[0]["target"] == "cp1"


def test_cap_keeps_head_and_tail() -> None:
    text = "HEAD" + "x" * 100_000 + "TAIL"
    out = cap_text(text, 1000)
    assert out.startswith("HEAD") and out.endswith("TAIL")
    assert "bytes omitted" in out and len(out) < 1200
    assert cap_text("short", 1000) == "short"


# ------------------------------------------------------------------ node files (issue 18.1)
# written from the formats' documentation: containerd's registry auth table (docs/cri/registry.md,
# containerd 1.6/1.7), mount.cifs(8) options, apt sources.list(5) URIs; see fixtures/redact/PROVENANCE.md

@pytest.mark.written_fixture
def test_node_file_credentials_masked(fixtures: Path) -> None:
    text = (fixtures / "redact" / "node-files.txt").read_text()
    out = Redactor().redact(text)
    for secret in ("Reg-P@ss w0rd,1", "dXNlcjpSZWctQXV0aC1wYXNz", "eyJhbGciOiJIUzI1NiJ9.idtoken",
                   "Cifs-S3cret!", "Cifs-alias-pw", "Apt:P@ss", "yum-Pa55", "yum-url-pw"):
        assert secret not in out, secret
    # the evidence around them stays readable
    assert 'password = "' + MASK + '"' in out and 'identitytoken = "' + MASK + '"' in out
    assert "username=ops,password=" + MASK + ",uid=0" in out
    assert "credentials=/root/.smbcredentials" in out      # a path, not a secret: the file is never read
    assert "https://ops:" + MASK + "@pkgs.example.invalid/core:/stable:/v1.30/deb/" in out
    assert 'auth = ""' in out and 'username = "ops"' in out


def test_flags_and_booleans_are_evidence_not_secrets() -> None:
    text = ("etcd --client-cert-auth=true --peer-client-cert-auth=true --anonymous-auth=false "
            "--authorization-mode=Node,RBAC --token-auth-file=/etc/kubernetes/tokens.csv\n"
            "auth: true\nsecret:\n  secretName: etcd-certs\n")
    assert Redactor().redact(text) == text


def test_url_password_with_at_sign_masked_whole() -> None:
    out = Redactor().redact("deb https://alice:Pa55@w0rd@apt.example.invalid/debian bookworm main")
    assert out == f"deb https://alice:{MASK}@apt.example.invalid/debian bookworm main"


def test_gather_records_file_contents_decoded_and_redacted(tmp_path: Path) -> None:
    """The composite fact script reads files base64-encoded; the evidence shows them decoded and
    redacted (with size and digest), never the base64 the redactor cannot see into."""
    from runbooks_lib.facts import files, script
    from runbooks_lib.transport.local import LocalTransport

    fstab = tmp_path / "fstab"
    fstab.write_text("//srv/share /mnt cifs username=ops,password=Cifs-S3cret-77,uid=0 0 0\n")
    rec = Recorder(tmp_path / "ev.jsonl", Redactor())
    got = script.gather(LocalTransport(recorder=rec), {"files": files.command([str(fstab)])})
    assert files.parse(got["files"].stdout)[str(fstab)] == fstab.read_text()   # the facts keep the content
    raw = (tmp_path / "ev.jsonl").read_text()
    encoded = base64.b64encode(fstab.read_bytes()).decode()
    assert "Cifs-S3cret-77" not in raw and encoded not in raw and encoded[:24] not in raw
    assert f"@@file {fstab} (" in raw and "password=" + MASK in raw


def test_pass_count_is_evidence_cifs_pass_option_is_secret() -> None:
    """``pass=`` is mount.cifs's password only as a mount option; a count stays (redact secrets, not evidence)."""
    r = Redactor()
    counts = "PLAY RECAP: pass=17 fail=0 skip=2\nchecks: pass=17,drift=3,fail=0\nsummary pass=4, fail=1"
    assert r.redact(counts) == counts
    for line, secret in (("mount -o user=ops,pass=Cifs-alias-pw //srv/a /mnt/a", "Cifs-alias-pw"),
                         ("opts='uid=0,username=ops,pass=Opt-pw-9'", "Opt-pw-9"),
                         ("//srv/b /mnt/b cifs pass=Fstab-pw-3 0 0", "Fstab-pw-3"),
                         ("mount -t cifs -o pass=Cmd-pw-4 //srv/c /mnt/c", "Cmd-pw-4")):
        out = r.redact(line)
        assert secret not in out and "pass=" + MASK in out, line
