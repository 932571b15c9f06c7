"""Which kube-proxy mode for a cluster: by Service count, Kubernetes version, kernel, measurements.

Facts used (see docs/kube-proxy-modes.md): nftables mode is alpha in 1.29, beta in 1.31, GA in
1.33 and needs kernel >= 5.13 (kube-proxy's check); IPVS mode is deprecated in 1.35 (KEP-5495);
iptables stays the default mode and is fine for small clusters; its first-packet latency and its
sync time grow with the number of Services, nftables' do not.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

NFT_BETA, NFT_GA, IPVS_DEPRECATED = 31, 33, 35
NFT_KERNEL = (5, 13)
LARGE = 5000  # Services: where iptables' linear rule walk becomes visible (blog, our measurements)
MEASURED_GAIN = 1.5  # measured iptables p50 / nftables p50 at the cluster's size that counts as "large"


@dataclass
class Recommendation:
    mode: str
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)  # what it was decided from, and where that came from

    def as_text(self) -> str:
        lines = [f"Recommended mode: {self.mode}"]
        if self.inputs:
            i = self.inputs
            count = i["service_count"] if i["service_count"] is not None else "?"
            lines.append(f"  for {count} Services ({i['service_count_from']}), Kubernetes "
                         f"{i['kubernetes_version']} ({i['kubernetes_version_from']}), kernel: {i['kernel_from']}, "
                         f"measured on: {i['measured_on'] or 'nothing (no benchmark in this run)'}")
        lines += [f"- {r}" for r in self.reasons]
        lines += [f"! {w}" for w in self.warnings]
        return "\n".join(lines)


def _minor(version: str) -> int:
    m = re.match(r"v?1\.(\d+)", version.strip())
    if not m:
        raise ValueError(f"not a Kubernetes version: {version!r}")
    return int(m.group(1))


def _closest(ns: list[int], service_count: int | None) -> int:
    """The grid N nearest (on a log scale) to the Service count; the largest N when it is unknown."""
    if service_count is None:
        return max(ns)
    return min(ns, key=lambda n: abs(math.log(n) - math.log(max(service_count, 1))))


def _measured(frame: pd.DataFrame | None, service_count: int | None) -> tuple[str | None, float | None]:
    """(a sentence quoting the measured p50 at the N closest to ``service_count``, the iptables /
    nftables p50 ratio there), from the benchmark's tidy frame."""
    if frame is None or frame.empty:
        return None, None
    ok = frame[(frame["status"] == "ok") & frame["p50_us"].notna()]
    ok = ok[ok["mode"].isin(["iptables", "nftables", "ipvs"])]
    if ok.empty:
        return None, None
    n = _closest([int(x) for x in ok["n"].unique()], service_count)
    at = ok[ok["n"] == n].set_index("mode")["p50_us"]
    parts = ", ".join(f"{m} {v:.0f} µs" for m, v in at.items())
    what = f"closest to {service_count}" if service_count is not None else "the largest N; Service count unknown"
    ratio = float(at["iptables"] / at["nftables"]) if {"iptables", "nftables"} <= set(at.index) else None
    tail = f" (iptables ×{ratio:.2f} nftables)" if ratio is not None else ""
    return f"measured new-connection p50 at N={n} ({what}): {parts}{tail}", ratio


def _failed(frame: pd.DataFrame | None) -> dict[str, str]:
    """Modes that errored in the benchmark: mode -> the first reason."""
    if frame is None or frame.empty:
        return {}
    bad = frame[frame["status"] == "error"]
    return {str(m): f"N={int(g.iloc[0]['n'])}: {g.iloc[0]['detail']}" for m, g in bad.groupby("mode")}


def recommend(service_count: int | None, kubernetes_version: str, kernel: tuple[int, int, int] | None = None,
              ipvs_available: bool | None = None, current_mode: str | None = None,
              measured: pd.DataFrame | None = None) -> Recommendation:
    """The mode to run for this cluster, with the reasons and warnings.

    ``service_count`` None: unknown (no cluster API, no parameter). ``measured``: the benchmark's tidy
    frame; a mode that errored there is not recommended, and on a beta version a measured iptables
    p50 ≥ 1.5 × nftables' at the cluster's size counts like a large cluster."""
    minor = _minor(kubernetes_version)
    kernel_ok = kernel is None or tuple(kernel[:2]) >= NFT_KERNEL
    warnings: list[str] = []
    if kernel is None:
        warnings.append("kernel version unknown: nftables mode needs kernel >= 5.13 on every node")
    if current_mode == "ipvs" or ipvs_available:
        if minor >= IPVS_DEPRECATED:
            warnings.append(f"IPVS mode is deprecated since 1.{IPVS_DEPRECATED} (KEP-5495): plan the move to nftables")
        else:
            warnings.append(f"IPVS mode is deprecated from 1.{IPVS_DEPRECATED} (KEP-5495): do not adopt it now")
    sentence, ratio = _measured(measured, service_count)
    large = service_count is not None and service_count >= LARGE
    slow_iptables = ratio is not None and ratio >= MEASURED_GAIN
    count = f"{service_count} Services" if service_count is not None else "an unknown number of Services"
    reasons: list[str] = []
    if minor >= NFT_GA and kernel_ok:
        mode = "nftables"
        reasons.append(f"nftables mode is GA since 1.{NFT_GA} and this cluster runs 1.{minor}")
        reasons.append("service lookup is one verdict-map lookup: first-packet latency stays flat as Services "
                       "grow, and partial syncs program one change in ~0.1 s at 10k Services")
        if service_count is not None and not large:
            reasons.append(f"with {count} iptables would also do; nftables avoids revisiting "
                           "the choice as the cluster grows")
    elif minor >= NFT_BETA and kernel_ok and (large or slow_iptables):
        mode = "nftables"
        reasons.append(f"{count}: iptables' per-packet rule walk and full-table restores grow with the Service count"
                       if large else f"measured at this cluster's size, iptables' p50 is ×{ratio:.2f} nftables'")
        warnings.append(f"nftables mode is beta in 1.{minor} (GA in 1.{NFT_GA}): try it on a canary node first, "
                        "or upgrade")
    else:
        mode = "iptables"
        if not kernel_ok:
            reasons.append(f"kernel {'.'.join(map(str, kernel or ()))} < 5.13: kube-proxy refuses nftables mode")
        if minor < NFT_BETA:
            reasons.append(f"Kubernetes 1.{minor} predates nftables beta (1.{NFT_BETA}); iptables is the default "
                           "and supported mode")
        if large:
            warnings.append(f"{count} is where iptables latency and sync time grow: upgrade to "
                            f"≥ 1.{NFT_GA} (and kernel ≥ 5.13) and move to nftables; IPVS is not a long-term "
                            "answer (deprecated in 1.35)")
        elif service_count is None:
            warnings.append(f"Service count unknown: with ≥ {LARGE} Services iptables latency and sync time grow; "
                            "set kube_proxy_modes.service_count or connect the cluster API")
        else:
            reasons.append(f"{count} is small: iptables' linear rule walk costs little here")
    failed = _failed(measured)
    if mode in failed:
        warnings.append(f"{mode} errored in this run's benchmark ({failed[mode]}): fix that before switching; "
                        "iptables until then")
        mode = "iptables"
    if sentence:
        reasons.append(sentence)
    elif measured is None:
        reasons.append("no benchmark in this run: chosen from the version, kernel and Service count")
    return Recommendation(mode, reasons, warnings)
