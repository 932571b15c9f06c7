"""The key figures box of a report header, read from what a chapter recorded with ``run.figure``.

Known chapters get their headline figures picked and labelled (kube-proxy-modes: recommended
mode, p50 at the largest N per mode; etcd-backup: snapshot, size, revision, keys, where shipped,
drill); any other chapter shows its scalar figures. A figure the run did not record is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .display import cell_text, column_title, human_bytes

Figures = list[tuple[str, str]]


def _kube_proxy_modes(f: dict[str, Any]) -> Figures:
    out: Figures = []
    rec = f.get("kpm_recommendation") or {}
    if rec.get("mode"):
        out.append(("recommended mode", str(rec["mode"])))
    cur = f.get("kpm_current_mode") or {}
    if cur.get("mode"):
        out.append(("current mode", f"{cur['mode']} ({cur.get('services', '?')} Services, "
                                    f"{len(cur.get('nodes') or [])} nodes)"))
    for mode, by_n in (f.get("kpm_p50_us") or {}).items():
        if isinstance(by_n, dict) and by_n:
            n = max(by_n, key=lambda k: int(k))
            out.append((f"{mode}: p50 at N={n}", f"{cell_text(by_n[n])} µs"))
    plan = f.get("kpm_benchmark_plan") or {}
    if plan and not plan.get("runs", True):
        out.append(("benchmark", f"not run (plan); would run N={cell_text(plan.get('grid'))} on {plan.get('host')}"))
    if f.get("kpm_unavailable"):
        out.append(("unavailable", cell_text(f["kpm_unavailable"])))
    if f.get("kpm_duration_s") is not None:
        out.append(("benchmark duration", f"{cell_text(f['kpm_duration_s'], 'duration_s')} s"))
    return out


def _etcd_backup(f: dict[str, Any]) -> Figures:
    out: Figures = []
    if f.get("snapshot"):
        out.append(("snapshot", str(f["snapshot"])))
    if f.get("size_bytes") is not None:
        out.append(("size", human_bytes(float(f["size_bytes"]))))
    elif f.get("db_size_bytes") is not None:
        out.append(("etcd database size", human_bytes(float(f["db_size_bytes"]))))
    for key, label in (("revision", "revision"), ("keys", "keys"), ("total_keys", "keys (status)"),
                       ("shipped_to", "shipped to"), ("drill", "restore drill"), ("verified", "verified"),
                       ("etcd_version", "etcd version")):
        if f.get(key) is not None:
            out.append((label, cell_text(f[key])))
    took = [(k[:-2], v) for k, v in f.items() if k.endswith("_s") and isinstance(v, (int, float))]
    if took:
        out.append(("durations", ", ".join(f"{k} {cell_text(v, 'x_s')} s" for k, v in took)))
    return out


def _system_init(f: dict[str, Any]) -> Figures:
    si = f.get("system_init") or {}
    out: Figures = []
    if si:
        out.append(("nodes", cell_text(si.get("nodes"))))
        out.append(("changes pending (drift)", cell_text(si.get("drift"))))
        out.append(("not compliant (apply cannot fix)", cell_text(si.get("non_compliant"))))
        out.append(("survey wall time", f"{cell_text(si.get('wall_s'), 'wall_s')} s"))
    na = f.get("na_in_lab") or {}
    if na.get("checks"):
        out.append(("n/a in lab", f"{na['checks']} checks on {len(na.get('hosts') or [])} hosts"))
    return out


def _generic(f: dict[str, Any]) -> Figures:
    out: Figures = []
    for key, value in f.items():
        if isinstance(value, (str, int, float, bool)) and len(str(value)) <= 120:
            out.append((column_title(key), cell_text(value, key)))  # the unit is in the label: "survey wall (s)"
    return out


_PICKERS: dict[str, Callable[[dict[str, Any]], Figures]] = {
    "kube-proxy-modes": _kube_proxy_modes, "etcd-backup": _etcd_backup, "system-init": _system_init,
}


def key_figures(chapter: str, figures: dict[str, Any]) -> Figures:
    """(label, value) pairs for the header box; empty when the run recorded none."""
    if not isinstance(figures, dict) or not figures:
        return []
    picker = _PICKERS.get(chapter, _generic)
    return picker(figures) or _generic(figures)
