"""Transports and fan-out on this machine: timeouts, sudo wrapping, per-host outcomes."""

from __future__ import annotations

import time
from pathlib import Path

from runbooks_lib.evidence import Recorder
from runbooks_lib.fleet import Fleet
from runbooks_lib.transport import LocalTransport, SSHTransport


def test_local_run_records_evidence(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "e.jsonl")
    t = LocalTransport("here", recorder=rec)
    res = t.run(["printf", "%s", "a b"])
    assert res.ok and res.stdout == "a b"
    assert rec.records[-1].command == "printf %s 'a b'"
    assert rec.records[-1].status == "ok"


def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    rec = Recorder()
    t = LocalTransport("here", recorder=rec)
    marker = tmp_path / "child-alive"
    t0 = time.monotonic()
    res = t.run(f"(sleep 3; touch {marker}) & sleep 30", timeout=1)
    assert time.monotonic() - t0 < 5
    assert res.timed_out and res.exit_code == 124 and rec.records[-1].status == "timeout"
    time.sleep(3.5)
    assert not marker.exists(), "the background child survived the timeout"


def test_sudo_wrapping_for_non_root() -> None:
    t = LocalTransport("here", user="runbooks")
    assert t.wrap("echo 'x'", sudo=True) == "sudo -n -- sh -c 'echo '\"'\"'x'\"'\"''"
    assert t.wrap("echo x", sudo=False) == "echo x"
    assert LocalTransport("here", user="root").wrap("echo x", sudo=True) == "echo x"


def test_file_roundtrip(tmp_path: Path) -> None:
    t = LocalTransport("here", recorder=Recorder())
    target = tmp_path / "sub" / "f.conf"
    t.write_file(str(target), "a=1\n", mode="0600")
    assert t.read_file(str(target)) == "a=1\n"
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert t.read_file(str(tmp_path / "absent")) is None


def test_fanout_keeps_every_host_result() -> None:
    rec = Recorder()
    good = [LocalTransport(f"n{i}", recorder=rec) for i in range(4)]
    # a closed port on loopback: refused at once
    dead = SSHTransport("dead", "127.0.0.1", port=1, connect_timeout=2, recorder=rec)
    fleet = Fleet([*good, dead], forks=5)
    t0 = time.monotonic()
    out = fleet.run("sleep 1; echo $((6*7))", timeout=10)
    wall = time.monotonic() - t0
    assert list(out) == ["n0", "n1", "n2", "n3", "dead"]
    assert all(out[f"n{i}"].ok and out[f"n{i}"].value.stdout.strip() == "42" for i in range(4))  # type: ignore[union-attr]
    assert out["dead"].unreachable and "cannot connect" in (out["dead"].error or "")
    assert wall < 3, f"fan-out was not parallel: {wall:.1f}s"
    assert any(r.status == "unreachable" and r.target == "dead" for r in rec.records)


def test_fanout_wall_limit_reports_hung_hosts() -> None:
    fleet = Fleet([LocalTransport("slow", recorder=Recorder())])
    out = fleet.map(lambda t: time.sleep(5), timeout=0.5)
    assert not out["slow"].ok and "fan-out limit" in (out["slow"].error or "")
