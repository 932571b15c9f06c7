"""Chapter kube-proxy-modes: iptables vs IPVS vs nftables.

Part A (this package): a measured dataplane benchmark on a node (``benchmark``, ``node_bench``),
published reference figures (``reference``), plots (``plots``) and a recommendation
(``recommend``). Part B (``switch``) switches kube-proxy's mode in a cluster; ``chapter`` is the
notebook's glue (what runs in plan and apply, and the checks). Both import the cluster client, so
they are not imported here (Part A stays light):
``from runbooks_lib.chapters.kube_proxy_modes import chapter, switch``.
"""

from __future__ import annotations

from .benchmark import (
    BenchmarkResult,
    cleanup,
    leftovers,
    mode_checks,
    print_progress,
    run_benchmark,
    shape_findings,
)
from .recommend import Recommendation, recommend
from .reference import reference_frame

__all__ = [
    "BenchmarkResult", "Recommendation", "cleanup", "leftovers", "mode_checks", "print_progress", "recommend",
    "reference_frame", "run_benchmark", "shape_findings",
]
