"""An interrupted wait leaves nothing running: LocalTransport.run and Fleet.map on this machine.

The interrupt is a real signal whose handler raises KeyboardInterrupt in the waiting main thread,
as the kernel gets it from the runner on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runbooks_lib.evidence import Recorder
from runbooks_lib.fleet import Fleet
from runbooks_lib.transport import Cancelled, LocalTransport, Transport, shielded


def _procs_with(marker: str) -> list[int]:
    """PIDs whose command line holds ``marker`` (read from /proc, no pgrep)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


def _gone_within(marker: str, seconds: float) -> float | None:
    """Seconds until no process holds ``marker``, or None if some still do after ``seconds``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if not _procs_with(marker):
            return time.monotonic() - t0
        time.sleep(0.02)
    return None


@pytest.fixture
def interrupt_after() -> Iterator[Callable[[float], None]]:
    """Arm a timer whose signal raises KeyboardInterrupt in the main thread."""
    old = signal.getsignal(signal.SIGALRM)

    def raise_interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, raise_interrupt)
    yield lambda s: signal.setitimer(signal.ITIMER_REAL, s)
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


def _sleeper() -> tuple[str, str]:
    """A command that runs a marked sleep and a marked background child; the marker."""
    secs = f"{300 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 1000:03d}"
    return f"sleep {secs} & sleep {secs}; echo survived", f"sleep\0{secs}"


def test_interrupted_local_run_kills_its_process_group(interrupt_after: Callable[[float], None]) -> None:
    rec = Recorder()
    t = LocalTransport("here", recorder=rec)
    cmd, marker = _sleeper()
    interrupt_after(0.5)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        t.run(cmd, timeout=600)
    assert time.monotonic() - t0 < 3
    assert _gone_within(marker, 2.0) is not None, "the interrupted command is still running"
    last = rec.records[-1]
    assert last.status == "interrupted" and "KeyboardInterrupt" in last.stderr


def test_interrupted_fanout_stops_every_host_and_its_workers(interrupt_after: Callable[[float], None]) -> None:
    rec = Recorder()
    fleet = Fleet([LocalTransport(f"n{i}", recorder=rec) for i in range(3)], forks=2)  # one host queued
    cmd, marker = _sleeper()
    ran: list[str] = []

    def work(t: Transport) -> str:
        ran.append(t.name)
        return t.run(cmd, timeout=600).stdout

    interrupt_after(0.7)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        fleet.map(work, timeout=600)
    assert time.monotonic() - t0 < 5
    assert _procs_with(marker) == [], "map raised while commands still ran"
    assert not [th for th in threading.enumerate() if th.name.startswith("fleet")], "worker threads left"
    assert sorted(ran) == ["n0", "n1"], "the queued host was started after the interrupt"
    assert sorted(r.target for r in rec.records if r.status == "interrupted") == ["n0", "n1"]


def test_fanout_wall_limit_stops_the_commands_and_a_step_cannot_carry_on(tmp_path: Path) -> None:
    """Past the wall limit, the running command is stopped and the step's next command never starts,
    even when the step catches Exception around the first."""
    fleet = Fleet([LocalTransport("slow", recorder=Recorder())])
    cmd, marker = _sleeper()
    after = tmp_path / "next-command-ran"
    caught: list[BaseException] = []

    def step(t: Transport) -> None:
        try:
            t.run(cmd, timeout=600)
        except Exception as exc:  # noqa: BLE001 - a step's broad except must not swallow the stop
            caught.append(exc)
        t.run(f"touch {after}")

    t0 = time.monotonic()
    out = fleet.map(step, timeout=0.5)
    assert time.monotonic() - t0 < 3
    assert not out["slow"].ok and "fan-out limit" in (out["slow"].error or "")
    assert _procs_with(marker) == []
    assert not [th for th in threading.enumerate() if th.name.startswith("fleet")]
    assert not after.exists() and caught == []


def test_a_shielded_cleanup_runs_after_the_stop(tmp_path: Path) -> None:
    """A step's cleanup in ``finally`` (a staging copy to remove) still runs on its host when wrapped
    in ``shielded()``; without it the stopped fan-out refuses the command."""
    fleet = Fleet([LocalTransport("n", recorder=Recorder())])
    cmd, marker = _sleeper()
    cleaned, refused = tmp_path / "cleaned", tmp_path / "refused"

    def step(t: Transport) -> None:
        try:
            t.run(cmd, timeout=600)
        finally:
            with shielded():
                t.run(f"touch {cleaned}")
            t.run(f"touch {refused}")

    out = fleet.map(step, timeout=0.5)
    assert not out["n"].ok and _procs_with(marker) == []
    assert cleaned.exists() and not refused.exists()


def test_a_stopped_fanout_stops_the_one_inside_it() -> None:
    """A fan-out run from a fan-out's worker is stopped with it."""
    rec = Recorder()
    inner = Fleet([LocalTransport(f"i{i}", recorder=rec) for i in range(2)])
    cmd, marker = _sleeper()
    outcomes: list[BaseException] = []

    def outer(t: Transport) -> None:
        try:
            inner.map(lambda it: it.run(cmd, timeout=600), timeout=600)
        except BaseException as exc:
            outcomes.append(exc)
            raise

    out = Fleet([LocalTransport("o", recorder=rec)]).map(outer, timeout=1.0)
    assert not out["o"].ok
    assert _procs_with(marker) == []
    assert len(outcomes) == 1 and isinstance(outcomes[0], Cancelled)


def test_fanout_that_finishes_is_not_slowed() -> None:
    """The stop machinery costs nothing when nothing is stopped."""
    fleet = Fleet([LocalTransport(f"n{i}", recorder=Recorder()) for i in range(4)])
    t0 = time.monotonic()
    out = fleet.run("echo $((6*7))", timeout=10)
    assert all(o.ok and o.value is not None and o.value.stdout.strip() == "42" for o in out.values())
    assert time.monotonic() - t0 < 1.0
