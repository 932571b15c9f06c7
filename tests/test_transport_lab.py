"""SSH transport against real lab nodes: an interrupted wait stops the command on the node, a node
that dies mid-command is unreachable (named), and the verified host key can be read back.

Uses its own lab (``labx``) and takes it down at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runbooks_lib.evidence import Recorder
from runbooks_lib.lab import LabState, down, is_up, up
from runbooks_lib.lab.engine import Podman
from runbooks_lib.lab.lab import state_dir
from runbooks_lib.transport import SSHTransport, TargetUnreachable, Transport

pytestmark = pytest.mark.lab
NAME = "labx"
CONNECT_S = 3.0


@pytest.fixture(scope="module")
def lab() -> Iterator[LabState]:
    why = "the lab needs root" if os.geteuid() != 0 else next(
        (f"{t} is not installed" for t in ("podman", "debootstrap") if not shutil.which(t)), None)
    if why:
        if os.environ.get("RUNBOOKS_REQUIRE_LAB"):
            pytest.fail(f"RUNBOOKS_REQUIRE_LAB is set but {why}")
        pytest.skip(why)
    down(NAME)
    state = up(NAME, nodes=3)
    yield state
    if is_up(NAME) or state_dir(NAME).exists():
        down(NAME)


@pytest.fixture
def healed(lab: LabState) -> Iterator[LabState]:
    """The lab with every node running again after the test (a test may stop, kill or pause one)."""
    yield lab
    podman = Podman(lab.dir)
    for n in lab.nodes:
        podman("unpause", n.container, check=False, timeout=30)
    up(NAME, nodes=3)


@pytest.fixture
def interrupt_after() -> Iterator[Callable[[float], None]]:
    """Arm a timer whose signal raises KeyboardInterrupt in the main thread (as the runner's interrupt)."""
    old = signal.getsignal(signal.SIGALRM)
    fired: list[float] = []

    def raise_interrupt(signum: int, frame: object) -> None:
        fired.append(time.monotonic())
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, raise_interrupt)
    yield lambda s: signal.setitimer(signal.ITIMER_REAL, s)
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


def _sleeps(t: Transport) -> list[str]:
    return [line for line in t.run("pgrep -x sleep -a || true", timeout=10).stdout.splitlines()
            if "sleep 300" in line]


def _gone_within(t: Transport, seconds: float) -> float | None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if not _sleeps(t):
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


def test_interrupted_ssh_run_stops_the_command_on_the_node(
        lab: LabState, interrupt_after: Callable[[float], None]) -> None:
    rec = Recorder()
    t = lab.transport(lab.nodes[0].hostname, recorder=rec, connect_timeout=CONNECT_S)
    try:
        assert t.user != "root"  # the command runs under sudo: the stop needs it too
        assert t.run("true").ok
        interrupt_after(1.0)
        with pytest.raises(KeyboardInterrupt):
            t.run("sleep 300 & sleep 300; echo survived", timeout=600)
        t_raised = time.monotonic()
        gone = _gone_within(t, 5.0)
        assert gone is not None, f"still running on the node: {_sleeps(t)}"
        print(f"interrupt -> remote sleep gone: {time.monotonic() - t_raised:.3f}s after the raise")
        statuses = [(r.status, r.command[:12]) for r in rec.records]
        assert ("interrupted", "sleep 300 & ") in statuses
        assert any(r.command.startswith("stop command") and r.status == "ok" for r in rec.records)
    finally:
        t.close()


def _interrupt_when(lab: LabState, host: str, path: str, limit_s: float = 60.0) -> list[float]:
    """Raise the interrupt (SIGALRM, see ``interrupt_after``) once ``path`` exists on ``host``, watched over a
    second SSH connection: the command under test creates it when its trap is set, so the interrupt never
    overtakes the trap (a fixed 2 s did on a loaded CI runner). The list gets the moment it fired."""
    fired: list[float] = []
    watcher = lab.transport(host, recorder=Recorder(), connect_timeout=CONNECT_S)

    def watch() -> None:
        deadline = time.monotonic() + limit_s
        try:
            while time.monotonic() < deadline:
                if watcher.run(f"test -e {path}", timeout=10).ok:
                    fired.append(time.monotonic())
                    os.kill(os.getpid(), signal.SIGALRM)
                    return
                time.sleep(0.05)
        finally:
            watcher.close()

    threading.Thread(target=watch, daemon=True).start()
    return fired


def test_interrupted_command_gets_term_to_clean_up_then_kill(
        lab: LabState, interrupt_after: Callable[[float], None]) -> None:
    """The stop is TERM first (a step's handler cleans up, as on its own overrun), KILL 5 s later
    for what ignores it. (``interrupt_after`` installs the handler; the watcher fires it.)"""
    rec = Recorder()
    host = lab.nodes[1].hostname
    t = lab.transport(host, recorder=rec, connect_timeout=CONNECT_S)
    flag, ready = f"/tmp/runbooks-term-cleanup-{os.getpid()}", f"/tmp/runbooks-trap-set-{os.getpid()}"
    try:
        assert t.run(f"rm -f {ready}").ok
        _interrupt_when(lab, host, ready)
        with pytest.raises(KeyboardInterrupt):
            t.run(f"trap 'touch {flag}; exit 1' TERM; touch {ready}; sleep 300 & wait", timeout=600)
        assert t.run(f"test -e {flag} && rm -f {flag} {ready}").ok, "the command's TERM handler did not run"
        assert _gone_within(t, 3.0) is not None
        fired = _interrupt_when(lab, host, ready)
        with pytest.raises(KeyboardInterrupt):
            t.run(f"trap '' TERM; touch {ready}; sleep 300", timeout=600)
        assert fired and 4.5 < time.monotonic() - fired[0] < 12  # TERM ignored: KILL after 5 s (stop limit 10 s)
        t.run(f"rm -f {ready}")
        assert not _sleeps(t)
        stops = [r for r in rec.records if r.command.startswith("stop command")]
        assert len(stops) == 2 and all(r.status == "ok" for r in stops)
    finally:
        t.close()


def test_interrupted_fanout_stops_the_commands_on_every_node(
        lab: LabState, interrupt_after: Callable[[float], None]) -> None:
    rec = Recorder()
    fleet = lab.fleet(recorder=rec, connect_timeout=CONNECT_S)
    try:
        assert all(o.ok for o in fleet.run("true", timeout=10).values())
        interrupt_after(1.5)
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            fleet.run("sleep 300; echo survived", timeout=600)
        assert time.monotonic() - t0 < 8
        assert not [th for th in threading.enumerate() if th.name.startswith("fleet")], "worker threads left"
        left = {name: _sleeps(t) for name, t in fleet.transports.items()}
        assert not any(left.values()), left
        assert sorted(r.target for r in rec.records if r.status == "interrupted") == \
            sorted(n.hostname for n in lab.nodes)
    finally:
        fleet.close()


@pytest.mark.parametrize("how", ["kill", "stop", "sshd"])
def test_node_dying_mid_command_is_unreachable(healed: LabState, how: str) -> None:
    """`podman kill`, `podman stop`, or the connection's sshd killed: unreachable, the host named."""
    victim = healed.nodes[2]
    t = healed.transport(victim.hostname, recorder=Recorder(), connect_timeout=CONNECT_S)
    assert t.run("true").ok
    podman = Podman(healed.dir)

    def die() -> None:
        time.sleep(1.5)
        if how == "sshd":  # the per-connection sshd processes of the lab user; the node stays up
            podman("exec", victim.container, "pkill", "-KILL", "-f", "^sshd: runbooks", timeout=30)
        else:
            podman(how, *(["-t", "2"] if how == "stop" else []), victim.container, timeout=60)

    killer = threading.Thread(target=die)
    killer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(TargetUnreachable) as err:
            t.run("sleep 30; echo finished", timeout=60)
        took = time.monotonic() - t0 - 1.5
    finally:
        killer.join(timeout=90)
        t.close()
    assert err.value.target == victim.hostname and victim.hostname in str(err.value)
    assert "during the command" in err.value.reason
    assert took < CONNECT_S * 2 + 2, f"took {took:.1f}s to notice"
    print(f"{how}: reported unreachable {took:.2f}s after the kill started: {err.value}")


def test_frozen_node_is_unreachable_within_the_connect_timeout(healed: LabState) -> None:
    """A node that stops answering without closing the connection (paused) is found out by the
    silence check, not after the command's whole timeout."""
    victim = healed.nodes[2]
    t = healed.transport(victim.hostname, recorder=Recorder(), connect_timeout=CONNECT_S)
    assert t.run("true").ok
    threading.Timer(1.0, lambda: Podman(healed.dir)("pause", victim.container, timeout=60)).start()
    t0 = time.monotonic()
    try:
        with pytest.raises(TargetUnreachable, match="silent"):
            t.run("sleep 30; echo finished", timeout=60)
    finally:
        t.close()
    assert time.monotonic() - t0 < 1.0 + CONNECT_S * 2 + 2


def test_fanout_reports_the_dead_node_and_the_others_answer(healed: LabState) -> None:
    victim = healed.nodes[2]
    fleet = healed.fleet(recorder=Recorder(), connect_timeout=CONNECT_S)
    try:
        assert all(o.ok for o in fleet.run("true", timeout=10).values())
        threading.Timer(1.5, lambda: Podman(healed.dir)("kill", victim.container, timeout=60)).start()
        t0 = time.monotonic()
        out = fleet.run("sleep 4; hostname", timeout=60)
        assert time.monotonic() - t0 < 10
    finally:
        fleet.close()
    dead = out[victim.hostname]
    assert dead.unreachable and dead.value is None and victim.hostname in (dead.error or "")
    for n in healed.nodes[:2]:
        o = out[n.hostname]
        assert o.ok and o.value is not None and o.value.stdout.strip() == n.hostname


def test_host_key_is_the_known_hosts_key(lab: LabState) -> None:
    """The key the node proved on connecting, as "keytype base64", is the one in the lab's known_hosts."""
    n = lab.nodes[0]
    t = lab.transport(n.hostname, recorder=Recorder())
    try:
        key = t.host_key()
    finally:
        t.close()
    assert key is not None and key.split()[0].startswith(("ssh-", "ecdsa-"))
    known = {" ".join(line.split()[1:3]) for line in lab.known_hosts.read_text().splitlines()
             if line.split() and n.ip in line.split()[0].split(",")}
    assert key in known
    other = lab.nodes[1]
    t2 = SSHTransport(other.hostname, other.ip, user="runbooks", key=lab.key, known_hosts=lab.known_hosts,
                      connect_timeout=CONNECT_S, recorder=Recorder())
    try:
        assert t2.host_key() != key  # each node its own key
    finally:
        t2.close()


def test_file_transfer_keeps_modes_and_a_missing_file_is_not_unreachable(lab: LabState, tmp_path: Path) -> None:
    """put/get over SFTP (each wait bounded): the file's mode travels with it; a missing remote file
    is an OSError, not the host unreachable."""
    n = lab.nodes[1]
    t = lab.transport(n.hostname, recorder=Recorder(), connect_timeout=CONNECT_S)
    src = tmp_path / "snap.db"
    src.write_bytes(os.urandom(300_000))
    src.chmod(0o600)
    remote = f"/tmp/runbooks-transfer-{os.getpid()}"
    try:
        t.put(src, remote)
        assert t.run(f"stat -c %a {remote}", sudo=False).stdout.strip() == "600"
        back = tmp_path / "back.db"
        t.get(remote, back)
        assert back.read_bytes() == src.read_bytes() and back.stat().st_mode & 0o777 == 0o600
        with pytest.raises(FileNotFoundError):
            t.get(f"{remote}.absent", tmp_path / "absent")
        assert t.run("true").ok  # the connection is still good
    finally:
        t.run(f"rm -f {remote}", sudo=False)
        t.close()
