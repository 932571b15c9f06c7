"""Chapter 06's StatefulSet trial on cStor volumes against the lab API server (its StatefulSet
controller). The full path needs a provisioner, which the lab has not: here the test plays the cStor
install — CSIDriver, and for each claim the PV, the claim's binding and its CVC/CV/CVRs — and the
volume's filesystem (an exec handler keeping files per PV). Without it the trial is n/a in lab."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kube_double.fixture import make_run
from kubernetes.dynamic import DynamicClient

from runbooks_lib import kube
from runbooks_lib.chapters.openebs_storage import chapter, cstor, sts
from runbooks_lib.chapters.openebs_storage.settings import Settings
from runbooks_lib.lab.apiserver import ApiDouble
from runbooks_lib.lab.apiserver.execws import default_exec
from runbooks_lib.run import Run

FIX = Path(__file__).parent / "fixtures" / "openebs"
pytestmark = pytest.mark.written_fixture
CSTOR = "cstor.openebs.io/v1"


class CStorInstall:
    """What a cStor install writes (see PROVENANCE.md): CRDs, the class, ONLINE pool instances, the
    CSIDriver; with ``provision()`` running, a PV + CVC/CV/CVRs per claim of the class and the claim
    bound (after the PV controller marked it Pending, as a provisioner answers a pending claim), and
    on a claim's deletion its PV and cStor objects removed (reclaimPolicy Delete)."""

    def __init__(self, kubeconfig: Path, double: ApiDouble, namespace: str = "openebs",
                 reclaim: str = "Delete") -> None:
        self.double, self.ns, self.reclaim = double, namespace, reclaim
        self.dyn = DynamicClient(kubernetes.config.new_client_from_config(str(kubeconfig)))
        self.stop = threading.Event()
        self.bound: dict[str, str] = {}        # claim uid -> PV name
        self.files: dict[str, dict[str, str]] = {}  # PV name -> {path in the volume: content}
        self.errors: list[str] = []

    def res(self, api: str, kind: str) -> Any:
        return self.dyn.resources.get(api_version=api, kind=kind)

    def create(self, obj: dict[str, Any], status: dict[str, Any] | None = None) -> None:
        r = self.res(obj["apiVersion"], obj["kind"])
        ns = obj["metadata"].get("namespace")
        r.create(body=obj, namespace=ns)
        if status:
            r.status.patch(name=obj["metadata"]["name"], namespace=ns, body={"status": status},
                           content_type="application/merge-patch+json")

    def install(self, s: Settings, *, csi_driver: bool = True) -> None:
        for f in ("cstor-crds.yaml", "cstor-volume-crds.yaml"):
            for crd in yaml.safe_load_all((FIX / f).read_text()):
                self.create(crd)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not self.double.store.by_kind.get(("cstor.openebs.io",
                                                                                 "CStorVolumeReplica")):
            time.sleep(0.05)
        self.dyn = DynamicClient(self.dyn.client)  # discovery again: the CRDs' kinds
        self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.ns}})
        self.create(cstor.render(s)[1])
        for cspi in yaml.safe_load((FIX / "cstor-health.yaml").read_text())["cspis"]:
            obj = {k: v for k, v in cspi.items() if k != "status"}
            obj["metadata"] = {**obj["metadata"], "namespace": self.ns}
            self.create(obj, cspi["status"])
        if csi_driver:
            self.create({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": "cstor.csi.openebs.io"},
                         "spec": {"attachRequired": False, "podInfoOnMount": True,
                                  "volumeLifecycleModes": ["Persistent"]}})

    def provision(self) -> None:
        """The provisioner's loop (a thread) until ``stop``."""
        while not self.stop.wait(0.05):
            try:
                self._step()
            except Exception as exc:  # noqa: BLE001 - a provisioner error fails the test, below
                self.errors.append(repr(exc))

    @contextlib.contextmanager
    def provisioning(self) -> Iterator[None]:
        """The provisioner runs (a thread) inside the block; stopped and joined when it ends."""
        thread = threading.Thread(target=self.provision, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self.stop.set()
            thread.join(5)

    def _step(self) -> None:
        claims = {p["metadata"]["uid"]: p for p in self.double.objects("PersistentVolumeClaim")
                  if p["spec"].get("storageClassName") == cstor.CLASS_NAME}
        for uid, pvc in claims.items():
            if uid in self.bound or (pvc.get("status") or {}).get("phase") != "Pending":
                continue
            pv, ns, name = f"pvc-{uid}", pvc["metadata"]["namespace"], pvc["metadata"]["name"]
            self.create({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv},
                         "spec": {"capacity": {"storage": pvc["spec"]["resources"]["requests"]["storage"]},
                                  "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": self.reclaim,
                                  "storageClassName": cstor.CLASS_NAME,
                                  "csi": {"driver": "cstor.csi.openebs.io", "volumeHandle": pv, "fsType": "ext4"},
                                  "claimRef": {"kind": "PersistentVolumeClaim", "namespace": ns, "name": name,
                                               "uid": uid}}}, {"phase": "Bound"})
            self.create({"apiVersion": CSTOR, "kind": "CStorVolumeConfig",
                         "metadata": {"name": pv, "namespace": self.ns}}, {"phase": "Bound"})
            self.create({"apiVersion": CSTOR, "kind": "CStorVolume",
                         "metadata": {"name": pv, "namespace": self.ns}}, {"phase": "Healthy"})
            self.create({"apiVersion": CSTOR, "kind": "CStorVolumeReplica",
                         "metadata": {"name": f"{pv}-cstor-disk-pool-abcd", "namespace": self.ns,
                                      "labels": {"cstorvolume.openebs.io/name": pv}}}, {"phase": "Healthy"})
            pvcs = self.res("v1", "PersistentVolumeClaim")
            pvcs.patch(name=name, namespace=ns, body={"spec": {"volumeName": pv}},
                       content_type="application/merge-patch+json")
            pvcs.status.patch(name=name, namespace=ns, body={"status": {"phase": "Bound"}},
                              content_type="application/merge-patch+json")
            self.bound[uid] = pv
        for uid in [u for u in self.bound if u not in claims]:   # claim deleted: reclaim (Delete)
            pv = self.bound.pop(uid)
            if self.reclaim == "Retain":   # the PV stays (Released), and cStor's volume with it
                continue
            self.res("v1", "PersistentVolume").delete(name=pv)
            for kind, name in (("CStorVolumeConfig", pv), ("CStorVolume", pv),
                               ("CStorVolumeReplica", f"{pv}-cstor-disk-pool-abcd")):
                self.res(CSTOR, kind).delete(name=name, namespace=self.ns)

    def exec(self, double: ApiDouble, pod: dict[str, Any], container: str, command: list[str]) -> tuple[str, str, int]:
        """The container's view of its volume: ``echo M > P && sync && cat P`` and ``cat P`` on a
        path under a claim's mountPath read/write that claim's PV; anything else as the lab does."""
        script = command[2] if command[:2] == ["sh", "-c"] else " ".join(command)
        m = re.fullmatch(r"echo (\S+) > (\S+) && sync && cat \2", script) or re.fullmatch(r"cat (\S+)()", script)
        if m is None:
            return default_exec(double, pod, container, command)
        path = m.group(2) or m.group(1)
        volume = self._volume_at(pod, container, path)
        if volume is None:
            return "", f"sh: can't create {path}: Read-only file system\n", 1
        files = self.files.setdefault(volume, {})
        if m.group(2):
            files[path] = m.group(1)
        if path not in files:
            return "", f"cat: can't open '{path}': No such file or directory\n", 1
        return files[path] + "\n", "", 0

    def _volume_at(self, pod: dict[str, Any], container: str, path: str) -> str | None:
        c = next(c for c in pod["spec"]["containers"] if c["name"] == container)
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["spec"].get("volumes") or []
                  if v.get("persistentVolumeClaim")}
        for m in c.get("volumeMounts") or []:
            if path.startswith(m["mountPath"] + "/") and m["name"] in claims:
                pvc = self.double.object("PersistentVolumeClaim", claims[m["name"]], pod["metadata"]["namespace"])
                return (pvc or {}).get("spec", {}).get("volumeName")
        return None


@pytest.fixture
def install(api_double: tuple[Path, str, ApiDouble]) -> Iterator[CStorInstall]:
    kubeconfig, _, double = api_double
    inst = CStorInstall(kubeconfig, double)
    double.exec_handler = inst.exec
    yield inst
    inst.stop.set()


def trial_run(tmp_path: Path, kubeconfig: Path, name: str, *, apply: bool = True, **settings: Any) -> Run:
    run = make_run(tmp_path, kubeconfig, apply=apply, name=name)
    run.params.openebs_storage = Settings(engine="cstor-legacy", pvc_timeout_s=10, **settings)
    return run


def checks(run: Run, prefix: str = "cstor.sts") -> dict[tuple[str, str], tuple[str, str]]:
    return {(x.check, x.host): (x.status, x.detail) for x in run.checks if x.check.startswith(prefix)}


def left_behind(double: ApiDouble) -> list[str]:
    return [f"{k} {o['metadata']['name']}" for k in ("StatefulSet", "Service", "Pod", "PersistentVolumeClaim")
            for o in double.objects(k, "default", f"{sts.TRIAL_LABEL}={sts.TRIAL}")]


def test_full_trial_claims_bound_healthy_ordered_pod0_back_with_its_marker(
        tmp_path: Path, api_double: tuple[Path, str, ApiDouble], install: CStorInstall) -> None:
    kubeconfig, _, double = api_double
    run = trial_run(tmp_path, kubeconfig, "full", sts_replicas=3)
    install.install(run.params.openebs_storage)
    with install.provisioning():
        c = chapter.connect(run)
        chapter.cluster_storage(run, c)
        t0 = time.monotonic()
        t = chapter.statefulset_trial(run, c, run.params.openebs_storage)
        wall = time.monotonic() - t0
    assert install.errors == []
    assert t is not None and t.replicas == 3
    got = checks(run)
    n = t.names
    for i in range(3):
        assert got[("cstor.sts.claim", n.claim(i))][0] == "pass", got
        status, chain = got[("cstor.sts.health", n.claim(i))]
        assert status == "pass" and re.fullmatch(
            "PVC Bound: Bound → CVC Bound: Bound → CV Healthy: Healthy → CVRs Healthy: pvc-[0-9a-f-]{36}"
            "-cstor-disk-pool-abcd=Healthy", chain), chain
        assert got[("cstor.sts.ready", n.pod(i))][0] == "pass"
    assert got[("cstor.sts.order", n.sts)][0] == "pass"
    assert got[("cstor.sts.stable_storage", n.pod(0))][0] == "pass", got
    marker = got[("cstor.sts.marker", n.pod(0))]
    assert marker[0] == "pass" and t.marker in marker[1]
    assert got[("cstor.sts.cleanup", "default")][0] == "changed"
    reclaim = got[("cstor.sts.reclaim", "default")]
    assert reclaim[0] == "pass" and "the 3 volumes" in reclaim[1] and not double.objects("PersistentVolume")
    assert "nothing of this run left" in got[("cstor.sts.cleanup", "default")][1]
    fig = run.figures["cstor_statefulset"]
    assert fig["replicas"] == 3 and all(v is not None for v in fig["ready_s"].values()) and fig["pod0_back_s"]
    assert left_behind(double) == []
    assert wall < 25, wall
    # the pods came up in order, each with its own claim, and pod 0's successor kept claim 0
    created = sorted((e for e in double.objects("Event", "default") if e["reason"] == "SuccessfulCreate"
                      and e["involvedObject"]["name"] == n.sts and "create Pod" in e["message"]),
                     key=lambda e: int(e["metadata"]["resourceVersion"]))
    assert [re.search(r"Pod (\S+)", e["message"]).group(1) for e in created] == [  # type: ignore[union-attr]
        n.pod(0), n.pod(1), n.pod(2), n.pod(0)]


def test_lab_without_provisioner_is_na_in_lab_fast_and_leaves_nothing(
        tmp_path: Path, api_double: tuple[Path, str, ApiDouble], install: CStorInstall) -> None:
    kubeconfig, _, double = api_double
    run = trial_run(tmp_path, kubeconfig, "lab")
    install.install(run.params.openebs_storage, csi_driver=False)
    c = chapter.connect(run)
    chapter.cluster_storage(run, c)
    t0 = time.monotonic()
    t = chapter.statefulset_trial(run, c, run.params.openebs_storage)
    assert time.monotonic() - t0 < 5          # pvc_timeout_s is 10: nothing waited for a binding
    assert t is not None and t.replicas == 1  # one ONLINE pool instance in the fixture: min(3, 1)
    got = checks(run)
    status, detail = got[("cstor.sts.claim", t.names.claim(0))]
    assert status == "n/a in lab", detail
    assert detail.startswith("unavailable: no cStor provisioner answers in the lab (PVC default/")
    assert "Pending" in detail and "CSIDriver cstor.csi.openebs.io is not registered" in detail
    assert not any(s == "pass" for (chk, _), (s, _) in got.items() if chk != "cstor.sts.cleanup")
    assert got[("cstor.sts.cleanup", "default")][0] == "changed"
    assert left_behind(double) == []
    # a second apply (another run) does the same and leaves nothing either
    again = trial_run(tmp_path, kubeconfig, "lab2")
    c2 = chapter.connect(again)
    chapter.cluster_storage(again, c2)
    chapter.statefulset_trial(again, c2, again.params.openebs_storage)
    assert "cstor.sts.leftover" not in {x.check for x in again.checks}
    assert "nothing of this run left" in checks(again)[("cstor.sts.cleanup", "default")][1]
    assert left_behind(double) == []


def test_plan_shows_what_apply_would_create_and_creates_nothing(
        tmp_path: Path, api_double: tuple[Path, str, ApiDouble], install: CStorInstall) -> None:
    kubeconfig, _, double = api_double
    run = trial_run(tmp_path, kubeconfig, "plan", apply=False)
    install.install(run.params.openebs_storage)
    c = chapter.connect(run)
    chapter.cluster_storage(run, c)
    before = len(double.requests)
    assert chapter.statefulset_trial(run, c, run.params.openebs_storage) is None
    status, detail = checks(run)[("cstor.sts", "default")]
    assert status == "info" and "creates Service + StatefulSet default/rb-sts-" in detail
    assert "dry run: 2 create" in detail and "nginx:1.27" in detail
    writes = [r for r in double.requests[before:] if r.method in ("POST", "PUT", "PATCH", "DELETE")]
    assert writes and all("dryRun=All" in r.query for r in writes), writes
    assert double.objects("StatefulSet", "default") == [] and left_behind(double) == []


def test_no_usable_pool_skips_the_trial(tmp_path: Path, api_double: tuple[Path, str, ApiDouble]) -> None:
    kubeconfig, _, double = api_double
    run = trial_run(tmp_path, kubeconfig, "nopool")
    c = chapter.connect(run)
    chapter.cluster_storage(run, c)
    assert chapter.statefulset_trial(run, c, run.params.openebs_storage) is None
    status, detail = checks(run)[("cstor.sts", "cluster")]
    assert status == "n/a" and "StorageClass cstor-csi-disk absent" in detail and "CStorPoolInstance" in detail
    hostpath = trial_run(tmp_path, kubeconfig, "hostpath")
    hostpath.params.openebs_storage = Settings()
    assert chapter.statefulset_trial(hostpath, c, hostpath.params.openebs_storage) is None
    assert checks(hostpath) == {}


def test_a_conflicting_object_stops_the_trial_and_cleanup_keeps_what_is_not_ours(
        tmp_path: Path, api_double: tuple[Path, str, ApiDouble], install: CStorInstall) -> None:
    """A Service of the trial's name, owned by another manager with another port name: the server-side
    apply conflicts (fail), nothing is waited for, and cleanup deletes only this run's objects."""
    kubeconfig, _, double = api_double
    run = trial_run(tmp_path, kubeconfig, "conflict")
    install.install(run.params.openebs_storage)
    name = sts.names_for(kube.run_id_of(run)).service
    install.res("v1", "Service").create(namespace="default", body={
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
    c = chapter.connect(run)
    chapter.cluster_storage(run, c)
    t0 = time.monotonic()
    t = chapter.statefulset_trial(run, c, run.params.openebs_storage)
    assert time.monotonic() - t0 < 5 and t is not None and t.ordinals == []
    got = {x.check: x.status for x in run.checks if x.check.startswith("object ")}
    assert got[f"object Service default/{name}"] == "fail" and got[f"object StatefulSet default/{name}"] == "changed"
    assert not any(k[0] in ("cstor.sts.claim", "cstor.sts.ready") for k in checks(run))
    assert checks(run)[("cstor.sts.cleanup", "default")][0] == "changed"
    assert double.object("Service", name, "default") is not None       # not this run's: kept
    assert left_behind(double) == [] and double.objects("PersistentVolumeClaim", "default") == []


def test_a_missing_namespace_is_an_error_check_not_a_traceback(
        tmp_path: Path, api_double: tuple[Path, str, ApiDouble], install: CStorInstall) -> None:
    kubeconfig, _, _ = api_double
    run = trial_run(tmp_path, kubeconfig, "nons", sts_namespace="no-such-namespace")
    install.install(run.params.openebs_storage)
    c = chapter.connect(run)
    chapter.cluster_storage(run, c)
    assert chapter.statefulset_trial(run, c, run.params.openebs_storage) is None
    got = checks(run)
    assert got[("cstor.sts", "cluster")][0] == "error" and "no-such-namespace" in got[("cstor.sts", "cluster")][1]
    assert got[("cstor.sts.cleanup", "no-such-namespace")] == ("pass", "nothing of this run to delete")


def test_cstor_health_reads_the_volume_objects_in_the_releases_namespace(
        tmp_path: Path, api_double: tuple[Path, str, ApiDouble]) -> None:
    """OpenEBS installed in namespace `storage` (openebs_storage.namespace): a cStor claim's CVC/CV/CVRs
    live there, and its health chain is read there (it was read from `openebs` whatever the setting)."""
    kubeconfig, _, double = api_double
    inst = CStorInstall(kubeconfig, double, namespace="storage")
    run = trial_run(tmp_path, kubeconfig, "ns", namespace="storage")
    inst.install(run.params.openebs_storage)
    inst.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "default"},
                 "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": cstor.CLASS_NAME,
                          "resources": {"requests": {"storage": "1Gi"}}}})
    with inst.provisioning():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not inst.bound:
            time.sleep(0.05)
    assert inst.bound and inst.errors == []
    c = chapter.connect(run)
    chapter.cluster_storage(run, c)
    chapter.cstor_health(run, c)
    status, chain = checks(run, "cstor.health")[("cstor.health", "default/data")]
    assert status == "pass" and "CVRs Healthy: pvc-" in chain, chain


def test_volumes_a_retain_policy_keeps_are_named_after_cleanup(
        tmp_path: Path, api_double: tuple[Path, str, ApiDouble]) -> None:
    """Claims deleted, but their PVs stay (reclaimPolicy Retain): the trial names each one to delete by hand."""
    kubeconfig, _, double = api_double
    inst = CStorInstall(kubeconfig, double, reclaim="Retain")
    double.exec_handler = inst.exec
    run = trial_run(tmp_path, kubeconfig, "retain", sts_replicas=1)
    inst.install(run.params.openebs_storage)
    with inst.provisioning():
        c = chapter.connect(run)
        chapter.cluster_storage(run, c)
        t = chapter.statefulset_trial(run, c, run.params.openebs_storage)
    assert t is not None and inst.errors == []
    status, detail = checks(run)[("cstor.sts.reclaim", "default")]
    [pv] = [o["metadata"]["name"] for o in double.objects("PersistentVolume")]
    assert status == "warn" and f"PersistentVolume {pv} still there (reclaimPolicy Retain)" in detail, detail
    assert "by hand" in detail and left_behind(double) == []
