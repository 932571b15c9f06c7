"""The wheel carries what a runner needs without a checkout (issue 13 §3): the notebooks, the package
data, the programs shipped to nodes. Built with ``pip wheel``, installed into a throwaway venv, and
``runbooks list`` run from it, away from this checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from runbooks_lib.chapters import CHAPTERS

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
                   check=True, timeout=600, cwd=out)
    (found,) = out.glob("k8s_runbooks-*.whl")
    return found


def test_wheel_holds_notebooks_and_package_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for ch in CHAPTERS:
        if ch.built:
            assert any(n.endswith(f"share/k8s-runbooks/notebooks/{ch.notebook.name}") for n in names), ch.name
    for data in ("runbooks_lib/report_template/runbooks/conf.json", "runbooks_lib/report_template/runbooks/index.html.j2",
                 "runbooks_lib/chapters/etcd_backup/remote/follow_save.py",
                 "runbooks_lib/chapters/etcd_backup/remote/digest.py"):
        assert data in names


def test_runbooks_list_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                   check=True, timeout=300)
    # the dependencies are this environment's (no download); its site-packages is on PYTHONPATH, which
    # skips its .pth files, so the checkout's editable install is not seen: runbooks_lib is the wheel's
    env = {k: v for k, v in os.environ.items() if k not in ("RUNBOOKS_HOME", "PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = sysconfig.get_path("purelib")
    where = subprocess.run([str(py), "-c", "import runbooks_lib, runbooks_lib.chapters as c; "
                            "print(runbooks_lib.__file__); print(c.NOTEBOOKS)"],
                           capture_output=True, text=True, check=True, timeout=60, cwd=tmp_path, env=env)
    package, notebooks = where.stdout.split()
    assert Path(package).is_relative_to(venv) and Path(notebooks).is_relative_to(venv)
    out = subprocess.run([str(venv / "bin" / "runbooks"), "list"], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    for ch in CHAPTERS:
        line = next(line for line in out.stdout.splitlines() if f" {ch.name} " in line)
        assert ("[not built yet]" in line) is (not ch.built), line
    assert sum(ch.built for ch in CHAPTERS) >= 3
