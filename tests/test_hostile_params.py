"""Parameter files, inventories and ``--set`` values as a hostile operator writes them (issue 18).

Every case must end in a :class:`ParamsError` (the CLI's exit 2) that names the parameter file and
every bad field, and never shows a planted secret; through the real ``runbooks run`` it must exit 2
with nothing contacted (the hosts point at a loopback listener that counts connections) and no
report written. ``CASES`` is the table the issue's note counts (cases tried / held); the module runs
unchanged against an older ``runbooks_lib`` on ``PYTHONPATH`` to count what held before.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runbooks_lib.params import ParamsError, load_params

HOST = "- {name: cp1, address: 127.0.0.1, port: PORT, key: id_key, roles: [control-plane, etcd]}"
BASE = f"cluster_name: prod\nssh: {{known_hosts: kh, connect_timeout: 3}}\nhosts:\n  {HOST}\n"
INV = "cluster_name: prod\nssh: {known_hosts: kh, connect_timeout: 3}\ninventory: inv.ini\n"
TOKEN = "abcdef.0123456789abcdef"


@dataclass(frozen=True)
class Case:
    """``files`` maps a name under tmp to its content (text, bytes, or None for a directory);
    ``p.yaml`` is the parameter file. ``PORT`` in text is the loopback listener's port."""

    id: str
    files: dict[str, str | bytes | None]
    fields: tuple[str, ...]  # every one must be named ("<file>": the file itself)
    secrets: tuple[str, ...] = ()  # none may appear in the message
    sets: tuple[str, ...] = ()
    home_known_hosts: bool = True  # HOME has ~/.ssh/known_hosts
    cli: bool = False  # also run through the real CLI
    mentions: tuple[str, ...] = field(default=())  # more text the message must carry


def _p(text: str, **more: str | bytes | None) -> dict[str, str | bytes | None]:
    return {"p.yaml": text, **more}


CASES = [
    # --- the parameter file itself
    Case("binary-file", _p(b"\x7fELF\x02\x01\x01\x00\x00\x00"), ("<file>",), cli=True),
    Case("not-utf8", _p(b"cluster_name: prod\n# caf\xe9\n"), ("<file>",), mentions=("line 2",)),
    Case("directory", {"p.yaml": None}, ("<file>",)),
    Case("missing", {}, ("<file>",)),
    Case("too-large", _p("# x\n" * 300_000), ("<file>",)),
    Case("nested-too-deep", _p("cluster_name: prod\nx: " + "[" * 20_000), ("<file>",)),
    Case("top-level-list", _p("- cluster_name: prod\n"), ("<root>",)),
    Case("python-tag", _p("cluster_name: !!python/object/apply:os.system ['echo PWNED']\n"), ("<file>",)),
    Case("duplicate-key-mode", _p(BASE + "mode: plan\nmode: apply\n"), ("<file>",), mentions=("mode",)),
    Case("yaml-error-on-token-line", _p(BASE + f"kubeadm:\n  token: {TOKEN}: oops\n"), ("<file>",),
         (TOKEN,), cli=True, mentions=("line 6",)),
    Case("yaml-error-after-cert-key", _p(BASE + 'kubeadm:\n  certificate_key: "PLANTED-cert-0e8f\n'),
         ("<file>",), ("PLANTED-cert-0e8f",)),
    Case("alias-bomb", _p(BASE + "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                          "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                          "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nonly_hosts: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"),
         ("a", "only_hosts.0")),
    # --- secret values never echoed (type errors quoted pydantic's input)
    Case("hex-token", _p(BASE + "kubeadm:\n  token: 0xdeadbeef42\n"), ("kubeadm.token",),
         ("956397711170", "deadbeef42"), cli=True),
    Case("numeric-cert-key", _p(BASE + "kubeadm:\n  certificate_key: 12345678901234567890\n"),
         ("kubeadm.certificate_key",), ("12345678901234567890",)),
    Case("numeric-named-secret", _p(BASE + "secrets:\n  registry: 8675309123\n"), ("secrets.registry",),
         ("8675309123",)),
    Case("float-named-secret", _p(BASE + "secrets:\n  registry: 3.14159265358\n"), ("secrets.registry",),
         ("3.14159265358",)),
    Case("secrets-not-a-mapping", _p(BASE + "secrets: [PLANTED-list-secret]\n"), ("secrets",),
         ("PLANTED-list-secret",)),
    # --- fields that name other things
    Case("etcd-node-unknown", _p(BASE + "etcd_backup: {node: ghost}\n"), ("etcd_backup.node",), cli=True),
    Case("etcd-copy-unknown", _p(BASE + "etcd_backup: {copy_to_host: ghost}\n"), ("etcd_backup.copy_to_host",)),
    Case("bench-host-unknown", _p(BASE + "kube_proxy_modes: {bench_host: ghost}\n"),
         ("kube_proxy_modes.bench_host",)),
    Case("only-hosts-unknown", _p(BASE + "only_hosts: [ghost]\n"), ("only_hosts",)),
    Case("duplicate-host", _p(BASE + f"  {HOST}\n"), ("hosts",)),
    Case("key-missing", _p(BASE.replace("id_key", "no_such_key")), ("hosts.cp1.key",), cli=True),
    Case("key-is-public", _p(BASE.replace("id_key", "id_key.pub"), **{"id_key.pub": "ssh-ed25519 AAAA"}),
         ("hosts.cp1.key",)),
    Case("known-hosts-missing", _p(BASE.replace("known_hosts: kh", "known_hosts: nokh")), ("ssh.known_hosts",),
         cli=True),
    Case("known-hosts-directory", _p(BASE.replace("known_hosts: kh", "known_hosts: khdir"), khdir=None),
         ("ssh.known_hosts",)),
    Case("default-known-hosts-missing", _p(BASE.replace("known_hosts: kh, ", "")), ("ssh.known_hosts",),
         home_known_hosts=False),
    # --- host addresses and other values that end up on a command line
    Case("address-injection", _p(BASE.replace("127.0.0.1", "'10.0.0.1;rm -rf /'")), ("hosts.cp1.address",),
         cli=True),
    Case("address-spaces", _p(BASE.replace("127.0.0.1", "'10.0.0.1 10.0.0.2'")), ("hosts.cp1.address",)),
    Case("address-empty", _p(BASE.replace("127.0.0.1", "''")), ("hosts.cp1.address",)),
    Case("address-bad-ipv4", _p(BASE.replace("127.0.0.1", "999.0.0.1")), ("hosts.cp1.address",)),
    Case("host-name-injection", _p(BASE.replace("name: cp1", "name: 'cp1 && reboot'")), ("hosts.0.name",)),
    Case("user-injection", _p(BASE.replace("port: PORT", "port: PORT, user: 'root;id'")), ("hosts.cp1.user",)),
    Case("port-zero", _p(BASE.replace("port: PORT", "port: 0")), ("hosts.cp1.port",)),
    Case("cluster-name-injection", _p(BASE.replace("prod", "'Prod;rm'")), ("cluster_name",)),
    Case("cluster-name-too-long", _p(BASE.replace("prod", "p" * 100_000)), ("cluster_name",)),
    Case("version-bogus", _p(BASE + "kubernetes_version: latest\n"), ("kubernetes_version",)),
    Case("typo-key", _p(BASE + "kubernetes_verison: '1.30'\n"), ("kubernetes_verison",),
         mentions=("did you mean 'kubernetes_version'",)),
    Case("wrong-confirm-apply", _p(BASE + "mode: apply\nconfirm: lab\n"), ("confirm",), cli=True,
         mentions=("confirm 'lab' does not match cluster_name 'prod'",)),
    Case("wrong-confirm-plan", _p(BASE + "confirm: staging\n"), ("confirm",)),
    Case("every-bad-field", _p(BASE.replace("127.0.0.1", "'a b'").replace("port: PORT", "port: 0")
                               .replace("id_key", "no_such_key")
                               + "kubernetes_verison: '1.30'\nconfirm: lab\netcd_backup: {node: ghost}\n"),
         ("hosts.cp1.address", "hosts.cp1.port", "hosts.cp1.key", "kubernetes_verison", "confirm",
          "etcd_backup.node"), cli=True),
    # --- inventories
    Case("inventory-and-hosts", _p(BASE + "inventory: inv.ini\n", **{"inv.ini": "[k8s]\nn1\n"}), ("inventory",)),
    Case("inventory-missing", _p(INV), ("inventory",)),
    Case("inventory-binary", _p(INV, **{"inv.ini": b"\x00\x01\x02\x03"}), ("inventory",)),
    Case("inventory-not-utf8", _p(INV, **{"inv.ini": b"[k8s]\nn\xe9ud1 ansible_host=10.0.0.1\n"}), ("inventory",)),
    Case("inventory-directory", _p(INV, **{"inv.ini": None}), ("inventory",)),
    Case("inventory-host-password", _p(INV, **{"inv.ini": "[k8s]\nn1 ansible_host=127.0.0.1 ansible_port=PORT "
                                                          "ansible_ssh_pass=PLANTED-ssh-pass\n"}),
         ("inventory",), ("PLANTED-ssh-pass",), cli=True, mentions=("ansible_ssh_pass", "SSH keys only")),
    Case("inventory-all-vars-password", _p(INV, **{"inv.ini": "[k8s]\nn1 ansible_host=10.0.0.1\n"
                                                              "[all:vars]\nansible_password=PLANTED-pw\n"}),
         ("inventory",), ("PLANTED-pw",), mentions=("ansible_password",)),
    Case("inventory-become-pass", _p(INV, **{"inv.ini": "[k8s]\nn1 ansible_host=10.0.0.1\n"
                                                        "[k8s:vars]\nansible_become_pass=PLANTED-become\n"}),
         ("inventory",), ("PLANTED-become",), mentions=("ansible_become_pass",)),
    Case("inventory-yaml-password", _p(INV.replace("inv.ini", "inv.yaml"), **{
        "inv.yaml": "all:\n  hosts:\n    n1: {ansible_host: 10.0.0.1, ansible_password: PLANTED-yaml-pw}\n"}),
         ("inventory",), ("PLANTED-yaml-pw",)),
    Case("inventory-two-addresses", _p(INV, **{"inv.ini": "[a]\nn1 ansible_host=10.0.0.1\n"
                                                          "[b]\nn1 ansible_host=10.0.0.2\n"}),
         ("inventory",), mentions=("10.0.0.1", "10.0.0.2")),
    Case("inventory-address-injection", _p(INV, **{"inv.ini": "[k8s]\nn1 ansible_host='10.0.0.1;reboot'\n"}),
         ("hosts.n1.address",)),
    Case("inventory-all-vars-key-missing", _p(INV, **{
        "inv.ini": "[k8s]\nn1 ansible_host=10.0.0.1\n[all:vars]\nansible_ssh_private_key_file=no_such_key\n"}),
         ("hosts.n1.key",)),
    Case("inventory-port-not-number", _p(INV, **{"inv.ini": "[k8s]\nn1 ansible_port=ssh\n"}), ("inventory",)),
    Case("inventory-local-connection", _p(INV, **{"inv.ini": "[k8s]\nlocalhost ansible_connection=local\n"}),
         ("inventory",)),
    Case("inventory-range-bomb", _p(INV, **{"inv.ini": "[k8s]\nn[0:99999999]\n"}), ("inventory",)),
    Case("inventory-group-cycle", _p(INV, **{"inv.ini": "[a:children]\nb\n[b:children]\na\n[a]\nn1\n"}),
         ("inventory",)),
    Case("inventory-yaml-typo", _p(INV.replace("inv.ini", "inv.yaml"), **{
        "inv.yaml": "all:\n  children:\n    k8s:\n      host:\n        n1:\n"}), ("inventory",)),
    # --- --set values
    Case("set-structured-token", _p(BASE), ("kubeadm",), (TOKEN,),
         sets=(f"kubeadm={{token: {TOKEN}}}",), cli=True),
    Case("set-structured-secrets", _p(BASE), ("secrets",), ("PLANTED-set-secret",),
         sets=("secrets={registry: PLANTED-set-secret}",)),
    Case("set-without-equals", _p(BASE), ("(not shown)",), (TOKEN,), sets=(f"kubeadm.token {TOKEN}",)),
    Case("set-bad-type", _p(BASE), ("ssh.forks",), sets=("ssh.forks=many",)),
    Case("set-into-list", _p(BASE), ("hosts.0.address",), sets=("hosts.0.address=10.0.0.9",)),
    Case("set-grid-item", _p(BASE), ("kube_proxy_modes.grid.1",), sets=("kube_proxy_modes.grid=[10,x]",)),
    Case("set-etcd-node", _p(BASE), ("etcd_backup.node",), sets=("etcd_backup.node=ghost",)),
    Case("set-wrong-confirm", _p(BASE), ("confirm",), sets=("mode=apply", "confirm=staging")),
    Case("set-address-injection", _p(BASE.replace("hosts:\n  " + HOST + "\n", "")),
         ("hosts.cp1.address",), sets=("hosts=[{name: cp1, address: '1.2.3.4 -oProxyCommand=x'}]",)),
]


def materialise(case: Case, tmp: Path, port: int) -> Path:
    """Write the case's files under ``tmp`` (plus a readable key and known_hosts) and a HOME."""
    (tmp / "id_key").write_text("not a key: only checked to exist\n")
    (tmp / "kh").write_text("")
    home = tmp / "home"
    (home / ".ssh").mkdir(parents=True)
    if case.home_known_hosts:
        (home / ".ssh" / "known_hosts").write_text("")
    for name, content in case.files.items():
        path = tmp / name
        if content is None:
            path.mkdir()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content.replace("PORT", str(port)), encoding="utf-8")
    return tmp / "p.yaml"


def problems_of(err: ParamsError) -> list[tuple[str, str]]:
    return list(getattr(err, "problems", [(err.field, err.why)]))


def assert_held(case: Case, text: str, fields: list[str] | None, params: Path) -> None:
    """``fields``: the error's own field list; None (the CLI) looks for ``field:`` in the output."""
    if fields is None:
        fields = [f for f in case.fields if f == "<file>" or f"{f}: " in text]
    missing = [f for f in case.fields if f not in fields]
    assert not missing, f"fields not named: {missing}\n{text}"
    leaked = [s for s in case.secrets if s in text]
    assert not leaked, f"secret shown: {leaked}"
    assert params.name in text, f"the parameter file is not named\n{text}"
    for m in case.mentions:
        assert m in text, f"{m!r} missing\n{text}"
    assert "Traceback" not in text


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A loopback TCP listener standing in for every host: it records each connection."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    seen: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, addr = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            seen.append(f"{addr[0]}:{addr[1]}")
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield srv.getsockname()[1], seen
    stop.set()
    thread.join(timeout=2)
    srv.close()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_load_params_refuses(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = materialise(case, tmp_path, 22)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    started = time.monotonic()
    with pytest.raises(ParamsError) as err:
        load_params(params, list(case.sets))
    assert time.monotonic() - started < 10, "validation must not take long"
    assert_held(case, str(err.value), [f for f, _ in problems_of(err.value)], params)


CLI_CASES = [c for c in CASES if c.cli]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_cli_exits_2_and_contacts_nothing(case: Case, tmp_path: Path, listener: tuple[int, list[str]]) -> None:
    """`runbooks run system-init -p bad.yaml --out TMP`: exit 2, field named, no connection, no report."""
    port, seen = listener
    params = materialise(case, tmp_path, port)
    out = tmp_path / "out"
    argv = [str(Path(sys.executable).parent / "runbooks"), "run", "system-init", "-p", str(params),
            "--out", str(out), "--quiet"]
    for spec in case.sets:
        argv += ["--set", spec]
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        stdout, stderr = proc.communicate()
    text = stdout + stderr
    assert proc.returncode == 2, f"exit {proc.returncode}\n{text[-3000:]}"
    assert_held(case, text, None, params)
    assert seen == [], f"a host was contacted: {seen}"
    assert not list(out.rglob("*.html")) and not list(out.rglob("*.json")), "a report was written"
