"""Parsers, the tidy table, shape findings, references and plots of chapter 03."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from runbooks_lib.chapters.kube_proxy_modes import facts, plots
from runbooks_lib.chapters.kube_proxy_modes.benchmark import BenchmarkResult, node_args, shape_findings
from runbooks_lib.chapters.kube_proxy_modes.reference import reference_frame
from runbooks_lib.chapters.kube_proxy_modes.settings import Settings
from runbooks_lib.facts import kernel

KPM = Path(__file__).resolve().parent / "fixtures" / "kpm"


def read(name: str) -> str:
    return (KPM / name).read_text(encoding="utf-8")


def test_netns_list_with_and_without_ids() -> None:
    names = facts.parse_netns_list(read("netns-list.debian12.txt"))
    assert "kpm-496599f6-ep0" in names and "kpm-496599f6-cipt" in names
    assert "netns-bfe307dd-fc24-883b-3301-77e7fe165cdd" in names
    assert all("(" not in n for n in names)


@pytest.mark.parametrize(("fixture", "expected"), [
    ("uname-r.debian12.txt", (6, 18, 44)),
    pytest.param("uname-r.rocky9.txt", (5, 14, 0), marks=pytest.mark.written_fixture)])
def test_kernel_version(fixture: str, expected: tuple[int, int, int]) -> None:
    assert kernel.parse_version(read(fixture)) == expected
    assert kernel.parse_version("garbage") is None


@pytest.mark.parametrize(("fixture", "expected"), [
    ("iptables-version.debian12.txt", ("1.8.9", "nf_tables")),
    pytest.param("iptables-version.rocky9.txt", ("1.8.10", "nf_tables"), marks=pytest.mark.written_fixture)])
def test_iptables_version(fixture: str, expected: tuple[str, str]) -> None:
    assert facts.parse_iptables_version(read(fixture)) == expected
    assert facts.parse_iptables_version("iptables v1.8.7 (legacy)") == ("1.8.7", "legacy")


@pytest.mark.written_fixture  # the rocky9 samples
def test_nft_version_and_tables() -> None:
    assert facts.parse_nft_version(read("nft-version.debian12.txt")) == (1, 0, 6)
    assert facts.parse_nft_version(read("nft-version.rocky9.txt")) == (1, 0, 9)
    assert facts.parse_nft_tables(read("nft-list-tables.rocky9.txt")) == [
        ("inet", "firewalld"), ("ip", "kube-proxy"), ("ip6", "kube-proxy")]
    assert facts.parse_nft_tables(read("nft-list-tables.debian12.txt")) == [("ip", "nat"), ("ip", "filter")]


@pytest.mark.written_fixture
def test_ipvsadm_outputs() -> None:
    assert facts.parse_ipvsadm_services(read("ipvsadm-Ln.rocky9.txt")) == 4
    assert facts.parse_ipvsadm_error(read("ipvsadm-Ln-error.debian12.txt")) == "Protocol not available"
    assert facts.parse_ipvsadm_error(read("ipvsadm-Ln.rocky9.txt")) is None


def test_bench_output_parsing_takes_the_last_json_line() -> None:
    doc = read("bench-n10000-debian12.json")
    assert facts.parse_bench_output("noise\n" + doc)["n"] == 10000
    with pytest.raises(ValueError, match="no JSON"):
        facts.parse_bench_output("Traceback (most recent call last):\n  boom")


def _result() -> BenchmarkResult:
    doc = json.loads(read("bench-n10000-debian12.json"))
    small = json.loads(json.dumps(doc))
    small["n"] = 100
    small["modes"]["iptables"]["latency"]["p50_us"] = 45.1
    small["modes"]["nftables"]["latency"]["p50_us"] = 34.8
    return BenchmarkResult(host="vm", run_id="t2", documents=[small, doc])


def test_tidy_frame_from_a_captured_run() -> None:  # bench-n10000: captured (PROVENANCE.md)
    result = _result()
    frame = result.frame()
    assert list(frame.columns) == facts.ROW_COLUMNS
    assert len(frame) == 8  # 2 N x (floor + 3 modes)
    ipvs = frame[frame["mode"] == "ipvs"]
    assert set(ipvs["status"]) == {"unavailable"} and ipvs["detail"].str.contains("IPVS").all()
    row = frame[(frame["mode"] == "iptables") & (frame["n"] == 10000)].iloc[0]
    assert row["p50_us"] == 229.7 and row["program_s"] == 2.742 and row["connections"] == 2000
    assert "IPVS" in result.unavailable()["ipvs"]


def test_shape_findings_pass_and_warn() -> None:
    frame = _result().frame()
    found = {c: (s, d) for c, s, d in shape_findings(frame)}
    assert found["iptables p50 grows with N"][0] == "pass"
    assert found["nftables p50 flat across N"][0] == "pass"
    flat = frame.copy()
    flat.loc[flat["mode"] == "iptables", "p50_us"] = 50.0
    flat.loc[(flat["mode"] == "nftables") & (flat["n"] == 10000), "p50_us"] = 80.0
    found = {c: s for c, s, _ in shape_findings(flat)}
    assert found == {"iptables p50 grows with N": "warn", "nftables p50 flat across N": "warn"}


def test_reference_figures_are_the_published_ones() -> None:
    ref = reference_frame()
    p50 = ref[ref["metric"] == "first-packet p50"].set_index(["mode", "n"])["value"]
    assert p50[("iptables", 5000)] == 47 and p50[("iptables", 10000)] == 59 and p50[("iptables", 30000)] == 272
    assert set(p50.xs("nftables").tolist()) == {12.0}
    assert ref[ref["unit"] == "s"]["value"].tolist() == [0.141]


def test_plots_have_log_axes_and_labeled_references() -> None:
    frame = _result().frame()
    fig = plots.plot_latency(frame, host="vm")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    labels = [line.get_label() for line in ax.get_lines()]
    assert any("published (k8s blog 2025)" in label for label in labels) and "iptables p50 (measured)" in labels
    fig2 = plots.plot_programming(frame)
    assert fig2.axes[0].get_yscale() == "log"
    assert any("PR #126013" in line.get_label() for line in fig2.axes[0].get_lines())


def test_node_args_carry_the_settings() -> None:
    s = Settings(grid=[10], connections=200, modes=["nftables"], nft_transaction_services=500,
                 ipvs_load_modules=True)
    args = node_args("abcd1234", 10, s)
    assert args[args.index("--connections") + 1] == "200"
    assert args[args.index("--modes") + 1] == "nftables"
    assert args[args.index("--nft-chunk") + 1] == "500" and "--load-ipvs-modules" in args


def test_empty_frame_has_columns() -> None:
    frame = BenchmarkResult(host="h", run_id="x").frame()
    assert isinstance(frame, pd.DataFrame) and frame.empty and list(frame.columns) == facts.ROW_COLUMNS


def test_merge_probe_puts_the_interleaved_latency_into_each_n() -> None:
    """Real documents: two ``--keep`` runs (N=10, 100) and the ``--probe`` pass over them."""
    docs = [json.loads((KPM / f"keep-n{n}-debian12.json").read_text()) for n in (10, 100)]
    probe = json.loads((KPM / "probe-n10-n100-debian12.json").read_text())
    assert all("latency" not in e for d in docs for e in d["modes"].values()) and "floor" not in docs[0]
    assert probe["order"] == ["floor", "iptables/10", "nftables/10", "iptables/100", "nftables/100"]
    facts.merge_probe(docs, probe)
    for d in docs:
        assert d["floor"] == probe["results"]["floor"] and d["latency_pass"]["rounds"] == 3
        for mode in ("iptables", "nftables"):
            assert d["modes"][mode]["latency"] == probe["results"][f"{mode}/{d['n']}"]
            assert len(d["modes"][mode]["latency"]["rounds_p50_us"]) == 3
        assert d["modes"]["ipvs"]["status"] == "unavailable" and "latency" not in d["modes"]["ipvs"]
    rows = {r["mode"]: r for r in facts.rows_from_doc(docs[1])}
    assert rows["nftables"]["p50_us"] == probe["results"]["nftables/100"]["p50_us"]
    assert rows["floor (no rules)"]["p50_us"] == probe["results"]["floor"]["p50_us"]
    # a kept mode the probe did not reach is an error, not a silent gap
    again = [json.loads((KPM / "keep-n10-debian12.json").read_text())]
    facts.merge_probe(again, {**probe, "results": {k: v for k, v in probe["results"].items() if k != "nftables/10"}})
    assert again[0]["modes"]["nftables"]["status"] == "error"
    assert "did not reach" in again[0]["modes"]["nftables"]["reason"]
