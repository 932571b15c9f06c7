"""Chapter kube-proxy-modes: iptables vs IPVS vs nftables.

Part A (this package): a measured dataplane benchmark on a node (``benchmark``, ``node_bench``),
published reference figures (``reference``), plots (``plots``) and a recommendation
(``recommend``). Part B (``switch``) switches kube-proxy's mode in a cluster; ``chapter`` is the
notebook's glue (what runs in plan and apply, and the checks). Both import the cluster client, so
they are not imported here (Part A stays light):
``from runbooks_lib.chapters.kube_proxy_modes import chapter, switch``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import lazy_exports

if TYPE_CHECKING:  # the names, typed; at run time imported on first use (below)
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

_EXPORTS = {
    "BenchmarkResult": "benchmark",
    "cleanup": "benchmark",
    "leftovers": "benchmark",
    "mode_checks": "benchmark",
    "print_progress": "benchmark",
    "run_benchmark": "benchmark",
    "shape_findings": "benchmark",
    "Recommendation": "recommend",
    "recommend": "recommend",
    "reference_frame": "reference",
}
__all__ = ["BenchmarkResult", "cleanup", "leftovers", "mode_checks", "print_progress", "run_benchmark", "shape_findings", "Recommendation", "recommend", "reference_frame"]

__getattr__ = lazy_exports(__name__, _EXPORTS)
