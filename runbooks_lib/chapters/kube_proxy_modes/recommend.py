"""Which kube-proxy mode for a cluster: by Service count, Kubernetes version, kernel, measurements.

Facts used (see docs/kube-proxy-modes.md): nftables mode is alpha in 1.29, beta in 1.31, GA in
1.33 and needs kernel >= 5.13 (kube-proxy's check); IPVS mode is deprecated in 1.35 (KEP-5495);
iptables stays the default mode and is fine for small clusters; its first-packet latency and its
sync time grow with the number of Services, nftables' do not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

NFT_BETA, NFT_GA, IPVS_DEPRECATED = 31, 33, 35
NFT_KERNEL = (5, 13)
LARGE = 5000  # Services: where iptables' linear rule walk becomes visible (blog, our measurements)


@dataclass
class Recommendation:
    mode: str
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_text(self) -> str:
        lines = [f"Recommended mode: {self.mode}"] + [f"- {r}" for r in self.reasons]
        lines += [f"! {w}" for w in self.warnings]
        return "\n".join(lines)


def _minor(version: str) -> int:
    m = re.match(r"v?1\.(\d+)", version.strip())
    if not m:
        raise ValueError(f"not a Kubernetes version: {version!r}")
    return int(m.group(1))


def _measured(frame: pd.DataFrame | None, service_count: int) -> str | None:
    """A sentence comparing measured p50 at the N closest to ``service_count``."""
    if frame is None or frame.empty:
        return None
    ok = frame[(frame["status"] == "ok") & frame["p50_us"].notna()]
    ok = ok[ok["mode"].isin(["iptables", "nftables", "ipvs"])]
    if ok.empty:
        return None
    n = min(ok["n"].unique(), key=lambda x: abs(int(x) - service_count))
    at = ok[ok["n"] == n].set_index("mode")["p50_us"]
    parts = ", ".join(f"{m} {v:.0f} µs" for m, v in at.items())
    return f"measured new-connection p50 at N={int(n)} (closest to {service_count}): {parts}"


def recommend(service_count: int, kubernetes_version: str, kernel: tuple[int, int, int] | None = None,
              ipvs_available: bool | None = None, current_mode: str | None = None,
              measured: pd.DataFrame | None = None) -> Recommendation:
    """The mode to run for this cluster, with the reasons and warnings."""
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
    large = service_count >= LARGE
    reasons: list[str] = []
    if minor >= NFT_GA and kernel_ok:
        mode = "nftables"
        reasons.append(f"nftables mode is GA since 1.{NFT_GA} and this cluster runs 1.{minor}")
        reasons.append("service lookup is one verdict-map lookup: first-packet latency stays flat as Services "
                       "grow, and partial syncs program one change in ~0.1 s at 10k Services")
        if not large:
            reasons.append(f"with {service_count} Services iptables would also do; nftables avoids revisiting "
                           "the choice as the cluster grows")
    elif minor >= NFT_BETA and kernel_ok and large:
        mode = "nftables"
        reasons.append(f"{service_count} Services: iptables' per-packet rule walk and full-table restores grow "
                       "with the Service count")
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
            warnings.append(f"{service_count} Services is where iptables latency and sync time grow: upgrade to "
                            f"≥ 1.{NFT_GA} (and kernel ≥ 5.13) and move to nftables; IPVS is not a long-term "
                            "answer (deprecated in 1.35)")
        else:
            reasons.append(f"{service_count} Services is small: iptables' linear rule walk costs little here")
    sentence = _measured(measured, service_count)
    if sentence:
        reasons.append(sentence)
    return Recommendation(mode, reasons, warnings)
