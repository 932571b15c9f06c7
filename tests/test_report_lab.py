"""Every built chapter's report from a real lab run (plan mode, `runbooks run-all --out tmp`), read
as an operator would (issue 12): recap per host, matrix before the evidence, no nan/Traceback,
each fail/drift row linked to an existing anchor, a title naming chapter and verdict, index badges
coloured per status; the console names step and host, ends with the summary table, and carries
no "Kernel is running over TCP without encryption" warning; headless Chromium screenshots."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks_lib.chapters import CHAPTERS

pytestmark = [pytest.mark.lab, pytest.mark.slow]
LAB = "lab"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lab_up() -> Iterator[None]:
    """The default parameters' lab; brought up (and taken down afterwards) only if it was not up."""
    from runbooks_lib.lab import lab

    started = not lab.is_up(LAB)
    if started:
        lab.up(LAB, nodes=3)
    try:
        yield
    finally:
        if started:
            lab.down(LAB)


@pytest.fixture(scope="module")
def run_all(lab_up: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str, str]:
    out = tmp_path_factory.mktemp("reports") / "reports"
    capture = tmp_path_factory.mktemp("console")
    # the kernel's own stderr (where ipykernel warns) is a child process's: capture at the fd level
    proc = subprocess.run([sys.executable, "-m", "runbooks_lib.cli", "run-all", "--out", str(out), "--no-lab"],
                          capture_output=True, text=True, timeout=1500, cwd=capture)
    return out, proc.returncode, proc.stdout, proc.stderr


def _page(path: Path) -> str:
    return path.read_text(encoding="utf-8").replace('"', "'")


def test_each_chapter_report_reads_as_the_issue_asks(run_all: tuple[Path, int, str, str]) -> None:
    out, _, _, _ = run_all
    built = [ch.name for ch in CHAPTERS if ch.built]
    assert built
    for name in built:
        (summary_path,) = sorted((out / name).glob("*.json"))
        summary = json.loads(summary_path.read_text())
        page = _page(summary_path.with_suffix(".html"))
        assert summary["execution_error"] is None, (name, summary["execution_error"])
        title = re.search(r"<title>(.*?)</title>", page, re.S)
        assert title and name in title.group(1) and summary["status"] in title.group(1), (name, title)
        hosts = {c["host"] for c in summary["checks"]}
        for host in hosts:
            assert re.search(rf"{re.escape(host)}\s* : passed=\d+ ", page), (name, host)
        first_evidence = page.find("<details class='runbooks-step'")
        if len(hosts) > 1 and first_evidence != -1:
            assert page.index("<h2>Checks × hosts</h2>") < first_evidence, name
        assert not re.search(r"\bnan\b|\bNaN\b", page), name
        assert "Traceback" not in page, name
        ids = set(re.findall(r"id='([^']+)'", page))
        rows = re.findall(r"<tr class='runbooks-row[^']*' data-status='(fail|drift)' id='chk-\d+'>(.*?)</tr>",
                          page, re.S)
        assert len(rows) == len({(c["status"], c["check"], c["detail"]) for c in summary["checks"]
                                 if c["status"] in ("fail", "drift")}), name
        for _, row in rows:
            links = re.findall(r"href='#([^']+)'", row)
            assert links and all(link in ids for link in links), (name, row[:300])
        assert "<script" not in page.lower(), name


def test_index_badges_are_coloured_per_status(run_all: tuple[Path, int, str, str]) -> None:
    out, _, _, _ = run_all
    index = _page(out / "index.html")
    pairs = set(re.findall(r"<span style='background:(#[0-9a-f]{6});[^']*'>(PASS|DRIFT[^<]*|FAIL[^<]*)</span>", index))
    by_verdict = {v.split(" ")[0]: c for c, v in pairs}
    assert len(set(by_verdict.values())) == len(by_verdict) >= 2, pairs  # the lab gives PASS and DRIFT
    assert "Latest per chapter and cluster" in index


def test_console_names_step_and_host_and_ends_with_a_summary_table(run_all: tuple[Path, int, str, str]) -> None:
    _, code, stdout, stderr = run_all
    assert "without encryption" not in stderr + stdout
    assert re.search(r"system-init · survey · lab-(cp1|w1|w2)", stderr), stderr[-2000:]
    table = stdout[stdout.index("chapter  "):]
    assert table.split("\n", 1)[0].split() == ["chapter", "verdict", "checks", "duration", "exit", "report"]
    for ch in CHAPTERS:
        if ch.built:
            assert re.search(rf"^{re.escape(ch.name)}\s+(PASS|DRIFT|FAIL)", table, re.M), ch.name
    assert f"exit code: {code} (the worst chapter's)" in stdout


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_screenshots_and_system_init_page_height(run_all: tuple[Path, int, str, str], tmp_path: Path) -> None:
    out, _, _, _ = run_all
    pages = [*sorted(out.glob("*/*.html")), out / "index.html"]
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "screenshots.py"), *map(str, pages),
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    heights = {Path(line.split("\t")[2]).parent.name: int(line.split("\t")[0]) for line in proc.stdout.splitlines()}
    assert len(heights) == len(pages) and all(p.stat().st_size > 10_000 for p in tmp_path.glob("*.png"))
    print("page heights at 1400 px:", heights)
    assert heights["system-init"] <= 17_000 / 3, heights  # 17,908 px before issue 12, for 3 nodes
