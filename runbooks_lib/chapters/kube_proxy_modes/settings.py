"""Parameters of the kube-proxy-modes chapter (the `kube_proxy_modes:` section of a parameter file)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Mode = Literal["iptables", "ipvs", "nftables"]

DEFAULT_GRID = [10, 100, 1000, 5000, 10000]
DEFAULT_MODES: list[Mode] = ["iptables", "nftables", "ipvs"]


class Settings(BaseModel):
    """Part A (dataplane benchmark) and Part B (in-cluster mode switch)."""

    model_config = ConfigDict(extra="forbid")

    # --- Part A: benchmark
    bench_host: str | None = Field(
        None, description='inventory host that runs the benchmark (apply only), "local" for this machine; '
                          "default: the lab's first node when the target is the lab, else none (not run)")
    grid: list[int] = Field(default_factory=lambda: list(DEFAULT_GRID),
                            description="service counts N to measure")
    endpoints: int = Field(2, ge=1, le=8, description="endpoints per service")
    connections: int = Field(1000, ge=10, le=100_000,
                             description="new TCP connections per latency point (>= 1000 for published numbers)")
    probe_rounds: int = Field(10, ge=1, le=50,
                              description="the latency probe spreads each point's connections over this many "
                                          "rounds; each round visits every (mode, N) and the floor once, so a slow "
                                          "spell of the machine falls on all of them alike")
    point_time_limit_s: float = Field(30.0, gt=0, le=600,
                                      description="time limit of one latency point (all its rounds)")
    per_n_timeout_s: float = Field(300.0, gt=0, le=3600,
                                   description="time limit of the node program for one N (all modes)")
    modes: list[Mode] = Field(default_factory=lambda: list(DEFAULT_MODES),
                              description="modes to measure; ipvs reports 'unavailable' where the kernel lacks it")
    nft_transaction_services: int = Field(
        0, ge=0, description="services per nft transaction in the full load; 0 = one transaction (as kube-proxy)")
    ipvs_load_modules: bool = Field(False, description="modprobe ip_vs on the bench host if it is not loaded")
    service_count: int | None = Field(
        None, ge=0, description="Service count to recommend for (e.g. planned growth); default: the cluster's "
                                "count read from the API, unknown when the API does not answer")

    # --- Part B: switch (switch.py, chapter.py)
    target_mode: Mode | None = Field(
        None, description="mode to switch kube-proxy to (Part B); None: show the current mode and the "
                          "recommendation, plan nothing")
    gate: Literal["full", "clusterip"] = Field(
        "full", description="health gate after each node's restart: full = kube-proxy /healthz on the node "
                            "address :10256 and a ClusterIP probe from a pod on the node; clusterip = the probe "
                            "only (when this machine cannot reach node addresses)")
    probe_image: str = Field("busybox:1.36", description="image of the per-node probe pods (needs nc)")
    pod_timeout_s: float = Field(120.0, gt=0, le=3600,
                                 description="wait for a probe pod / a replacement kube-proxy pod to be Ready")
    rollout_order: list[str] = Field(
        default_factory=list, description="node names in switch order; empty: workers first (the first is the "
                                          "canary), control-plane nodes last")

    @field_validator("grid")
    @classmethod
    def _grid(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("needs at least one service count")
        bad = [n for n in v if not 1 <= n < 60000]
        if bad:
            raise ValueError(f"service counts must be 1..59999: {bad}")
        if len(set(v)) > 64:
            raise ValueError(f"at most 64 service counts (each gets its own address block): {len(set(v))}")
        return sorted(set(v))

    @field_validator("modes")
    @classmethod
    def _modes(cls, v: list[Mode]) -> list[Mode]:
        if not v:
            raise ValueError("needs at least one mode")
        return list(dict.fromkeys(v))
