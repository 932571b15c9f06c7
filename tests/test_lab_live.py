"""The lab for real: podman nodes with systemd, sshd, sudo, etcd over TLS; down leaves nothing.

Uses its own lab name (``labt``) so the default lab ``lab`` that other tests use is left alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from runbooks_lib.evidence import Recorder
from runbooks_lib.lab import LabState, apidouble, down, is_up, status, up
from runbooks_lib.lab.engine import Podman
from runbooks_lib.lab.lab import state_dir
from runbooks_lib.run import Run
from runbooks_lib.transport import SSHTransport, TargetUnreachable

pytestmark = pytest.mark.lab
NAME = "labt"


def _lab_possible() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root"
    for tool in ("podman", "debootstrap"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    return None


@pytest.fixture(scope="module")
def lab() -> Iterator[LabState]:
    why = _lab_possible()
    if why:
        if os.environ.get("RUNBOOKS_REQUIRE_LAB"):
            pytest.fail(f"RUNBOOKS_REQUIRE_LAB is set but {why}")
        pytest.skip(why)
    down(NAME)  # from nothing
    state = up(NAME, nodes=3)
    yield state
    if is_up(NAME) or state_dir(NAME).exists():
        down(NAME)


def _params_file(state: LabState, tmp_path: Path) -> Path:
    f = tmp_path / "labt.yaml"
    f.write_text(f"cluster_name: {NAME}\ninventory: {state.inventory}\nssh:\n  known_hosts: {state.known_hosts}\n"
                 "  connect_timeout: 5\n  command_timeout: 60\n")
    return f


def test_up_from_nothing_writes_state(lab: LabState) -> None:
    assert [n.hostname for n in lab.nodes] == ["labt-cp1", "labt-w1", "labt-w2"]
    assert lab.nodes[0].roles == ["control-plane", "etcd"] and lab.nodes[2].roles == ["worker"]
    assert oct(lab.key.stat().st_mode & 0o777) == "0o600"
    assert lab.inventory.exists() and lab.known_hosts.exists() and (lab.dir / "state.json").exists()
    st = status(NAME)
    assert st.up and {r["container"] for r in st.nodes} == {"running"}
    ps = json.loads(Podman(lab.dir)("ps", "--filter", f"label=runbooks.lab={NAME}", "--format", "json").stdout)
    assert {c["Names"][0] for c in ps} == {n.hostname for n in lab.nodes}
    assert lab.etcd_keys >= 300


def test_ssh_through_inventory_as_sudo_user(lab: LabState, tmp_path: Path) -> None:
    run = Run.start("lab-test", str(_params_file(lab, tmp_path)), [], str(tmp_path / "run"))
    assert run.params.is_lab and {h.user for h in run.params.hosts} == {"runbooks"}
    fleet = run.fleet()
    try:
        plain = fleet.run("id -un; hostname; sudo -n true && echo sudo-ok", sudo=False, timeout=30)
        root = fleet.run("id -un", timeout=30)
    finally:
        fleet.close()
    for n in lab.nodes:
        out = plain[n.hostname].value
        assert out is not None and out.ok, plain[n.hostname].error
        assert out.stdout.split() == ["runbooks", n.hostname, "sudo-ok"]
        assert root[n.hostname].value is not None and root[n.hostname].value.stdout.strip() == "root"
    cmds = [r.command for r in run.recorder.records]
    assert any("sudo-ok" in c for c in cmds)  # through the evidence recorder


def test_wrong_or_unknown_host_key_is_refused(lab: LabState, tmp_path: Path) -> None:
    cp = lab.control_plane
    fake = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"{cp.ip} {fake}\n")
    t = SSHTransport(cp.hostname, cp.ip, user="runbooks", key=lab.key, known_hosts=wrong, connect_timeout=5,
                     recorder=Recorder())
    with pytest.raises(TargetUnreachable, match="host key mismatch"):
        t.run("true")
    empty = tmp_path / "empty"
    empty.write_text("")
    t2 = SSHTransport(cp.hostname, cp.ip, user="runbooks", key=lab.key, known_hosts=empty, connect_timeout=5,
                      recorder=Recorder())
    with pytest.raises(TargetUnreachable):
        t2.run("true")
    good = lab.transport(cp.hostname, recorder=Recorder())
    try:
        assert good.run("true").ok
    finally:
        good.close()


def test_etcdctl_endpoint_health_over_tls(lab: LabState) -> None:
    cp = lab.control_plane
    pki = "/etc/kubernetes/pki/etcd"
    t = lab.transport(cp.hostname, recorder=Recorder())
    try:
        res = t.run(f"ETCDCTL_API=3 etcdctl --cacert {pki}/ca.crt --cert {pki}/healthcheck-client.crt "
                    f"--key {pki}/healthcheck-client.key --endpoints https://{cp.ip}:2379 endpoint health",
                    timeout=30)
        assert res.ok and "is healthy" in res.stdout + res.stderr, res.stderr
        count = t.run(f"ETCDCTL_API=3 etcdctl --cacert {pki}/ca.crt --cert {pki}/healthcheck-client.crt "
                      f"--key {pki}/healthcheck-client.key --endpoints https://127.0.0.1:2379 "
                      "get /registry/ --prefix --keys-only | grep -c ^/registry/", timeout=30)
        assert int(count.stdout.strip()) >= 300
        # client-cert-auth: no client certificate, no answer
        anon = t.run(f"ETCDCTL_API=3 etcdctl --cacert {pki}/ca.crt --endpoints https://{cp.ip}:2379 "
                     "--command-timeout=3s get /registry/namespaces/default", timeout=30)
        assert not anon.ok
        perms = t.run("stat -c '%a %U' /var/lib/etcd /etc/kubernetes/pki/etcd/ca.key", timeout=30)
        assert perms.stdout.split("\n")[:2] == ["700 root", "600 root"]
        active = t.run("systemctl is-active etcd; systemctl is-enabled etcd", timeout=30)
        assert active.stdout.split() == ["active", "enabled"]
    finally:
        t.close()
    if shutil.which("etcdctl"):  # from the host too, with the lab's host-side certs
        p = lab.pki / "etcd"
        res2 = subprocess.run(["etcdctl", "--cacert", str(p / "ca.crt"), "--cert", str(p / "healthcheck-client.crt"),
                               "--key", str(p / "healthcheck-client.key"), "--endpoints", f"https://{cp.ip}:2379",
                               "endpoint", "health"], capture_output=True, text=True, timeout=30,
                              env=dict(os.environ, ETCDCTL_API="3"))
        assert res2.returncode == 0, res2.stderr


def test_node_cannot_touch_host_globals(lab: LabState) -> None:
    host_swappiness = int(Path("/proc/sys/vm/swappiness").read_text())
    host_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    w = lab.nodes[1]
    t = lab.transport(w.hostname, recorder=Recorder())
    try:
        res = t.run(f"sysctl -w vm.swappiness={(host_swappiness + 7) % 100}", timeout=30)
        try:
            assert not res.ok, "a node changed a host-global sysctl"
            assert int(Path("/proc/sys/vm/swappiness").read_text()) == host_swappiness
        finally:
            Path("/proc/sys/vm/swappiness").write_text(str(host_swappiness))  # undo if ever reached
        other = "0" if host_forward == "1" else "1"
        res = t.run(f"sysctl -w net.ipv4.ip_forward={other} && cat /proc/sys/net/ipv4/ip_forward", timeout=30)
        assert res.ok and res.stdout.split()[-1] == other
        assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == host_forward
        res = t.run("sysctl -w net.ipv4.ip_forward=1", timeout=30)
        assert res.ok
        assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == host_forward
        # the clock: setting it to "now" is harmless even if it were allowed; it must be refused
        clock = t.run("date -s @$(date +%s)", timeout=30)
        assert not clock.ok and "not permitted" in clock.stderr
        caps = int(t.run("grep CapBnd /proc/self/status", timeout=30).stdout.split()[1], 16)
        assert not caps >> 25 & 1 and not caps >> 16 & 1  # CAP_SYS_TIME, CAP_SYS_MODULE
        chrony = t.run("ps -o args= -C chronyd", timeout=30)
        assert "-x" in chrony.stdout.split()
        marker = t.read_file("/etc/runbooks-lab")
        assert marker is not None and f"lab={NAME}" in marker
    finally:
        t.close()


def test_stopped_node_is_unreachable_others_answer(lab: LabState) -> None:
    victim = lab.nodes[2]
    Podman(lab.dir)("stop", "-t", "5", victim.container, timeout=60)
    fleet = lab.fleet(recorder=Recorder(), connect_timeout=3)
    try:
        t0 = time.monotonic()
        out = fleet.run("hostname", timeout=20)
        assert time.monotonic() - t0 < 30
    finally:
        fleet.close()
    assert out[victim.hostname].unreachable and out[victim.hostname].value is None
    for n in lab.nodes[:2]:
        assert out[n.hostname].ok and out[n.hostname].value is not None
        assert out[n.hostname].value.stdout.strip() == n.hostname
    assert not is_up(NAME)
    again = up(NAME, nodes=3)  # resumes: starts the stopped node, same host keys
    assert is_up(NAME) and again.subnet == lab.subnet


def test_ssh_bulk_stdin_and_remote_timeout_kill(lab: LabState) -> None:
    """Large stdin goes through in bulk; an overrunning command is killed on the node, sudo included."""
    node = lab.nodes[0].hostname
    t = lab.transport(node)
    assert t.user != "root"  # the sudo path
    payload = "x" * 2_000_000
    t0 = time.monotonic()
    res = t.run("wc -c", stdin=payload)
    assert res.ok and res.stdout.strip() == "2000000"
    assert time.monotonic() - t0 < 10
    res = t.run("sleep 47; echo survived", timeout=2)
    assert res.timed_out and res.exit_code == 124 and "survived" not in res.stdout
    left = t.run("pgrep -x sleep -a || true", timeout=10)
    assert "sleep 47" not in left.stdout, "the timed-out command is still running on the node"


def test_ssh_socket_has_nagle_off(lab: LabState) -> None:
    """Each command opens a channel; with Nagle on, that small packet waits ~40 ms for a delayed ACK."""
    import socket

    t = lab.transport(lab.nodes[0].hostname)
    assert t.run("true").ok
    sock = t._connection().client.get_transport().sock  # type: ignore[union-attr]
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_down_leaves_nothing(lab: LabState) -> None:
    podman = Podman(lab.dir)
    inspect = json.loads(podman("inspect", *[n.container for n in lab.nodes]).stdout)
    ids = [c["Id"] for c in inspect]
    sandboxes = [c["NetworkSettings"]["SandboxKey"] for c in inspect]
    assert all(sandboxes)
    double_pid = apidouble.running_pid(lab.dir)
    assert double_pid is not None and lab.kubeconfig.is_file()
    down(NAME)
    cmdline = Path(f"/proc/{double_pid}/cmdline")
    assert not cmdline.exists() or apidouble.MODULE.encode() not in cmdline.read_bytes()  # the API double is gone
    assert not state_dir(NAME).exists()
    podman = Podman()
    names = podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert not [n for n in names if n.startswith(f"{NAME}-")]
    assert f"runbooks-{NAME}" not in podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    for sb in sandboxes:
        assert Path(sb).name not in netns and not Path(sb).exists()
    deadline = time.monotonic() + 10
    while True:  # conmon exits with its container; allow a moment for the reaper
        procs = subprocess.run(["ps", "-eo", "stat=,args="], capture_output=True, text=True, timeout=10).stdout
        left = [line for line in procs.splitlines() if any(i in line for i in ids)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not left, left
    assert not is_up(NAME)
