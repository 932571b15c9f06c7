"""`runbooks run`: exit codes, reports always written, secrets scrubbed, HTML offline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html import unescape as html_unescape
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


def header_of(html: Path) -> str:
    """The report's verdict header, up to the end of its facts table."""
    return html.read_text().split('<div class="runbooks-header">', 1)[1].split("</table>", 1)[0]


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


def test_drift_is_not_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, html = run_cli(tmp_path, "drift")
    assert code == 0
    assert "drift: DRIFT (2 changes pending) (exit 0)" in capsys.readouterr().out
    data = json.loads(html.with_suffix(".json").read_text())
    assert data["status"] == "DRIFT" and data["pending"] == 2 and data["exit_code"] == 0
    assert 'runbooks-verdict-DRIFT">DRIFT (2 changes pending)' in header_of(html)
    # the notebook's own verdict (display.show_verdict) agrees, and nothing raised
    nb = html.with_suffix(".ipynb").read_text()
    assert "DRIFT (2 changes pending)" in nb and "Traceback" not in nb
    assert f"reports_dir: {tmp_path / 'reports' / 'drift'}" in nb  # earlier runs are read from --out
    code, _ = run_cli(tmp_path, "drift", "--detailed-exitcode")
    assert code == 4


def test_n_a_in_lab_is_said_in_the_header(tmp_path: Path) -> None:
    _, html = run_cli(tmp_path, "drift")
    data = json.loads(html.with_suffix(".json").read_text())
    assert data["notices"] and "1 check n/a in lab" in data["notices"][0]
    header = header_of(html)
    assert "runbooks-notice" in header and "n/a in lab" in header
    _, html = run_cli(tmp_path, "passing")
    assert json.loads(html.with_suffix(".json").read_text())["notices"] == []


def test_failed_check_is_a_verdict_not_a_traceback(tmp_path: Path) -> None:
    code, html = run_cli(tmp_path, "failing-check")
    assert code == 1
    for path in (html, html.with_suffix(".ipynb"), html.with_suffix(".json")):
        text = path.read_text()
        assert "Traceback" not in text and "An Exception was encountered" not in text, path
        assert "ChecksFailed" not in text and "Run stopped" not in text, path
    assert "Verdict: " in html.read_text()


def test_real_error_traceback_sits_under_its_step(tmp_path: Path) -> None:
    code, html = run_cli(tmp_path, "step-error")
    assert code == 1
    data = json.loads(html.with_suffix(".json").read_text())
    assert data["status"] == "FAIL" and data["execution_error"]["step"] == "explode"
    assert data["execution_error"]["banner"].startswith("Run stopped: cell error at step explode")
    nb = json.loads(html.with_suffix(".ipynb").read_text())
    tracebacks = [c for c in nb["cells"] if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert len(tracebacks) == 1 and 'in_step("explode")' in "".join(tracebacks[0]["source"])
    text = html.read_text()
    assert "An Exception was encountered" not in text and "a real error in the explode step" in text


def test_header_says_what_the_mode_does(tmp_path: Path) -> None:
    from runbooks_lib import chapters
    from runbooks_lib.runner import run_notebook, validate

    ch = chapters.find("etcd-backup")
    for mode, text in (("plan", ch.plan_does), ("apply", ch.apply_does)):
        params, overrides = validate(str(LOCAL), [], mode)
        outcome = run_notebook(NB / "passing.ipynb", ch.name, params, overrides, tmp_path / "r", progress=False)
        assert outcome.summary["mode_does"] == f"{mode}: {text}"
        assert f"{mode}: {text}" in html_unescape(header_of(outcome.html))


def test_readme_chapter_table_matches_the_registry() -> None:
    from runbooks_lib import chapters

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = {int(m[0]): m[1] for m in re.findall(r"^\| (\d\d) \| [\w-]+ \| [^|]+ \| ([^|]+) \|$", readme, re.M)}
    assert rows == {ch.number: ch.plan_does for ch in chapters.CHAPTERS}


def test_reports_are_private(tmp_path: Path) -> None:
    _, html = run_cli(tmp_path, "passing")
    out = tmp_path / "reports"
    for path in (html, html.with_suffix(".ipynb"), html.with_suffix(".json"), out / "index.html"):
        assert path.stat().st_mode & 0o777 == 0o600, path
    for d in (out, html.parent):
        assert d.stat().st_mode & 0o777 == 0o700, d
    assert sorted(p.name for p in html.parent.iterdir()) == sorted(
        [html.name, html.with_suffix(".ipynb").name, html.with_suffix(".json").name])  # no run dir left


def test_earlier_reports_are_made_private(tmp_path: Path) -> None:
    chapter = tmp_path / "reports" / "system-init"
    chapter.mkdir(parents=True, mode=0o755)
    old = chapter / "20240101T000000Z_lab.json"
    old.write_text(json.dumps({"chapter": "system-init", "status": "PASS", "started_utc": "2024-01-01"}))
    old.with_suffix(".html").write_text("<html></html>")
    for path in (chapter, old, old.with_suffix(".html")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert main(["reports", "--out", str(tmp_path / "reports")]) == 0
    assert [p.stat().st_mode & 0o777 for p in (chapter, old, old.with_suffix(".html"))] == [0o700, 0o600, 0o600]


def test_a_bad_earlier_report_is_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reports"
    (out / "passing").mkdir(parents=True)
    (out / "passing" / "latin1.json").write_bytes(b'{"chapter": "caf\xe9", "status": "PASS"}')
    (out / "passing" / "list.json").write_text("[1, 2]")
    (out / "passing" / "wrong-types.json").write_text('{"chapter": 1, "status": ["PASS"]}')
    assert main(["reports", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: skipping") == 3
    code, html = run_cli(tmp_path, "passing")
    assert code == 0 and html.name in (out / "index.html").read_text()


def test_worst_exit_code_of_run_all() -> None:
    from runbooks_lib.cli import worst_exit

    assert worst_exit([0, 4, 0]) == 4
    assert worst_exit([4, 1, 3]) == 1
    assert worst_exit([0, 1, 143]) == 143
    assert worst_exit([]) == 0


def test_progress_line_names_cell_step_host_and_what_the_cell_printed(tmp_path: Path) -> None:
    import io

    from runbooks_lib.progress import Progress

    (tmp_path / "evidence.jsonl").write_text(json.dumps({"step": "survey", "target": "lab-w1"}) + "\n"
                                             + json.dumps({"step": "survey", "target": "lab-w2"}) + "\n{torn")
    (tmp_path / "current_step").write_text("survey")
    stream = io.StringIO()
    progress = Progress("system-init", tmp_path, stream)
    progress.on_cell(5, 14)
    progress.on_text("N=100: rules loaded\nN=1000: 2000 rules loaded\n")
    progress.tick()
    progress.tick()  # unchanged: not printed again
    assert stream.getvalue() == "[6/14] system-init · survey · lab-w2 · 2 records · N=1000: 2000 rules loaded\n"


def test_console_has_progress_and_no_tcp_encryption_warning(tmp_path: Path) -> None:
    """The kernel talks over IPC: ipykernel's "running over TCP without encryption" warning (on the
    kernel's own stderr, so captured from a child process here) is gone, and no flag silences it."""
    proc = subprocess.run([sys.executable, "-m", "runbooks_lib.cli", "run", str(NB / "passing.ipynb"), "-p",
                           str(LOCAL), "--out", str(tmp_path / "reports")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "without encryption" not in proc.stderr and "TCP" not in proc.stderr, proc.stderr
    assert re.search(r"^\[\d+/\d+\] passing · ", proc.stderr, re.M), proc.stderr
