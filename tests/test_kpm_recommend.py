"""The mode recommendation and the chapter's settings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from runbooks_lib.chapters.kube_proxy_modes.recommend import recommend
from runbooks_lib.chapters.kube_proxy_modes.settings import DEFAULT_GRID, Settings
from runbooks_lib.params import ParamsError, load_params

if TYPE_CHECKING:
    import pandas as pd


def test_ga_version_recommends_nftables() -> None:
    r = recommend(300, "1.33", kernel=(5, 14, 0))
    assert r.mode == "nftables" and any("GA" in x for x in r.reasons)
    assert not r.warnings


def test_old_kernel_keeps_iptables() -> None:
    r = recommend(20000, "1.34", kernel=(4, 18, 0))
    assert r.mode == "iptables"
    assert any("5.13" in x for x in r.reasons)
    assert any("20000" in w for w in r.warnings)


def test_beta_version_large_cluster_gets_nftables_with_warning() -> None:
    r = recommend(12000, "1.31.4", kernel=(6, 1, 0))
    assert r.mode == "nftables" and any("beta" in w for w in r.warnings)
    assert recommend(200, "1.31", kernel=(6, 1, 0)).mode == "iptables"


def test_ipvs_is_flagged_deprecated() -> None:
    r = recommend(8000, "v1.35", kernel=(6, 1, 0), current_mode="ipvs")
    assert r.mode == "nftables"
    assert any("KEP-5495" in w and "deprecated since 1.35" in w for w in r.warnings)
    r = recommend(8000, "1.28", kernel=(6, 1, 0), ipvs_available=True)
    assert r.mode == "iptables" and any("deprecated from 1.35" in w for w in r.warnings)


def test_unknown_kernel_is_a_warning_and_bad_version_an_error() -> None:
    assert any("kernel version unknown" in w for w in recommend(10, "1.33").warnings)
    with pytest.raises(ValueError):
        recommend(10, "latest")


def test_measured_numbers_are_quoted() -> None:
    import pandas as pd

    frame = pd.DataFrame([
        {"n": 1000, "mode": "iptables", "status": "ok", "p50_us": 56.0},
        {"n": 1000, "mode": "nftables", "status": "ok", "p50_us": 36.0},
        {"n": 10000, "mode": "iptables", "status": "ok", "p50_us": 258.0},
        {"n": 10000, "mode": "nftables", "status": "ok", "p50_us": 37.0},
    ])
    r = recommend(9000, "1.33", kernel=(6, 1, 0), measured=frame)
    assert any("N=10000" in x and "iptables 258 µs" in x for x in r.reasons)
    assert "Recommended mode: nftables" in r.as_text()


def test_settings_defaults_and_validation() -> None:
    s = Settings()
    assert s.grid == DEFAULT_GRID and s.endpoints == 2 and s.connections == 1000 and s.target_mode is None
    assert Settings(grid=[1000, 10, 10]).grid == [10, 1000]
    with pytest.raises(ValueError):
        Settings(grid=[0])
    with pytest.raises(ValueError):
        Settings(target_mode="userspace")  # type: ignore[arg-type]


def test_grid_override_through_the_parameter_file(tmp_path: Path) -> None:
    p = tmp_path / "ci.yaml"
    p.write_text("cluster_name: ci\nkube_proxy_modes:\n  bench_host: local\n", encoding="utf-8")
    params = load_params(p, ["kube_proxy_modes.grid=[10,100]", "kube_proxy_modes.target_mode=nftables"])
    assert params.kube_proxy_modes.grid == [10, 100] and params.kube_proxy_modes.target_mode == "nftables"
    with pytest.raises(ParamsError, match="kube_proxy_modes.conections"):
        load_params(p, ["kube_proxy_modes.conections=5"])


def _frame(rows: list[tuple[int, str, str, float | None]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame([{"n": n, "mode": m, "status": s, "p50_us": p, "detail": "nft -f: exit 1" if s == "error"
                          else ""} for n, m, s, p in rows])


def test_a_mode_that_errored_in_the_benchmark_is_not_recommended() -> None:
    frame = _frame([(100, "iptables", "ok", 60.0), (100, "nftables", "ok", 55.0),
                    (1000, "iptables", "ok", 90.0), (1000, "nftables", "error", None)])
    r = recommend(300, "1.33", kernel=(6, 1, 0), measured=frame)
    assert r.mode == "iptables"
    assert any("nftables errored in this run's benchmark (N=1000: nft -f: exit 1)" in w for w in r.warnings)


def test_measured_gap_at_the_clusters_size_counts_on_a_beta_version() -> None:
    frame = _frame([(100, "iptables", "ok", 60.0), (100, "nftables", "ok", 55.0),
                    (1000, "iptables", "ok", 120.0), (1000, "nftables", "ok", 56.0)])
    r = recommend(1500, "1.31", kernel=(6, 1, 0), measured=frame)
    assert r.mode == "nftables" and any("×2.14" in x for x in r.reasons)
    assert any("N=1000 (closest to 1500)" in x for x in r.reasons)
    assert recommend(150, "1.31", kernel=(6, 1, 0), measured=frame).mode == "iptables"  # ×1.09 at N=100


def test_unknown_service_count_is_said_not_assumed() -> None:
    r = recommend(None, "1.31", kernel=(6, 1, 0))
    assert r.mode == "iptables" and any("Service count unknown" in w for w in r.warnings)
    assert recommend(None, "1.34", kernel=(6, 1, 0)).mode == "nftables"
