"""Chapter 06 against the lab API server: release detection from a Helm release Secret built the way
Helm builds it, StorageClasses and the Pending-PVC diagnosis, CSPC refusals before any request, the
PVC trial ("n/a in lab": no provisioner) and its cleanup by run label."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import yaml

from runbooks_lib.chapters.openebs_storage import chapter, cstor
from runbooks_lib.chapters.openebs_storage.settings import CStorPool, Settings
from runbooks_lib.kube import helm
from runbooks_lib.run import Run

FIX = Path(__file__).parent / "fixtures" / "openebs"


def release_secret(fixture: str) -> dict[str, Any]:
    doc = json.loads((FIX / fixture).read_text())
    return {"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": "sh.helm.release.v1.openebs.v1", "namespace": "openebs",
                         "labels": {"owner": "helm", "name": "openebs", "version": "1", "status": "deployed"}},
            "data": {"release": helm.encode_release(doc)}}


def ns(c: chapter.Cluster, name: str = "openebs") -> None:
    assert c.kc is not None
    c.kc.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def hostpath_class(c: chapter.Cluster) -> None:
    """The openebs-hostpath StorageClass as the 4.x chart creates it (no provisioner runs in the lab)."""
    assert c.kc is not None
    c.kc.create({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "openebs-hostpath"},
                 "provisioner": "openebs.io/local", "volumeBindingMode": "WaitForFirstConsumer"})


def statuses(run: Run, check: str) -> list[tuple[str, str]]:
    return [(c.host, c.status) for c in run.checks if c.check == check]


def test_4x_release_from_its_secret_refuses_the_seeds_cstor_step(kube_run: Run) -> None:
    s = Settings(engine="cstor-legacy")
    c = chapter.connect(kube_run)
    chapter.detect_release(kube_run, c, s)
    assert statuses(kube_run, "openebs.release") == [("cluster", "info")]       # nothing installed yet
    ns(c)
    assert c.kc is not None
    c.kc.create(release_secret("release-openebs-4.6.1-cstor.json"))
    chapter.detect_release(kube_run, c, s)
    chapter.cstor_step(kube_run, c, s)
    assert kube_run.figures["openebs_release"]["chart_version"] == "4.6.1"
    assert statuses(kube_run, "openebs.release")[-1] == ("cluster", "fail")
    refused = next(x for x in kube_run.checks if x.check == "cstor.version")
    assert refused.status == "fail" and "does nothing on 4.x" in refused.detail and "Mayastor" in refused.detail
    notes = [x.detail for x in kube_run.checks if x.check == "openebs.release.values"]
    assert any("ignores" in n for n in notes)


def test_storage_classes_default_and_pending_pvcs(kube_run: Run) -> None:
    c = chapter.connect(kube_run)
    assert c.kc is not None and c.lab
    for name, default in (("openebs-hostpath", "true"), ("other", "true")):
        c.kc.create({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                     "metadata": {"name": name, "annotations": {"storageclass.kubernetes.io/is-default-class": default}},
                     "provisioner": "openebs.io/local", "volumeBindingMode": "WaitForFirstConsumer"})
    for claim in ("idle", "pinned"):
        c.kc.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim, "namespace": "default"},
                     "spec": {"storageClassName": "openebs-hostpath", "accessModes": ["ReadWriteOnce"],
                              "resources": {"requests": {"storage": "1Gi"}}}})
    c.kc.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pinned", "namespace": "default"},
                 "spec": {"nodeName": "w1", "containers": [{"name": "c", "image": "busybox:1.36"}],
                          "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "pinned"}}]}})
    frame = chapter.cluster_storage(kube_run, c)
    assert set(frame["class"]) == {"openebs-hostpath", "other"}
    assert statuses(kube_run, "storage.default_class") == [("cluster", "warn")]
    got = dict(statuses(kube_run, "storage.pvc_pending"))
    assert got["default/idle"] == "info"      # WaitForFirstConsumer, no consumer: not a failure
    assert got["default/pinned"] == "fail"    # nodeName bypasses the scheduler


def test_cspc_refused_before_any_request(kube_run: Run, api_double: tuple[Path, str, Any]) -> None:
    double = api_double[2]
    c = chapter.connect(kube_run)
    assert c.kc is not None
    ns(c)
    c.kc.create(release_secret("release-openebs-3.10.0-cstor.json"))
    s = Settings(engine="cstor-legacy", cstor_pools=[CStorPool(node="k8s-worker-1",
                                                                block_devices=["blockdevice-ext4"])])
    chapter.detect_release(kube_run, c, s)
    chapter.cstor_step(kube_run, c, s)       # no BlockDevice CRD: said so, not a traceback
    assert "BlockDevices cannot be read" in next(x.detail for x in kube_run.checks if x.check == "cstor.cspc")
    for crd in yaml.safe_load_all((FIX / "cstor-crds.yaml").read_text()):
        c.kc.create(crd)
    for bd in yaml.safe_load((FIX / "blockdevices.yaml").read_text())["items"]:
        c.kc.create(bd)
    before = len(double.requests)
    errors = chapter.cstor_step(kube_run, c, s)
    assert errors == ["blockdevice-ext4: block device has file system {ext4}"]
    assert [x.status for x in kube_run.checks if x.check == "cstor.cspc"][-1] == "fail"
    sent = [r for r in double.requests[before:] if "cstorpoolclusters" in str(r)]
    assert sent == []
    ok = Settings(engine="cstor-legacy", cstor_pools=[CStorPool(
        node="k8s-worker-1", block_devices=["blockdevice-5aeaf5f89794edf391f4394a6f7eb47e"])])
    assert chapter.cstor_step(kube_run, c, ok) == []
    assert cstor.CSPC_NAME in " ".join(x.check for x in kube_run.checks if x.status == "drift")


def test_pvc_trial_is_na_in_lab_and_cleanup_deletes_by_run_label(kube_apply_run: Run,
                                                                  api_double: tuple[Path, str, Any]) -> None:
    double = api_double[2]
    run = kube_apply_run
    c = chapter.connect(run)
    assert c.kc is not None
    hostpath_class(c)
    chapter.cluster_storage(run, c)
    done = chapter.pvc_trials(run, c, Settings(pvc_timeout_s=1.5, trial_node="w1"))
    t = done[0]
    bound = next(x for x in run.checks if x.check == "trial.pvc.bound")
    assert bound.status == "n/a in lab" and "no provisioner" in bound.detail, bound.detail
    pod = double.object("Pod", t.pod, "default")
    assert pod["spec"]["nodeSelector"] == {"kubernetes.io/hostname": "w1"} and "nodeName" not in pod["spec"] or \
        pod["spec"].get("nodeName") == "w1"  # scheduled by the scheduler, not pinned by us
    assert double.object("PersistentVolumeClaim", t.pvc, "default") is not None
    deleted = chapter.cleanup(run, c, done)
    assert sorted(deleted) == sorted([f"Pod default/{t.pod}", f"PersistentVolumeClaim default/{t.pvc}"])
    assert double.object("PersistentVolumeClaim", t.pvc, "default") is None


def test_pvc_trial_needs_confirm(kube_run: Run, api_double: tuple[Path, str, Any]) -> None:
    c = chapter.connect(kube_run)
    assert c.kc is not None
    hostpath_class(c)
    chapter.cluster_storage(kube_run, c)
    assert chapter.pvc_trials(kube_run, c, Settings()) == []
    assert statuses(kube_run, "trial.pvc") == [("cluster", "info")]
    assert api_double[2].objects("PersistentVolumeClaim") == []


def test_pvc_trial_on_a_bound_claim_checksums_and_runs_fio_in_the_pod(kube_apply_run: Run,
                                                                      api_double: tuple[Path, str, Any]) -> None:
    """The test plays the provisioner the lab lacks (a PV with node affinity, the claim bound as the
    PV controller binds it); the pod's exec answers sha256sum and fio (real fio JSON captured here)."""
    from runbooks_lib.kube.paths import BUILTIN

    double = api_double[2]
    fio_json = (FIX / "fio-3.33-lab-node.json").read_text()

    def pod_exec(_: Any, pod: dict[str, Any], container: str, argv: list[str]) -> tuple[str, str, int]:
        if argv[0] == "sha256sum":
            return f"{'ab' * 32}  {argv[1]}\n", "", 0
        if argv[:2] == ["sh", "-c"] and argv[2].startswith("fio ") and "--directory=/data" in argv[2]:
            return fio_json, "", 0
        return "", f"unexpected {argv}", 127

    double.exec_handler = pod_exec
    stop = threading.Event()

    def provisioner() -> None:
        while not stop.is_set():
            for pvc in double.objects("PersistentVolumeClaim", "default"):
                if pvc.get("status", {}).get("phase") == "Bound":
                    continue
                pv = f"pvc-{pvc['metadata']['uid']}"
                with double.store.lock:  # as the double's own controllers write
                    bound(pv, pvc)
            stop.wait(0.1)

    def bound(pv: str, pvc: dict[str, Any]) -> None:
        double.store.put_raw(BUILTIN["PersistentVolume"], {
            "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": "openebs-hostpath", "local": {"path": f"/var/openebs/local/{pv}"},
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": "kubernetes.io/hostname", "operator": "In", "values": ["w1"]}]}]}}}})
        double.store.put_raw(BUILTIN["PersistentVolumeClaim"], {
            **pvc, "spec": {**pvc["spec"], "volumeName": pv}, "status": {"phase": "Bound"}},
            "persistentvolume-controller")

    bind = threading.Thread(target=provisioner, daemon=True)
    bind.start()
    try:
        run = kube_apply_run
        c = chapter.connect(run)
        assert c.kc is not None
        hostpath_class(c)
        chapter.cluster_storage(run, c)
        done = chapter.pvc_trials(run, c, Settings(pvc_timeout_s=10, trial_fio=True))
    finally:
        stop.set()
        bind.join(5)
    got = {x.check: x for x in run.checks if x.check.startswith("trial.pvc")}
    assert got["trial.pvc.bound"].status == "pass" and got["trial.pvc.attach"].status == "pass"
    assert got["trial.pvc.checksum"].status == "pass" and "ab" * 32 in got["trial.pvc.checksum"].detail
    assert done[0].node == "w1" and done[0].pv_path.startswith("/var/openebs/local/pvc-")
    assert got["trial.pvc.fio"].status == "pass"
    assert run.figures["fio_classes"]["openebs-hostpath"]["jobs"]["fdatasync_2300"]["sync_p99_ms"] == 7.963
