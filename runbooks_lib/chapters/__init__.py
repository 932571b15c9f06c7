"""The chapter registry: stable names, numbers, notebooks, one-line descriptions, parameter sections.

Each chapter's parameter section is the ``Settings`` model of ``chapters/<section>/settings.py``,
imported when first asked for (:attr:`Chapter.settings`); the parameter schema is built from this list,
so a new chapter is one entry here and one ``settings.py``.
"""

from __future__ import annotations

import importlib
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def _notebooks() -> Path:
    """A checkout's notebooks/ (beside pyproject.toml), else the copy an installed wheel put under
    ``<prefix>/share/k8s-runbooks/notebooks`` (pyproject's data-files)."""
    checkout = Path(__file__).resolve().parent.parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "notebooks").is_dir():
        return checkout / "notebooks"
    shared = [Path(sysconfig.get_path("data")), Path(sys.prefix)]
    return next((d for d in (p / "share" / "k8s-runbooks" / "notebooks" for p in shared) if d.is_dir()),
                shared[0] / "share" / "k8s-runbooks" / "notebooks")


NOTEBOOKS = _notebooks()


@dataclass(frozen=True)
class Chapter:
    number: int
    name: str
    description: str
    #: what plan mode does and never does (README chapter table and every report header say it)
    plan_does: str = "reads state and shows what apply would change; changes nothing"
    #: what apply does, and which of it needs confirm=<cluster name>
    apply_does: str = ""

    @property
    def section(self) -> str:
        """The parameter file's section and the package under ``chapters/`` ("etcd_backup")."""
        return self.name.replace("-", "_")

    @property
    def settings(self) -> type[BaseModel]:
        """The chapter's parameter section model, ``chapters/<section>/settings.py``'s ``Settings``."""
        module = importlib.import_module(f"{__name__}.{self.section}.settings")
        model: type[BaseModel] = module.Settings
        return model

    @property
    def notebook(self) -> Path:
        return NOTEBOOKS / f"{self.number:02d}-{self.name}.ipynb"

    @property
    def built(self) -> bool:
        return self.notebook.exists()

    def does(self, mode: str) -> str:
        """What ``mode`` does for this chapter, e.g. "plan: reads …; changes nothing"."""
        text = self.plan_does if mode == "plan" else self.apply_does
        return f"{mode}: {text}" if text else ""


CHAPTERS = [
    Chapter(1, "system-init", "prepare nodes for kubeadm: packages, swap, SELinux, firewall, modules, "
            "sysctl, chrony, containerd, crictl",
            plan_does="reads every node (one command per node); changes nothing",
            apply_does="converges each node and re-reads it; with confirm: masks swap, rewrites /etc/hosts, "
            "restarts chrony and containerd"),
    Chapter(2, "kubeadm", "kubeadm config, preflight, init, kubeconfig, join workers and control planes",
            plan_does="renders and validates the kubeadm config, runs kubeadm's preflight checks on every node, "
            "audits the PKI and reads the cluster API; changes nothing",
            apply_does="with confirm: resets the named hosts, kubeadm init, then joins control planes one at a "
            "time behind a readiness gate and workers in parallel (unavailable where kubeadm is not installed: "
            "the exact commands are listed)"),
    Chapter(3, "kube-proxy-modes", "iptables vs IPVS vs nftables: dataplane benchmark, safe mode switch",
            plan_does="reads node and cluster facts, shows the benchmark and the mode switch it would run; "
            "creates nothing",
            apply_does="runs the dataplane benchmark in throwaway network namespaces on the benchmark host "
            "(kube_proxy_modes.bench_host, or the lab's first node; elsewhere not run until named); "
            "with confirm: switches kube-proxy's mode (restarts kube-proxy) behind a health gate"),
    Chapter(4, "calico-ips", "Calico install check, fixed pod IPs, floating IPs, network verification",
            plan_does="reads the Calico install, IPPools, FelixConfiguration and the CNI conflist on every node "
            "over SSH; judges fixed and floating IP requests (refusals before any request); dry-runs the objects; "
            "changes nothing",
            apply_does="installs from the operator's calico.yaml and applies the annotated fixed/floating IP "
            "workloads; runs the net-tools probes (deleted after); with confirm: enables floating IPs, restarting "
            "calico-node node by node behind a gate"),
    Chapter(5, "metrics-server", "deploy/verify metrics-server, metrics API, kubectl top, HPA readiness",
            plan_does="reads versions, arguments, both TLS legs (kubelet certificates over SSH, CSRs, APIService, "
            "aggregation flags) and the Metrics API; dry-runs the manifest's objects; changes nothing",
            apply_does="installs/upgrades from the operator's manifest and approves kubelet-serving CSRs whose "
            "SANs match their node; with confirm: enables serverTLSBootstrap, restarting kubelets node by node"),
    Chapter(6, "openebs-storage", "OpenEBS LocalPV hostpath/device, cStor pools, PVC trials, fio",
            plan_does="reads the installed release (Helm's Secret), the nodes over SSH and the cluster's "
            "storage; shows the install plan and the trials it would run; changes nothing",
            apply_does="runs fio on each node under the hostpath base path (installs the distro package fio "
            "where missing) and applies a given rendered manifest; with confirm: PVC + pod trials (deleted "
            "after by run label), the legacy cStor pool and the seed's StatefulSet trial on it (set, Service "
            "and claims deleted after)"),
    Chapter(7, "etcd-backup", "etcd snapshot, verify, ship, retain, restore drill, restore; scheduled",
            plan_does="reads etcd's health and the existing snapshots, shows what a backup and retention "
            "would do; writes and deletes nothing",
            apply_does="takes, verifies and ships a new snapshot (additive), drills a restore in a "
            "throwaway etcd, moves snapshots that fail their re-check to corrupt/ and removes interrupted "
            "saves' .part files; with confirm: retention deletes and the restore"),
]


def find(name_or_number: str) -> Chapter:
    """A chapter by name ("etcd-backup"), number ("7", "07") or notebook stem ("07-etcd-backup")."""
    key = name_or_number.strip().lower()
    for ch in CHAPTERS:
        if key in (ch.name, str(ch.number), f"{ch.number:02d}", ch.notebook.stem):
            return ch
    names = ", ".join(c.name for c in CHAPTERS)
    raise KeyError(f"unknown chapter {name_or_number!r}; one of: {names}")


def mode_does(name: str, mode: str) -> str:
    """:meth:`Chapter.does` for a chapter name; "" for a notebook outside the registry."""
    try:
        return find(name).does(mode)
    except KeyError:
        return ""


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A chapter package's module ``__getattr__``: ``exports`` (name -> submodule) imported on first use,
    and any submodule by its name, so that reading the parameter schema (which imports the package's
    ``settings``) loads none of the chapter's steps."""
    def getattr_(name: str) -> Any:
        module = f"{package}.{exports.get(name, name)}"
        try:
            found = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        return getattr(found, name) if name in exports else found
    return getattr_
