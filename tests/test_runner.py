"""`runbooks run`: exit codes, reports always written, secrets scrubbed, HTML offline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from runbooks_lib.cli import main

NB = Path(__file__).resolve().parent / "fixtures" / "notebooks"
LOCAL = Path(__file__).resolve().parent / "fixtures" / "params" / "local.yaml"
TOKEN = "abcdef.0123456789abcdef"


def run_cli(tmp_path: Path, notebook: str, *extra: str, params: Path = LOCAL) -> tuple[int, Path]:
    out = tmp_path / "reports"
    code = main(["run", str(NB / f"{notebook}.ipynb"), "-p", str(params), "--out", str(out), "-q", *extra])
    htmls = sorted(out.glob(f"{notebook}/*.html"))
    return code, (htmls[-1] if htmls else out / "missing.html")


def test_passing_run_writes_all_reports(tmp_path: Path) -> None:
    code, html = run_cli(tmp_path, "passing")
    assert code == 0
    data = json.loads(html.with_suffix(".json").read_text())
    assert data["status"] == "PASS" and data["checks"][0]["status"] == "pass"
    assert any(r["command"] == "echo hello" for r in data["evidence"])
    assert html.with_suffix(".ipynb").exists()
    index = (tmp_path / "reports" / "index.html").read_text()
    assert html.name in index


def test_failing_check_exits_1_and_report_shows_it(tmp_path: Path) -> None:
    code, html = run_cli(tmp_path, "failing-check")
    assert code == 1
    text = html.read_text()
    assert "FAIL" in text and "file exists" in text and "/nonexistent-runbooks-file missing" in text
    assert json.loads(html.with_suffix(".json").read_text())["exit_code"] == 1


def test_cell_timeout_still_writes_html(tmp_path: Path) -> None:
    code, html = run_cli(tmp_path, "cell-timeout", "--cell-timeout", "4")
    assert code == 1
    text = html.read_text()
    assert "Run stopped: cell timeout" in text and "before the slow cell" in text
    data = json.loads(html.with_suffix(".json").read_text())
    assert data["execution_error"]["kind"] == "cell timeout"


def test_killed_kernel_still_writes_html(tmp_path: Path) -> None:
    code, html = run_cli(tmp_path, "killed-kernel")
    assert code == 1
    text = html.read_text()
    assert "Run stopped: kernel died" in text and "about to die" in text
    assert json.loads(html.with_suffix(".json").read_text())["checks"][0]["check"] == "before the kill"


def test_unreachable_target_exits_3(tmp_path: Path) -> None:
    code, html = run_cli(tmp_path, "unreachable")
    assert code == 3
    data = json.loads(html.with_suffix(".json").read_text())
    assert data["evidence"][-1]["status"] == "unreachable"


def test_bogus_params_exit_2_nothing_contacted(tmp_path: Path, fixtures: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli(tmp_path, "passing", params=fixtures / "params" / "bogus.yaml")
    assert code == 2
    err = capsys.readouterr().err
    assert "kubernetes_verison" in err and "did you mean 'kubernetes_version'" in err
    assert "nothing was contacted" in err
    assert not (tmp_path / "reports").exists()  # no notebook was started


def test_planted_secrets_appear_nowhere(tmp_path: Path, clean_env: None) -> None:
    pw = tmp_path / "db-password"
    pw.write_text("s3cr3t-db-pass\n")
    code, html = run_cli(tmp_path, "secret-leak", "--set", f"kubeadm.token={TOKEN}",
                         "--set", f"secrets.db_password=file:{pw}")
    assert code == 0
    for path in (html, html.with_suffix(".ipynb"), html.with_suffix(".json")):
        text = path.read_text()
        assert TOKEN not in text, path
        assert "0123456789abcdef" not in text, path
        assert "s3cr3t-db-pass" not in text, path
    nb = json.loads(html.with_suffix(".ipynb").read_text())
    params = json.dumps(nb["metadata"]["papermill"]["parameters"])
    assert "kubeadm.token=" in params and "secrets.db_password=" in params


def test_html_loads_nothing_from_network(tmp_path: Path) -> None:
    _, html = run_cli(tmp_path, "passing")
    text = html.read_text()
    assert not re.search(r"<script[^>]+src=[\"']?(https?:)?//", text, re.I)
    assert not re.search(r"<link[^>]+href=[\"']?(https?:)?//", text, re.I)
    assert not re.search(r"@import\s+url\([\"']?(https?:)?//", text, re.I)
    assert not re.search(r"import\s+\w+\s+from\s+[\"']https?://", text)


def test_cli_usage_errors_exit_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "runbooks_lib.cli", "run", "no-such-chapter"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "unknown chapter" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "runbooks_lib.cli", "frobnicate"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2


def test_list_names_every_chapter(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("system-init", "kubeadm", "kube-proxy-modes", "calico-ips", "metrics-server",
                 "openebs-storage", "etcd-backup"):
        assert name in out
