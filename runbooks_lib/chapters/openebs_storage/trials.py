"""Storage trials: fio on each node's hostpath filesystem over SSH, and a PVC + pod per class
through the API (write, read back, checksum; then cleanup by run label)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ... import kube
from ...kube import verify
from ...transport import Transport
from . import fio
from .settings import Settings

Obj = dict[str, Any]
TRIAL_FILE = "runbooks-trial.txt"
#: writes a file, syncs, reads it back and prints its checksum and the node's path-free marker
POD_SCRIPT = (f"echo runbooks-$(hostname) > /data/{TRIAL_FILE} && sync && "
              f"sha256sum /data/{TRIAL_FILE} && sleep 3600")


@dataclass
class NodeFio:
    host: str
    fio_version: str = ""
    results: list[fio.JobResult] = field(default_factory=list)
    duration_s: float = 0.0
    installed: str = ""   # what was installed to run it ("" when fio was there)
    error: str = ""


def install_fio(t: Transport) -> str:
    """Install the distro package fio (apply only); the package manager's command that did it."""
    cmd = ("if command -v apt-get >/dev/null; then DEBIAN_FRONTEND=noninteractive apt-get -qq update && "
           "DEBIAN_FRONTEND=noninteractive apt-get -qq install -y fio >/dev/null && echo apt-get; "
           "else dnf -q -y install fio >/dev/null && echo dnf; fi")
    res = t.run(cmd, sudo=True, timeout=300)
    if not res.ok:
        raise RuntimeError(f"installing fio failed: {res.stderr.strip()[-300:]}")
    return f"fio ({res.stdout.strip()})"


def node_fio(t: Transport, s: Settings, install: bool) -> NodeFio:
    """Run the fio jobs in a temporary directory under the base path; nothing is left behind."""
    out = NodeFio(t.name)
    t0 = time.monotonic()
    budget = (s.fio_runtime_s + 1) * len(fio.JOBS) + 180
    res = t.run(fio.node_command(s.base_path, s.fio_runtime_s, s.fio_size), sudo=True, timeout=budget)
    if res.stdout.strip() == "absent" and install:
        out.installed = install_fio(t)
        res = t.run(fio.node_command(s.base_path, s.fio_runtime_s, s.fio_size), sudo=True, timeout=budget)
    out.duration_s = round(time.monotonic() - t0, 1)
    if res.stdout.strip() == "absent":
        out.error = "fio not installed (Debian/Rocky package fio; fio_install: true installs it in apply)"
        return out
    if not res.ok:
        out.error = f"fio exited {res.exit_code}: {res.stderr.strip()[-300:]}"
        return out
    out.fio_version, out.results = fio.parse(res.stdout)
    return out


def leftovers(t: Transport, base: str) -> str:
    """fio directories left under the base path (or its parent): should be none."""
    res = t.run(f'p="{base}"; while [ ! -e "$p" ]; do p="$(dirname "$p")"; done; '
                f'ls -d "$p"/{fio.DIR_PREFIX}* 2>/dev/null | wc -l', sudo=True, timeout=30)
    return res.stdout.strip()


def pvc_manifest(name: str, ns: str, sc: str, size: str, run_id: str) -> Obj:
    return kube.with_run_label({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                "metadata": {"name": name, "namespace": ns},
                                "spec": {"storageClassName": sc, "accessModes": ["ReadWriteOnce"],
                                         "resources": {"requests": {"storage": size}}}}, run_id)


def pod_manifest(name: str, ns: str, claim: str, node: str | None, image: str, run_id: str) -> Obj:
    """The consumer pod: a nodeSelector (never nodeName, which bypasses the scheduler and leaves a
    WaitForFirstConsumer PVC Pending forever)."""
    spec: Obj = {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "trial", "image": image, "command": ["sh", "-c", POD_SCRIPT],
                                 "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                                 "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                                               "limits": {"memory": "32Mi"}}}],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    return kube.with_run_label({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
                                "spec": spec}, run_id)


@dataclass
class PvcTrial:
    sc: str
    pvc: str
    pod: str
    created: list[str] = field(default_factory=list)
    bound: verify.VerifyResult | None = None
    pod_ready: verify.VerifyResult | None = None
    checksum: str = ""
    pv_path: str = ""
    node: str = ""
    fio_version: str = ""
    fio: list[fio.JobResult] = field(default_factory=list)
    fio_error: str = ""


def pvc_trial(kc: Any, s: Settings, sc: str, ns: str, run_id: str) -> PvcTrial:
    """Create the PVC and its consumer pod, wait (by watch) for Bound and Ready, read the checksum
    and the PV's path/node. Cleanup is separate (cleanup by run label, confirmed)."""
    short = run_id[-12:].lower().strip("-.") or "run"
    t = PvcTrial(sc, f"rb-trial-{sc}-{short}"[:63].rstrip("-."), f"rb-trial-{sc}-{short}-pod"[:63].rstrip("-."))
    kc.create(pvc_manifest(t.pvc, ns, sc, s.trial_size, run_id))
    t.created.append(f"PersistentVolumeClaim {ns}/{t.pvc}")
    kc.create(pod_manifest(t.pod, ns, t.pvc, s.trial_node, s.trial_image, run_id))
    t.created.append(f"Pod {ns}/{t.pod}")
    t.bound = verify.wait(kc, verify.pvc_bound(t.pvc, ns), timeout=s.pvc_timeout_s)
    if not t.bound.ok:
        return t
    t.pod_ready = verify.wait(kc, verify.condition_true("Pod", t.pod, ns, "Ready"), timeout=s.pvc_timeout_s)
    pvc = kc.get("PersistentVolumeClaim", t.pvc, ns)
    pv = kc.get("PersistentVolume", pvc["spec"]["volumeName"])
    t.pv_path = str(((pv.get("spec") or {}).get("local") or (pv.get("spec") or {}).get("hostPath") or {})
                    .get("path", ""))
    terms = (((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {}).get("nodeSelectorTerms") or []
    values = [v for term in terms for e in term.get("matchExpressions") or [] for v in e.get("values") or []]
    t.node = values[0] if values else ""
    if t.pod_ready.ok:
        got = kc.exec(t.pod, ns, ["sha256sum", f"/data/{TRIAL_FILE}"], timeout=30)
        t.checksum = got.stdout.split()[0] if got.ok and got.stdout.split() else ""
        if s.trial_fio:
            pod_fio(kc, t, ns, s)
    return t


def pod_fio(kc: Any, t: PvcTrial, ns: str, s: Settings) -> None:
    """The same fio jobs in the trial pod, on the PVC (``/data``), parsed by the same parser."""
    budget = (s.fio_runtime_s + 1) * len(fio.JOBS) + 120
    got = kc.exec(t.pod, ns, ["sh", "-c", fio.argv("/data", s.fio_runtime_s, s.fio_size)], timeout=budget)
    if not got.ok:
        t.fio_error = f"fio in the pod exited {got.exit_code}: {(got.stderr or got.stdout).strip()[-300:]}"
        return
    try:
        t.fio_version, t.fio = fio.parse(got.stdout)
    except ValueError as exc:
        t.fio_error = str(exc)


def file_on_node(tr: Transport, pv_path: str) -> str:
    """sha256 of the trial file found under the PV's path on the node ("" when absent)."""
    res = tr.run(f"sha256sum '{pv_path}/{TRIAL_FILE}' 2>/dev/null | cut -d' ' -f1", sudo=True, timeout=30)
    return res.stdout.strip()


def dir_gone(tr: Transport, pv_path: str) -> bool:
    return tr.run(f"test -e '{pv_path}'", sudo=True, timeout=30).exit_code == 1
