"""The lab's cluster API: the API double as a background process of the lab.

The unit part runs the real process in a temporary state dir; the lab part (``-m lab``) brings up
its own lab ``labd`` (3 nodes), connects through a Run on a params file for it, and takes it down.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks_lib import kube
from runbooks_lib.lab import apidouble
from runbooks_lib.params import Params
from runbooks_lib.run import Run

NODES = [("t-cp1", "10.77.250.11", ["control-plane", "etcd"]), ("t-w1", "10.77.250.12", ["worker"])]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_version_matches_the_params_default():
    default = Params.model_fields["kubernetes_version"].default
    assert apidouble.VERSION.startswith(f"v{default}.")


def test_node_args():
    assert apidouble.node_args(NODES) == ["--node", "t-cp1=10.77.250.11:control-plane",
                                          "--node", "t-w1=10.77.250.12:worker"]


def test_a_server_started_under_the_old_module_name_is_still_recognised_and_stopped(tmp_path: Path):
    """A lab brought up before the move runs ``-m runbooks_lib.kube.double``: status/down still find it."""
    import subprocess
    import sys

    sdir = tmp_path / "lab"
    sdir.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "-m", "runbooks_lib.kube.double",
                             "--kubeconfig", str(sdir / "kubeconfig")])
    try:
        (sdir / "apidouble.pid").write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + 30  # until exec: a loaded CI runner has taken more than 5 s
        while apidouble.running_pid(sdir) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert apidouble.running_pid(sdir) == proc.pid
        assert apidouble.stop(sdir, timeout=5).startswith(f"stopped pid {proc.pid}")
        assert not _alive(proc.pid) and apidouble.running_pid(sdir) is None  # stop() reaps its own child
    finally:
        proc.kill()
        proc.wait(timeout=5)


def test_spawn_ensure_stop(tmp_path: Path):
    sdir = tmp_path / "lab"
    sdir.mkdir()
    assert apidouble.info(sdir).running is False and apidouble.stop(sdir) == "not running"
    pid, server, version = apidouble.ensure(sdir, NODES, timeout=60)
    try:
        assert server.startswith("https://127.0.0.1:") and version == apidouble.VERSION
        assert (sdir / "kubeconfig").stat().st_mode & 0o077 == 0
        assert apidouble.spawn(sdir, NODES) == pid  # one per lab
        st = apidouble.info(sdir)
        assert st.running and st.pid == pid and f"API double at {server}" in st.detail
        os.kill(pid, signal.SIGKILL)  # a dead double is replaced
        deadline = time.monotonic() + 10
        while apidouble.running_pid(sdir) is not None and time.monotonic() < deadline:
            os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        pid2, server2, _ = apidouble.ensure(sdir, NODES, timeout=60)
        assert pid2 != pid and apidouble.probe(sdir)[0] == server2
    finally:
        done = apidouble.stop(sdir)
    assert done.startswith("stopped pid") and apidouble.running_pid(sdir) is None
    assert not _alive(pid2) and not (sdir / "apidouble.pid").exists()
    assert "--node t-w1=10.77.250.12:worker" in (sdir / "apidouble.log").read_text()


# ----------------------------------------------------------------------------- with a real lab

LAB = "labd"


@pytest.fixture(scope="module")
def lab() -> Iterator[object]:
    from test_lab_live import _lab_possible

    from runbooks_lib.lab import down, up
    from runbooks_lib.lab.lab import state_dir

    why = _lab_possible()
    if why:
        pytest.skip(why)
    down(LAB)
    t0 = time.monotonic()
    state = up(LAB, nodes=3)
    state.extra["measured_up_s"] = round(time.monotonic() - t0, 1)
    yield state
    if state_dir(LAB).exists():
        down(LAB)


@pytest.mark.lab
def test_lab_up_serves_the_api_double(lab, tmp_path: Path):
    from runbooks_lib.lab import down, status, up

    state = lab
    assert state.kubeconfig.is_file()
    params = tmp_path / "labd.yaml"
    params.write_text(f"cluster_name: {LAB}\ninventory: {state.inventory}\nssh:\n  known_hosts: {state.known_hosts}\n"
                      f"kube:\n  kubeconfig: {state.kubeconfig}\n")
    run = Run.start("kube-proxy-modes", str(params), [], str(tmp_path / "run"))
    kc = kube.connect(run)
    assert kc.describe().startswith("API double at https://127.0.0.1:")
    assert any(t.startswith("API double at ") for t in run.targets)
    assert [n.name for n in kc.nodes()] == [n.hostname for n in state.nodes]
    assert {n.name: n.internal_ip for n in kc.nodes()} == {n.hostname: n.ip for n in state.nodes}
    assert [n.name for n in kc.nodes() if n.is_control_plane] == [state.control_plane.hostname]
    st = status(LAB)
    assert st.up and "API double at https://127.0.0.1:" in st.api_double
    # killed by hand: status says so, `up` on the existing lab starts it again
    pid = apidouble.running_pid(state.dir)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while apidouble.running_pid(state.dir) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not status(LAB).up and "not running" in status(LAB).api_double
    again = up(LAB, nodes=3)
    pid2 = apidouble.running_pid(state.dir)
    assert pid2 is not None and pid2 != pid and again.extra["api_double"]["version"] == apidouble.VERSION
    print(f"lab up (3 nodes, cached image, from nothing): {state.extra['measured_up_s']} s; "
          f"resume with a dead double: {again.up_seconds} s")
    gone = down(LAB)
    assert gone["api_double"].startswith(f"stopped pid {pid2}") and not _alive(pid2)
