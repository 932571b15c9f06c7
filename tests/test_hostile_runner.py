"""Hostile use of `runbooks run`/`run-all`: bad arguments are exit 2 before anything runs, and
SIGTERM / Ctrl-C stop the kernel, write the report and leave no kernel behind (issue 18)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks_lib.cli import main

ROOT = Path(__file__).resolve().parent.parent
NB = ROOT / "tests" / "fixtures" / "notebooks"
LOCAL = ROOT / "tests" / "fixtures" / "params" / "local.yaml"


def _refused(capsys: pytest.CaptureFixture[str], out: Path, *argv: str) -> str:
    """Run the CLI; assert exit 2, no reports directory created, and return stderr."""
    code = main([*argv, "--out", str(out), "-q"]) if argv[0] != "reports" else main([*argv, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "nothing was contacted" in err
    assert not out.is_dir() or not any(out.rglob("*.json")), "nothing may have run"
    return err


def test_bad_parameter_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reports"
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"cluster_name: x\n\x00\x01\x02\xff")
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"cluster_name: caf\xe9\n")
    cases = {tmp_path: "is a directory", binary: "binary", latin1: "not UTF-8"}
    for path, reason in cases.items():
        for cmd in (["run", str(NB / "passing.ipynb")], ["run-all", "--no-lab"]):
            err = _refused(capsys, out, *cmd, "-p", str(path))
            assert str(path) in err and reason in err, err
    assert not out.exists()


def test_bad_notebook_paths_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reports"
    (tmp_path / "dir.ipynb").mkdir()
    (tmp_path / "text.ipynb").write_text("not a notebook\n")
    (tmp_path / "binary.ipynb").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    for name, reason in (("missing.ipynb", "notebook not found"), ("dir.ipynb", "is not a file"),
                         ("text.ipynb", "not a readable .ipynb"), ("binary.ipynb", "not a readable .ipynb")):
        err = _refused(capsys, out, "run", str(tmp_path / name), "-p", str(LOCAL))
        assert reason in err and name in err, err
    assert not out.exists()


def test_out_pointing_at_a_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("keep me\n")
    for out in (afile, afile / "below"):
        err = _refused(capsys, out, "run", str(NB / "passing.ipynb"), "-p", str(LOCAL))
        assert f"{afile} is a file, not a directory" in err
        err = _refused(capsys, out, "reports")
        assert "is a file" in err
    assert afile.read_text() == "keep me\n"


def test_secret_mapping_in_set_is_refused_without_echo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    value = "Sup3r-s3cret-Mapping-Value"
    for spec in (f"secrets={{db: {value}}}", f"kubeadm={{token: {value}}}"):
        err = _refused(capsys, tmp_path / "reports", "run", str(NB / "passing.ipynb"), "-p", str(LOCAL),
                       "--set", spec)
        assert value not in err and "set each on its own" in err, err


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@contextlib.contextmanager
def _started(argv: list[str], cwd: Path) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    """Start ``argv`` with $RUNBOOKS_TEST_MARKER set; yield it once the fixture's step wrote the pids
    (kernel first) into the marker. The process is killed (by its pid) if the test left it running."""
    marker = cwd / "marker"
    env = {**os.environ, "RUNBOOKS_TEST_MARKER": str(marker)}
    env.pop("RUNBOOKS_HEADLESS", None)
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() or not marker.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate(timeout=30)
            time.sleep(0.2)
        yield proc, [int(x) for x in marker.read_text().split()]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_the_kernel_and_writes_the_report(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    out, marker = tmp_path / "reports", tmp_path / "marker"
    argv = [sys.executable, "-m", "runbooks_lib.cli", "run", str(NB / "sleeps-in-step.ipynb"), "-p", str(LOCAL),
            "--out", str(out), "-q"]
    with _started(argv, tmp_path) as (proc, (kernel,)):
        assert _alive(kernel) and os.getpgid(kernel) != os.getpgrp()
        # while the step runs, the partial notebook is not in reports/ (it executes in a private dir)
        assert [p for p in out.rglob("*") if p.is_file()] == []
        t0 = time.time()
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=90)
    assert proc.returncode == code, stderr
    assert not _alive(kernel), "the kernel outlived the CLI"
    assert marker.with_suffix(".cleanup").read_text() == "step cleanup ran"  # the step's finally ran
    html = next(out.glob("sleeps-in-step/*.html"))
    data = json.loads(html.with_suffix(".json").read_text())
    err = data["execution_error"]
    assert err["kind"] == "interrupted" and err["step"] == "long wait" and err["signal"] == sig.name
    assert data["exit_code"] == code and data["checks"][0]["check"] == "before the wait"
    text = html.read_text()
    assert f"Run interrupted at step long wait (In [4]) by {sig.name}" in text
    after = [c for c in json.loads(html.with_suffix(".ipynb").read_text())["cells"]
             if "a cell after the interrupted one ran" in "".join(c["source"])]
    assert after and after[0]["outputs"] == [], "no cell starts after the interrupt"
    assert html.name in (out / "index.html").read_text() and "FAIL (interrupted)" in (out / "index.html").read_text()
    assert "Run interrupted at step long wait" in stderr and f"report: {html}" in stdout
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == sorted(
        ["index.html", html.name, html.with_suffix(".ipynb").name, html.with_suffix(".json").name])
    for path in out.rglob("*"):
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path
    written = (out / "index.html").stat().st_mtime - t0
    print(f"{sig.name}: signal to report and index written: {written:.2f} s; kernel stop "
          f"{err['message'].rsplit(' in ', 1)[1]}")
    assert written < 60


KILL_SCRIPT = """
import sys
from pathlib import Path
from runbooks_lib.runner import run_notebook, validate
params, overrides = validate({params!r}, [], None)
outcome = run_notebook(Path({nb!r}), "ignores-interrupt", params, overrides, Path({out!r}), progress=False, grace=2)
sys.exit(outcome.exit_code)
"""


@pytest.mark.slow
def test_a_step_that_ignores_the_interrupt_is_killed_with_its_children(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    script = KILL_SCRIPT.format(params=str(LOCAL), nb=str(NB / "ignores-interrupt.ipynb"), out=str(out))
    with _started([sys.executable, "-c", script], tmp_path) as (proc, (kernel, child)):
        assert _alive(kernel) and _alive(child)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=90)
        stopped = time.monotonic() - t0
    assert proc.returncode == 143, stderr
    assert not _alive(kernel) and not _alive(child), "the kernel or what it started outlived the run"
    data = json.loads(next(out.glob("ignores-interrupt/*.json")).read_text())
    assert data["execution_error"]["step"] == "stubborn"
    assert "killed after the step ignored the interrupt" in data["execution_error"]["message"]
    assert stopped < 60, stopped


def test_scheduled_unit_sends_sigterm_to_the_runner_only() -> None:
    """systemd's default KillMode signals the kernel too, which then dies before its step can clean
    up; with ``mixed`` only `runbooks` gets SIGTERM, and the rest is killed after TimeoutStopSec."""
    from runbooks_lib.schedule import render_systemd

    units = render_systemd("system-init", LOCAL, "0 3 * * *", runbooks="/usr/bin/runbooks")
    service = units["runbooks-system-init.service"]
    assert "\nKillMode=mixed\n" in service
    stop = int(service.split("\nTimeoutStopSec=", 1)[1].split("\n", 1)[0])
    assert stop > 20 + 30  # the kernel's grace (20 s) and the report
