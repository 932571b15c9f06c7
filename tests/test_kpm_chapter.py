"""Chapter 03's glue (chapter.py) without a lab: what plan and apply do with the benchmark, how a
mode's failure becomes a check, the recommendation's inputs from the cluster API (the API double),
and errors recorded as checks instead of raised."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from runbooks_lib.chapters.kube_proxy_modes import chapter, facts
from runbooks_lib.chapters.kube_proxy_modes.benchmark import BenchmarkResult
from runbooks_lib.lab.apiserver import ApiDouble, free_port
from runbooks_lib.run import Run
from runbooks_lib.verdict import verdict_for

KPM = Path(__file__).resolve().parent / "fixtures" / "kpm"


def _run(tmp_path: Path, kubeconfig: Path | None = None, hosts: list[dict[str, Any]] | None = None,
         mode: str = "plan", only_hosts: list[str] | None = None, **section: Any) -> Run:
    params: dict[str, Any] = {"cluster_name": "prod", "mode": mode, "kube_proxy_modes": section,
                              "only_hosts": only_hosts or []}
    if kubeconfig is not None:
        params["kube"] = {"kubeconfig": str(kubeconfig), "request_timeout": 10}
    tmp_path.mkdir(parents=True, exist_ok=True)
    if hosts is not None:
        known = tmp_path / "known_hosts"
        known.write_text("", encoding="utf-8")  # no key: any SSH connection would be refused
        params.update(hosts=hosts, ssh={"known_hosts": str(known), "connect_timeout": 3})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return Run.start("kube-proxy-modes", str(path), [], str(tmp_path / "run"))


def _prod_hosts() -> list[dict[str, Any]]:
    """Two production-like hosts on a loopback port where nothing listens: any command would fail."""
    port = free_port()
    return [{"name": "prod-1", "address": "127.0.0.1", "port": port, "roles": ["control-plane"]},
            {"name": "prod-2", "address": "127.0.0.1", "port": port, "roles": ["worker"]}]


def _checks(run: Run) -> dict[str, tuple[str, str, str]]:
    return {c.check: (c.host, c.status, c.detail) for c in run.checks}


def _commands(run: Run) -> list[str]:
    return [r.command for r in run.recorder.records if r.kind == "command"]


def test_plan_runs_no_benchmark_and_says_what_apply_would_run(tmp_path: Path) -> None:
    run = _run(tmp_path, hosts=_prod_hosts(), bench_host="prod-2", grid=[10, 1000], connections=500)
    assert chapter.dataplane_benchmark(run, run.params.kube_proxy_modes, progress=None) is None
    host, status, detail = _checks(run)["kube-proxy benchmark"]
    assert (host, status) == ("prod-2", "info")
    assert detail.startswith("not run in plan mode") and "grid N=10, 1000" in detail and "on prod-2" in detail
    assert "500 new connections" in detail
    assert _commands(run) == []  # nothing was contacted: no SSH, no root benchmark
    assert run.figures["kpm_benchmark_plan"]["runs"] is False and verdict_for(run.checks) == "PASS"


def test_production_target_without_bench_host_is_never_benchmarked(tmp_path: Path) -> None:
    """Today's default was the first inventory host; on a non-lab target there is none now."""
    plan = _run(tmp_path, hosts=_prod_hosts())
    chapter.dataplane_benchmark(plan, plan.params.kube_proxy_modes, progress=None)
    assert "nowhere: kube_proxy_modes.bench_host is not set" in _checks(plan)["kube-proxy benchmark"][2]
    apply = _run(tmp_path / "apply", hosts=_prod_hosts(), mode="apply")
    assert chapter.dataplane_benchmark(apply, apply.params.kube_proxy_modes, progress=None) is None
    assert _checks(apply)["kube-proxy benchmark"][1:] == (
        "warn", "not run: kube_proxy_modes.bench_host is not set and the target is not the lab; name a spare node "
                "(or local) to benchmark on")
    assert _commands(apply) == []


def test_unselected_bench_host_is_an_error_check_not_a_traceback(tmp_path: Path) -> None:
    run = _run(tmp_path, hosts=_prod_hosts(), mode="apply", bench_host="prod-2", only_hosts=["prod-1"])
    assert chapter.dataplane_benchmark(run, run.params.kube_proxy_modes, progress=None) is None
    host, status, detail = _checks(run)["kube-proxy benchmark host"]
    assert (host, status) == ("prod-2", "error") and "not among the selected hosts: prod-1" in detail
    assert run.exit_code == 1 and _commands(run) == []


def test_unreachable_bench_host_in_apply_is_a_check_under_its_step(tmp_path: Path) -> None:
    run = _run(tmp_path, hosts=_prod_hosts(), mode="apply", bench_host="prod-1")
    result = chapter.dataplane_benchmark(run, run.params.kube_proxy_modes, progress=None)
    assert result is not None and result.documents == [] and result.errors[0].startswith("unreachable:")
    host, status, _detail = _checks(run)["kube-proxy benchmark ran"]
    assert (host, status) == ("prod-1", "unreachable") and run.exit_code == 3


def _measured(mutate: Any = None) -> BenchmarkResult:
    """Two real --keep documents and the real probe over them (tests/fixtures/kpm)."""
    docs = [json.loads((KPM / f"keep-n{n}-debian12.json").read_text()) for n in (10, 100)]
    probe = json.loads((KPM / "probe-n10-n100-debian12.json").read_text())
    facts.merge_probe(docs, probe)
    if mutate:
        mutate(docs)
    return BenchmarkResult("vm", "t1", documents=docs, probe=probe, duration_s=3.0)


def test_a_mode_that_errored_at_one_n_fails_the_run(tmp_path: Path) -> None:
    def nft_error(docs: list[dict[str, Any]]) -> None:
        docs[1]["modes"]["nftables"].update(status="error", reason="nft -f -: exit 1: Error: Could not process rule")

    ok_run = _run(tmp_path / "ok")
    chapter.record(ok_run, _measured())
    ok = _checks(ok_run)
    assert ok["kube-proxy benchmark: nftables"][1] == "pass" and ok["kube-proxy benchmark: iptables"][1] == "pass"
    assert ok["kube-proxy benchmark: ipvs"][1] == "n/a"  # no IPVS in this kernel: unavailable, not failed
    assert verdict_for(ok_run.checks) == "PASS"

    bad_run = _run(tmp_path / "bad")
    chapter.record(bad_run, _measured(nft_error))
    host, status, detail = _checks(bad_run)["kube-proxy benchmark: nftables"]
    assert (host, status) == ("vm", "fail") and "N=100: nft -f -: exit 1" in detail and "1 of 2 N" in detail
    assert verdict_for(bad_run.checks) == "FAIL" and bad_run.exit_code == 1


def test_ipvs_available_but_erroring_fails_and_unmeasured_modes_fail(tmp_path: Path) -> None:
    def ipvs_error(docs: list[dict[str, Any]]) -> None:
        for d in docs:
            d["modes"]["ipvs"].update(status="error", reason="ipvsadm-restore: exit 2: Memory allocation problem")
        del docs[0]["modes"]["iptables"]["latency"]  # the probe never measured it

    run = _run(tmp_path)
    chapter.record(run, _measured(ipvs_error))
    checks = _checks(run)
    assert checks["kube-proxy benchmark: ipvs"][1] == "fail" and "2 of 2 N" in checks["kube-proxy benchmark: ipvs"][2]
    assert checks["kube-proxy benchmark: iptables"][1:] == ("fail", "errored at 1 of 2 N: N=10: no latency measured")
    assert run.figures["kpm_timed"] == {} or "ipvs" in run.figures["kpm_timed"]


@pytest.fixture
def double_133(tmp_path: Path) -> Iterator[Path]:
    """The API double reporting Kubernetes v1.33.2 (the parameters say 1.30)."""
    double = ApiDouble(version="v1.33.2", rollout_step_s=0.1, pod_ready_s=0.1)
    double.start()
    try:
        yield double.write_kubeconfig(tmp_path / "kubeconfig-133")
    finally:
        double.stop()


def test_recommendation_uses_the_clusters_service_count_and_version(tmp_path: Path, double_133: Path) -> None:
    run = _run(tmp_path, double_133)
    cluster = chapter.connect(run)
    chapter.read(run, cluster)
    assert cluster.service_count == 3  # kubernetes, kube-dns, metrics-server in the double
    rec = chapter.recommendation(run, cluster, run.params.kube_proxy_modes, None)
    assert rec.mode == "nftables"  # from the API's v1.33 (GA); the parameters' 1.30 would give iptables
    assert rec.inputs["service_count"] == 3 and rec.inputs["service_count_from"] == "cluster API"
    assert rec.inputs["kubernetes_version"] == "v1.33.2" and rec.inputs["kubernetes_version_from"] == "cluster API"
    text = rec.as_text()
    assert "for 3 Services (cluster API), Kubernetes v1.33.2 (cluster API)" in text and "10000" not in text
    assert "with 3 Services iptables would also do" in text
    assert run.figures["kpm_recommendation"]["service_count"] == 3


def test_recommendation_quotes_the_measurement_at_the_clusters_size(tmp_path: Path, double_133: Path) -> None:
    run = _run(tmp_path, double_133, service_count=80)
    cluster = chapter.connect(run)
    chapter.read(run, cluster)
    rec = chapter.recommendation(run, cluster, run.params.kube_proxy_modes, _measured())
    assert rec.inputs["service_count_from"] == "kube_proxy_modes.service_count; the cluster has 3"
    assert any(r.startswith("measured new-connection p50 at N=100 (closest to 80)") for r in rec.reasons)
    assert rec.inputs["measured_on"] == "vm"


def test_without_the_api_the_service_count_is_unknown(tmp_path: Path) -> None:
    dead = tmp_path / "dead.kubeconfig"
    double = ApiDouble()
    double.start()
    try:
        doc = yaml.safe_load(double.write_kubeconfig(tmp_path / "kc").read_text())
    finally:
        double.stop()
    doc["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    dead.write_text(yaml.safe_dump(doc))
    run = _run(tmp_path, dead)
    cluster = chapter.connect(run)
    rec = chapter.recommendation(run, cluster, run.params.kube_proxy_modes, None)
    assert rec.inputs["service_count"] is None and rec.inputs["kubernetes_version_from"].startswith("parameters")
    assert any("Service count unknown" in w for w in rec.warnings) and "10000" not in rec.as_text()


def test_a_failed_read_is_an_error_check_with_its_traceback_under_the_step(tmp_path: Path, api_double: Any) -> None:
    kubeconfig, _url, _double = api_double
    run = _run(tmp_path, kubeconfig)
    cluster = chapter.connect(run)
    assert cluster.kc is not None
    cluster.kc.delete("ConfigMap", "kube-proxy", "kube-system")
    assert chapter.read(run, cluster) is None  # recorded, not raised
    host, status, detail = _checks(run)["kube-proxy mode (current)"]
    assert (host, status) == ("cluster", "error") and "kube-proxy" in detail
    errors = [r for r in run.recorder.records if r.kind == "error"]
    assert len(errors) == 1 and errors[0].step == "kube-proxy mode (current)"
    assert "Traceback (most recent call last)" in errors[0].stderr
    assert run.exit_code == 1
