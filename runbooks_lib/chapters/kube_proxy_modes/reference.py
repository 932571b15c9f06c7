"""Published reference figures, shown beside our measurements and always labeled as reference."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

BLOG = 'Kubernetes blog, "NFTables mode for kube-proxy" (2025)'
PR_126013 = "kubernetes/kubernetes PR #126013 ([kube-proxy: nftables] Implement partial sync, v1.31)"

#: (source, mode, N services, metric, value, unit)
REFERENCE: list[tuple[str, str, int, str, float, str]] = [
    (BLOG, "iptables", 5000, "first-packet p50", 47.0, "µs"),
    (BLOG, "iptables", 10000, "first-packet p50", 59.0, "µs"),
    (BLOG, "iptables", 30000, "first-packet p50", 272.0, "µs"),
    (BLOG, "nftables", 5000, "first-packet p50", 12.0, "µs"),
    (BLOG, "nftables", 10000, "first-packet p50", 12.0, "µs"),
    (BLOG, "nftables", 30000, "first-packet p50", 12.0, "µs"),
    (PR_126013, "nftables", 10000, "add 1 service (partial sync)", 0.141, "s"),
]


def reference_frame() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(REFERENCE, columns=["source", "mode", "n", "metric", "value", "unit"])
