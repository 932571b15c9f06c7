"""Chapter 06 pure parts: fio JSON (real, produced here), node facts (captured on a lab node),
lsblk candidates, prerequisite judgement, version decision, CSPC refusals, the cStor health chain
and the Pending-PVC diagnosis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from runbooks_lib.chapters.openebs_storage import cstor, fio, nodes, prereq, release, storage
from runbooks_lib.chapters.openebs_storage.settings import CStorPool, Settings
from runbooks_lib.facts import script
from runbooks_lib.kube.helm import HelmRelease

FIX = Path(__file__).parent / "fixtures" / "openebs"


# -- fio

def test_fio_parser_reads_real_fio_json_with_latency_percentiles() -> None:
    version, jobs = fio.parse((FIX / "fio-3.33-lab-node.json").read_text())
    assert version == "fio-3.33"
    by = {j.job: j for j in jobs}
    assert list(by) == [name for name, _ in fio.JOBS]
    rr = by["randread_4k"]
    assert rr.iops == 33866.5 and rr.bw_kib_s == 135476 and rr.p99_ms == 3.949 and rr.p50_ms == 0.33
    assert by["randwrite_4k"].iops > 0 and by["randwrite_4k"].p99_ms == 5.014  # the write side is picked
    sync = by["fdatasync_2300"]
    assert sync.sync_p99_ms == 7.963 and sync.p99_ms == 4.014
    assert fio.summary(jobs)["fdatasync_2300"]["sync_p99_ms"] == 7.963


def test_fio_parser_refuses_fio_error_output_and_failed_jobs() -> None:
    with pytest.raises(ValueError, match="no fio JSON"):
        fio.parse((FIX / "fio-3.33-error.txt").read_text())
    doc = json.loads((FIX / "fio-3.33-lab-node.json").read_text())
    doc["jobs"][1]["error"] = 5
    with pytest.raises(ValueError, match="randwrite_4k failed with error 5"):
        fio.parse(json.dumps(doc))


def test_fio_node_command_runs_under_the_base_path_or_its_parent_and_cleans_up() -> None:
    cmd = fio.node_command("/var/openebs/local", 6, "256M")
    assert 'p="/var/openebs/local"; while [ ! -e "$p" ]' in cmd and "trap 'rm -rf \"$d\"' EXIT" in cmd
    assert "--runtime=6" in cmd and "--fdatasync=1" in cmd and "gtod_reduce" not in cmd
    assert cmd.count("--stonewall") == len(fio.JOBS)


# -- node facts

def lab_facts(known_hosts: str | None = None) -> nodes.NodeFacts:
    """Facts captured on lab node oebs-w1; its lab's known_hosts (captured with it) proves it a lab node."""
    kh = (FIX / "known_hosts-oebs").read_text() if known_hosts is None else known_hosts
    return nodes.parse("oebs-w1", script.split((FIX / "node-facts-lab-debian12.txt").read_text()),
                       lambda name: kh if name == "oebs" else None)


def test_node_facts_captured_on_a_lab_node_parse() -> None:
    f = lab_facts()
    assert f.lab and f.kernel.startswith("6.") and f.tools["fio"] == "/usr/bin/fio" and f.tools["iscsiadm"] is None
    assert f.iscsid is not None and not f.iscsid.exists
    assert f.base.path == "/var" and not f.base.exists and f.base.fstype == "overlay"
    assert f.base.free_bytes > 0 and f.disks == [] and f.hugepages["Hugepagesize"] == 2048


def test_lab_relaxation_only_when_the_facts_prove_a_lab_node() -> None:
    """A node whose host key is not in the lab's known_hosts gets no "n/a in lab": without
    /lib/modules the module check cannot tell (warn), never passes."""
    f = lab_facts(known_hosts="")
    assert not f.lab and any("host keys" in m for m in f.lab_missing)
    rows = {c: st for c, st, _ in prereq.judge(f, Settings(engine="cstor-legacy"))}
    assert rows["iscsi_tcp"] == "warn"


def test_lsblk_candidates_exclude_filesystems_mounts_lvm_pvs_partitioned_and_roms() -> None:
    disks = nodes.parse_lsblk((FIX / "lsblk-rocky9.json").read_text())
    why = {d.name: d.why_not() for d in disks}
    assert why["sdb"] is None
    assert why["sda"] == "partitioned / in use by a child device"
    assert why["sda2"] == "an LVM physical volume" and why["sdd"] == "an LVM physical volume"
    assert why["sdc"] == "has a filesystem (ext4)" and why["sda1"] == "has a filesystem (xfs)"
    assert why["sr0"] == "type rom" and why["rl-root"] == "type lvm"


def test_prereqs_on_the_lab_node_for_hostpath_and_cstor() -> None:
    f = lab_facts()
    hp = {c: (st, d) for c, st, d in prereq.judge(f, Settings())}
    assert hp["iscsi"][0] == "info" and hp["hostpath.base"][0] == "info" and hp["hostpath.free"][0] == "pass"
    assert hp["hostpath.xfs_quota"][0] == "info" and "not enforced" in hp["hostpath.xfs_quota"][1]
    legacy = prereq.judge(f, Settings(engine="cstor-legacy"))
    got = {(c, st) for c, st, _ in legacy}
    assert ("iscsi", "drift") in got and ("iscsi_tcp", "n/a in lab") in got and ("disks.raw", "fail") in got
    may = {c: st for c, st, _ in prereq.judge(f, Settings(engine="mayastor"))}
    assert may["mayastor.hugepages"] == "fail" and may["mayastor.nvme_tcp"] == "n/a in lab"
    assert may["mayastor.kernel"] == "pass"


def test_iscsid_that_cannot_run_is_na_only_on_a_proven_lab_node() -> None:
    from runbooks_lib.facts.services import Unit

    f = lab_facts()
    f.tools["iscsiadm"] = "/usr/sbin/iscsiadm"
    f.iscsid = Unit("iscsid.service", "loaded", "failed", "failed", "enabled")
    assert prereq.iscsi(f, True)[0][1] == "n/a in lab"
    f.lab = False
    assert prereq.iscsi(f, True)[0][1] == "drift"
    f.iscsid = Unit("iscsid.service", "loaded", "active", "running", "enabled")
    assert prereq.iscsi(f, True)[0][1] == "pass"


def test_selinux_enforcing_without_container_file_t_warns_and_xfs_prjquota_passes() -> None:
    f = lab_facts()
    f.lab = False
    f.selinux = f.selinux.__class__("enforcing", "enforcing", "")
    f.base = nodes.BaseDir("/var/openebs/local", True, 50 * 2**30, "xfs", ["rw", "prjquota"],
                           "system_u:object_r:var_t:s0")
    rows = {c: (st, d) for c, st, d in prereq.judge(f, Settings())}
    assert rows["hostpath.selinux"][0] == "warn" and "container_file_t" in rows["hostpath.selinux"][1]
    assert rows["hostpath.xfs_quota"][0] == "pass"
    f.base.context = "system_u:object_r:container_file_t:s0"
    f.base.options = ["rw"]
    rows = {c: (st, d) for c, st, d in prereq.judge(f, Settings())}
    assert rows["hostpath.selinux"][0] == "pass" and rows["hostpath.xfs_quota"][0] == "warn"
    f.modinfo = {"iscsi_tcp": None, "nvme_tcp": "/lib/modules/x/nvme-tcp.ko.xz"}
    legacy = {c: st for c, st, _ in prereq.judge(f, Settings(engine="cstor-legacy"))}
    assert legacy["iscsi_tcp"] == "fail"


# -- versions decide

def rel(name: str) -> HelmRelease:
    doc = json.loads((FIX / name).read_text())
    meta = doc["chart"]["metadata"]
    return HelmRelease(doc["name"], doc["namespace"], doc["version"], doc["info"]["status"], meta["name"],
                       meta["version"], meta["appVersion"], doc["config"])


def test_cstor_on_a_4x_release_is_refused_with_the_two_ways_forward() -> None:
    d = release.decide(rel("release-openebs-4.6.1-cstor.json"), Settings(engine="cstor-legacy"))
    assert d.status == "fail" and "does nothing on 4.x" in d.detail
    assert "openebs-cstor/cstor 3.6.0" in d.detail and "Mayastor" in d.detail
    assert any("cstor.enabled=true, which the 4.x chart ignores" in n for n in d.notes)
    assert any("engines.replicated.mayastor.enabled" in n for n in d.notes)  # 4.x defaults left on


def test_3x_release_allows_the_legacy_trial_and_hostpath_only_4x_has_no_notes() -> None:
    assert release.decide(rel("release-openebs-3.10.0-cstor.json"), Settings(engine="cstor-legacy")).status == "info"
    assert release.decide(rel("release-openebs-3.10.0-cstor.json"), Settings()).status == "warn"
    d = release.decide(rel("release-openebs-4.6.1-hostpath.json"), Settings())
    assert d.status == "pass" and d.notes == []
    assert release.decide(None, Settings(engine="cstor-legacy", cstor_chart_version="4.0.0")).status == "fail"


def test_install_commands_pin_the_chart_and_turn_mayastor_lvm_zfs_off() -> None:
    cmd = release.helm_commands(Settings(image_registry="k8s.dockerproxy.com"))[-1]
    assert "openebs/openebs --version 4.6.1" in cmd and "--set global.imageRegistry=k8s.dockerproxy.com" in cmd
    for key in release.HOSTPATH_ONLY:
        assert f"--set {key}=false" in cmd
    assert "engines.replicated.mayastor.enabled=true" in release.helm_commands(Settings(engine="mayastor"))[-1]
    assert "openebs-cstor/cstor --version 3.6.0" in release.helm_commands(Settings(engine="cstor-legacy"))[-1]


# -- cStor

@pytest.mark.written_fixture
def test_cspc_validation_refuses_as_the_webhook_does() -> None:
    bds = yaml.safe_load((FIX / "blockdevices.yaml").read_text())["items"]
    ok = [CStorPool(node="k8s-worker-1", block_devices=["blockdevice-5aeaf5f89794edf391f4394a6f7eb47e"]),
          CStorPool(node="k8s-worker-2", block_devices=["blockdevice-4dad35da68321cd86eeeb9a085ed0f83"])]
    assert cstor.validate(ok, bds, 2) == []
    assert cstor.validate(ok, bds, 3) == ["replicaCount 3 exceeds the 2 pool instance(s)"]
    bad = [CStorPool(node="k8s-worker-1", block_devices=["blockdevice-ext4", "blockdevice-claimed", "nope"],
                     raid="mirror"),
           CStorPool(node="k8s-worker-2", block_devices=["blockdevice-5aeaf5f89794edf391f4394a6f7eb47e"])]
    errs = cstor.validate(bad, bds, 1)
    assert "k8s-worker-1: mirror needs a multiple of 2 block devices, got 3" in errs
    assert "blockdevice-ext4: block device has file system {ext4}" in errs
    assert "blockdevice-claimed: claimState Claimed (already claimed)" in errs
    assert "blockdevice-claimed is on node k8s-worker-2, not k8s-worker-1" in errs
    assert "k8s-worker-1: BlockDevice nope does not exist" in errs
    assert "blockdevice-5aeaf5f89794edf391f4394a6f7eb47e is on node k8s-worker-1, not k8s-worker-2" in errs
    dup = [CStorPool(node="k8s-worker-1", block_devices=["blockdevice-5aeaf5f89794edf391f4394a6f7eb47e"] * 2)]
    assert any("used twice" in e for e in cstor.validate(dup, bds, 1))


def test_cspc_render_groups_devices_by_raid_type() -> None:
    s = Settings(engine="cstor-legacy", cstor_pools=[CStorPool(node="n1", block_devices=["a", "b", "c", "d"],
                                                               raid="mirror")], cstor_replica_count=1)
    cspc, sc = cstor.render(s)
    groups = cspc["spec"]["pools"][0]["dataRaidGroups"]
    assert [[b["blockDeviceName"] for b in g["blockDevices"]] for g in groups] == [["a", "b"], ["c", "d"]]
    assert sc["parameters"] == {"cas-type": "cstor", "cstorPoolCluster": "cstor-disk-pool", "replicaCount": "1"}


@pytest.mark.written_fixture
def test_health_chain_names_the_first_broken_link() -> None:
    h = yaml.safe_load((FIX / "cstor-health.yaml").read_text())
    chain = cstor.health_chain(h["pvc"], h["cvc"], h["cv"], h["cvrs"])
    assert [(n, ok) for n, ok, _ in chain] == [("PVC Bound", True), ("CVC Bound", True), ("CV Healthy", True),
                                               ("CVRs Healthy", False)]
    assert "efgh=Degraded" in chain[3][2]
    assert cstor.health_chain(h["pvc"], None, None, [])[1] == ("CVC Bound", False, "absent")
    assert cstor.pool_instances(h["cspis"]) == [("cstor-disk-pool-abcd", True, "ONLINE"),
                                                ("cstor-disk-pool-efgh", False, "OFFLINE")]


# -- Pending PVCs

def _sc(binding: str) -> dict[str, storage.ClassInfo]:
    sc = {"metadata": {"name": "openebs-hostpath"}, "provisioner": "openebs.io/local", "volumeBindingMode": binding}
    return {"openebs-hostpath": storage.class_info(sc)}


def _pvc() -> dict:
    return {"metadata": {"name": "d", "namespace": "t"}, "spec": {"storageClassName": "openebs-hostpath"},
            "status": {"phase": "Pending"}}


def _pod(node_name: str | None) -> dict:
    spec: dict = {"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "d"}}]}
    if node_name:
        spec["nodeName"] = node_name
    return {"metadata": {"name": "p", "namespace": "t"}, "spec": spec, "status": {"phase": "Pending"}}


def test_pending_pvc_diagnosis() -> None:
    wffc = _sc("WaitForFirstConsumer")
    assert storage.diagnose_pending(_pvc(), wffc, [], lab=False)[0] == "info"   # not a failure
    st, why = storage.diagnose_pending(_pvc(), wffc, [_pod("w1")], lab=False)
    assert st == "fail" and "sets nodeName" in why
    # placed by the scheduler (a Scheduled event, or the PVC's selected-node): not a bypass
    assert storage.diagnose_pending(_pvc(), wffc, [_pod("w1")], lab=True, scheduled={"p"})[0] == "n/a in lab"
    annotated = _pvc()
    annotated["metadata"]["annotations"] = {storage.SELECTED_NODE: "w1"}
    assert storage.diagnose_pending(annotated, wffc, [_pod("w1")], lab=False)[0] == "fail"
    assert "provisioner" in storage.diagnose_pending(annotated, wffc, [_pod("w1")], lab=False)[1]
    assert storage.diagnose_pending(_pvc(), wffc, [_pod(None)], lab=True)[0] == "n/a in lab"
    assert storage.diagnose_pending(_pvc(), wffc, [_pod(None)], lab=False)[0] == "fail"
    assert storage.diagnose_pending(_pvc(), {}, [], lab=True)[0] == "fail"  # class missing: not a lab gap
    st, why = storage.default_classes([storage.class_info(
        {"metadata": {"name": n, "annotations": {storage.DEFAULT_ANNOTATION: "true"}}, "provisioner": "x"})
        for n in ("a", "b")])
    assert st == "warn" and "a, b" in why


def test_bad_settings_are_refused_naming_every_field() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as exc:
        Settings(base_path="/var/$(reboot)", trial_size="1 Gi", fio_size="lots", engine="jiva")  # type: ignore[arg-type]
    fields = {e["loc"][0] for e in exc.value.errors()}
    assert fields == {"base_path", "trial_size", "fio_size", "engine"}
