"""The chapter report and the index as an operator reads them (issue 12): recap first, matrix,
attention first with anchors to the evidence, key figures, tables without Python reprs, index
badges and filters. Built from summaries shaped like the runner's; no kernel, no lab."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd

from runbooks_lib import display
from runbooks_lib.cli import ChapterResult, summary_table
from runbooks_lib.report import render_html, write_index
from runbooks_lib.report_figures import key_figures
from runbooks_lib.verdict import COLORS, recap_line, status_color

DIFF = "--- /etc/hosts (current)\n+++ /etc/hosts (planned)\n@@ -1,2 +1,3 @@\n 127.0.0.1 localhost\n+10.0.0.2 w1"


def _check(check: str, host: str, status: str, detail: str = "", step: str = "survey") -> dict[str, str]:
    return {"check": check, "host": host, "status": status, "detail": detail, "step": step}


def _rec(step: str, target: str, command: str, code: int | None = 0, kind: str = "command",
         status: str = "ok", stdout: str = "") -> dict[str, Any]:
    return {"kind": kind, "step": step, "target": target, "command": command, "exit_code": code,
            "stdout": stdout, "stderr": "", "duration_s": 0.123456, "started_utc": "2026-12-01T01:02:03.456Z",
            "status": status, "extra": {}}


def summary(**over: Any) -> dict[str, Any]:
    checks = [_check("swap off", h, "pass", "swap is off") for h in ("cp1", "w1", "w2")]
    checks += [_check("hosts", h, "drift", DIFF) for h in ("cp1", "w1")]
    checks += [_check("memory", "w2", "fail", "900 MiB (needs ≥ 1700 MiB)"),
               _check("cluster API", "cluster", "pass", "ok", step="cluster"),
               _check("reach", "w3", "unreachable", "ssh: connect timed out after 10 s", step="connect")]
    evidence = [_rec("survey", h, f"sh -c 'cat /proc/meminfo' # {h}", stdout="\n".join(f"line {i}" for i in range(80)))
                for h in ("cp1", "w1", "w2")]
    evidence += [_rec("cluster", "kube:admin@lab", "GET /version", 200, kind="api"),
                 _rec("connect", "w3", "ssh w3", None, status="unreachable"),
                 _rec("survey", "w1", "sleep 100", None, status="interrupted")]
    s = {"chapter": "system-init", "status": "FAIL", "pending": 2, "exit_code": 1, "mode": "plan",
         "mode_does": "plan: reads every node; changes nothing", "cluster_name": "prod-eu",
         "targets": ["hosts: cp1, w1, w2, w3"], "params_file": "/p/prod.yaml", "started_utc": "2026-12-01T01:02:03.456Z",
         "duration_s": 12.3456, "counts": dict(Counter(c["status"] for c in checks)), "checks": checks,
         "evidence": evidence, "figures": {"system_init": {"nodes": 4, "drift": 2, "non_compliant": 1,
                                                           "wall_s": 0.6421}},
         "notices": [], "execution_error": None, "tools": {"python": "3.11"}}
    s.update(over)
    return s


def render(s: dict[str, Any], nb: nbformat.NotebookNode | None = None) -> str:
    """The report page, attribute quotes normalised to ' (nbconvert re-serialises the page)."""
    page = render_html(nb or nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# chapter")]), s)
    return page.replace('"', "'")


def test_title_names_chapter_verdict_cluster_and_utc_time() -> None:
    page = render(summary())
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    assert title and title.group(1).strip() == "system-init FAIL · prod-eu · 2026-12-01 01:02 UTC"


def test_recap_line_per_host_then_matrix_then_evidence() -> None:
    page = render(summary())
    for host in ("cp1", "w1", "w2", "w3", "cluster"):
        assert re.search(rf"{host}\s* : passed=\d+ .*failed=\d+", page), host
    assert "w2      : passed=1 drift=0 <span class='runbooks-st-fail'>failed=1</span>" in page
    recap, matrix = page.index("<pre class='runbooks-recap'>"), page.index("<h2>Checks × hosts")
    assert recap < matrix < page.index("class='runbooks-checks'") < page.index("Evidence (")


def test_unreachable_hosts_are_named_at_the_top_with_the_reason() -> None:
    page = render(summary())
    box = page.index("<div class='runbooks-unreachable'>")
    assert box < page.index("<pre class='runbooks-recap'>")
    assert "<b>w3</b>: ssh: connect timed out after 10 s" in page[box:box + 400]


def test_every_check_links_to_an_existing_evidence_anchor() -> None:
    page = render(summary())
    ids = set(re.findall(r"id='([^']+)'", page))
    table = page[page.index("class='runbooks-checks'"):page.index("Evidence (")]
    rows = re.findall(r"<tr class='runbooks-row[^']*' data-status='([^']+)' id='chk-\d+'>(.*?)</tr>", table, re.S)
    attention = [(st, row) for st, row in rows if st in ("fail", "drift", "unreachable")]
    assert len(attention) == 3, rows  # drift on cp1+w1 is one row (one copy of the diff)
    for _, row in attention:
        links = re.findall(r"href='#([^']+)'", row)
        assert links and all(link in ids for link in links), row
    # a check links to its own step's block for its host
    assert re.search(r"memory</td><td><a href='#(ev-\d+-survey--w2)'>w2</a>", table)
    # the cluster-level check, whose host is not an evidence target, links to its step
    assert re.search(r"href='#ev-\d+-cluster'>cluster</a>", table)


def test_failures_first_passes_hidden_by_default_css_filter_without_script() -> None:
    page = render(summary())
    table = page[page.index("class='runbooks-checks'"):]
    order = re.findall(r"data-status='([^']+)'", table[:table.index("</table>")])
    assert order[:3] == ["unreachable", "fail", "drift"] and order[-1] == "pass"
    assert "<tr class='runbooks-row runbooks-quiet' data-status='pass'" in table
    assert "<script" not in page.lower()
    assert "<input checked='' class='runbooks-f' id='runbooks-f-attention'" in page
    assert "#runbooks-f-pass:checked ~ .runbooks-filtered .runbooks-row[data-status~='pass']" in page
    assert "#runbooks-f-attention:checked ~ .runbooks-filtered .runbooks-quiet { display: none; }" in page


def test_nothing_needing_attention_shows_every_check_by_default() -> None:
    checks = [_check("swap off", h, "pass", "swap is off") for h in ("cp1", "w1")]
    page = render(summary(checks=checks, status="PASS", counts={"pass": 2}))
    assert "<input checked='' class='runbooks-f' id='runbooks-f-all'" in page
    assert "<input class='runbooks-f' id='runbooks-f-attention'" in page


def test_a_diff_is_shown_once_with_its_hosts_and_coloured() -> None:
    page = render(summary())
    table = page[page.index("class='runbooks-checks'"):page.index("Evidence (")]
    assert table.count("10.0.0.2 w1") == 1
    row = table[table.index("data-status='drift'"):]
    row = row[:row.index("</tr>")]
    assert ">cp1</a>, <a" in row and ">w1</a>" in row
    assert "class='runbooks-diff-add'" in row and "+10.0.0.2 w1" in row


def test_evidence_shows_command_http_status_and_an_excerpt() -> None:
    page = render(summary())
    ev = page[page.index("Evidence ("):]
    assert "HTTP 200" in ev and "exit 200" not in ev
    assert "$ sh -c &#x27;cat /proc/meminfo&#x27; # w1" in ev or "$ sh -c 'cat /proc/meminfo' # w1" in ev
    assert "(first 30 of 80 lines)" in ev and "full stdout (80 lines)" in ev
    assert f"background:{COLORS['interrupted']}" in ev and "0.12 s" in ev and "0.123456" not in ev


def test_key_figures_from_what_chapters_record() -> None:
    kpm = {"kpm_recommendation": {"mode": "nftables"},
           "kpm_p50_us": {"iptables": {"10": 96.0, "1000": 253.41}, "nftables": {"10": 92.0, "1000": 67.2}}}
    got = dict(key_figures("kube-proxy-modes", kpm))
    assert got["recommended mode"] == "nftables"
    assert got["iptables: p50 at N=1000"] == "253 µs" and got["nftables: p50 at N=1000"] == "67.2 µs"
    eb = {"snapshot": "snap-20261201.db", "size_bytes": 2_400_000, "revision": 1234, "keys": 567,
          "drill": "passed: the snapshot restores", "save_s": 0.51234}
    got = dict(key_figures("etcd-backup", eb))
    assert got == {"snapshot": "snap-20261201.db", "size": "2.3 MiB", "revision": "1234", "keys": "567",
                   "restore drill": "passed: the snapshot restores", "durations": "save 0.51 s"}
    page = render(summary())
    box = page[page.index("<div class='runbooks-figures'>"):]
    assert "<th>nodes</th><td>4</td>" in box and "0.64 s" in box


def test_tables_read_like_a_person_wrote_them() -> None:
    from dataclasses import dataclass

    @dataclass
    class Copy:
        host: str
        ok: bool

    df = pd.DataFrame([{"mode": "iptables", "n": 1000.0, "p50_us": 253.4123, "save_s": 1.23456, "ok": True,
                        "copy": Copy("w1", True), "opts": {"a": 1}, "missing": float("nan")}])
    page = display.styled(df, status_col="-")
    heads = re.findall(r"<th style='text-align:left'>(.*?)</th>", page)
    assert heads == ["mode", "n", "p50 (µs)", "save (s)", "ok", "copy", "opts", "missing"]
    cells = re.findall(r"<td[^>]*>(?:<span[^>]*>)?(.*?)(?:</span>)?</td>", page)
    assert cells == ["iptables", "1000", "253", "1.23", "yes", "host: w1; ok: yes", "a: 1", ""]
    assert "nan" not in page and "True" not in page and "Copy(" not in page


def test_index_badges_columns_filters_latest_and_month_pages(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    runs = [("system-init", "PASS", "2026-10-03T01:00:00Z", "lab"), ("system-init", "FAIL", "2026-11-03T01:00:00Z", "lab"),
            ("etcd-backup", "DRIFT", "2026-11-04T01:00:00Z", "lab"), ("etcd-backup", "PASS", "2026-11-05T01:00:00Z", "prod")]
    for chapter, status, when, cluster in runs:
        d = out / chapter
        d.mkdir(parents=True, exist_ok=True)
        s = summary(chapter=chapter, status=status, started_utc=when, cluster_name=cluster, pending=1)
        stem = when.replace(":", "").replace("-", "")
        (d / f"{stem}_x.json").write_text(json.dumps(s))
        (d / f"{stem}_x.html").write_text("<html></html>")
    import runbooks_lib.report as report

    saved, report.INDEX_RUNS = report.INDEX_RUNS, 3
    try:
        index = write_index(out).read_text()
    finally:
        report.INDEX_RUNS = saved
    colors = {v: f"background:{status_color(v)}" for v in ("PASS", "FAIL", "DRIFT (1 change pending)")}
    assert len(set(colors.values())) == 3 and all(c in index for c in colors.values())
    heads = re.findall(r"<th>(.*?)</th>", index[index.index("Runs ("):])[:10]
    assert heads == ["time (UTC)", "chapter", "cluster", "mode", "verdict", "checks", "duration", "exit code",
                     "parameter file", "report"]
    latest = index[index.index("Latest per chapter and cluster"):index.index("Runs (")]
    assert latest.count("<tr data-chapter") == 3  # system-init/lab, etcd-backup/lab, etcd-backup/prod
    assert "2026-10-03" not in latest and "<script" not in index
    runs_part = index[index.index("Runs ("):]
    times = re.findall(r"<td>(2026-\d\d-\d\d \d\d:\d\d:\d\d)</td>", runs_part)
    assert times == sorted(times, reverse=True) and len(times) == 3
    assert "#f-verdict-fail:checked ~ table.runbooks-runs tr[data-verdict]:not([data-verdict='fail'])" in index
    assert "#f-chapter-etcd-backup:checked" in index
    assert "href='index-2026-10.html'" in index
    assert "2026-10-03 01:00:00" in (out / "index-2026-10.html").read_text()


def test_stray_integer_result_is_dropped_and_printed_diffs_coloured() -> None:
    cell = nbformat.v4.new_code_cell("subprocess.call(...)", outputs=[
        nbformat.v4.new_output("execute_result", {"text/plain": "0"}, execution_count=3),
        nbformat.v4.new_output("stream", name="stdout", text=DIFF)])
    page = render(summary(), nbformat.v4.new_notebook(cells=[cell]))
    assert "Out[3]" not in page
    notebook = page[page.index("<main class='runbooks-notebook'>"):]
    assert "class='runbooks-diff-add'" in notebook


def test_recap_line_and_status_colours() -> None:
    assert recap_line("w1", Counter({"pass": 3, "n/a in lab": 2})) == "w1 : passed=3 drift=0 failed=0 unreachable=0 n/a_in_lab=2"
    assert status_color("FAIL (interrupted)") == COLORS["fail"] != status_color("PASS")
    assert status_color("interrupted") == COLORS["interrupted"]


def test_run_all_summary_table(tmp_path: Path) -> None:
    rows = [ChapterResult("system-init", 0, "DRIFT (34 changes pending)", {"pass": 47, "drift": 34}, 27.4,
                          tmp_path / "reports" / "system-init" / "a.html"),
            ChapterResult("kubeadm", 2, "not run")]
    text = summary_table(rows, tmp_path).splitlines()
    assert text[0].split() == ["chapter", "verdict", "checks", "duration", "exit", "report"]
    assert "34 drift, 47 pass" in text[2] and "27 s" in text[2] and text[2].endswith("reports/system-init/a.html")
    assert text[3].split()[:4] == ["kubeadm", "not", "run", "-"]
