"""`jupyter lab` started from the project's environment finds the notebooks and the library."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from runbooks_lib.runner import KERNEL_NAME, ensure_kernel

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_jupyter_lab_serves_notebooks_and_kernel(tmp_path: Path) -> None:
    ensure_kernel()
    port, token = _free_port(), secrets.token_hex(16)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", "--allow-root", f"--ServerApp.root_dir={ROOT}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "lab.log").open("w"),
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "JUPYTER_RUNTIME_DIR": str(tmp_path)},
    )

    def get(path: str) -> dict:
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                specs = get("/api/kernelspecs")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError((tmp_path / "lab.log").read_text()[-2000:]) from None
                time.sleep(0.5)
        assert KERNEL_NAME in specs["kernelspecs"]
        listing = get("/api/contents/notebooks")
        names = {item["name"] for item in listing["content"]}
        assert any(n.endswith(".ipynb") and n[:2].isdigit() for n in names), names
        # the kernel the server would start imports the library
        argv = specs["kernelspecs"][KERNEL_NAME]["spec"]["argv"]
        out = subprocess.run([argv[0], "-c", "import runbooks_lib, sys; print(runbooks_lib.__file__)"],
                             capture_output=True, text=True, timeout=60, cwd=ROOT / "notebooks")
        assert out.returncode == 0 and str(ROOT) in out.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=30)
