"""The StatefulSet trial's pure parts: names, replicas, the rendered Service + StatefulSet (the
seed's, with the chapter's parameters), and the judgement of what was observed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from runbooks_lib.chapters.openebs_storage import sts
from runbooks_lib.chapters.openebs_storage.settings import Settings
from runbooks_lib.kube import RUN_LABEL, validate_manifests
from runbooks_lib.kube.status import CURRENT, IN_PROGRESS

N = sts.names_for("20261201T031200Z-openebs-storage")


def pod(ordinal: int, ready: bool, uid: str = "u", claim: str | None = None) -> dict[str, Any]:
    return {"metadata": {"name": N.pod(ordinal), "uid": uid},
            "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim or N.claim(ordinal)}}]},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def claim(uid: str = "c", volume: str = "pvc-1", phase: str = "Bound", cls: str = "cstor-csi-disk",
          labelled: bool = True) -> dict[str, Any]:
    return {"metadata": {"name": N.claim(0), "uid": uid,
                         "labels": {sts.TRIAL_LABEL: sts.TRIAL} if labelled else {}},
            "spec": {"storageClassName": cls, "volumeName": volume}, "status": {"phase": phase}}


def test_names_are_per_run_and_valid_dns_labels() -> None:
    other = sts.names_for("20261201T031201Z-openebs-storage")
    assert N.sts != other.sts and N == sts.names_for("20261201T031200Z-openebs-storage")
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", N.service) and len(N.claim(9)) <= 63
    assert N.claim(2) == f"data-{N.sts}-2" and N.pod(2) == f"{N.sts}-2"


@pytest.mark.parametrize(("requested", "online", "want"), [(None, 0, 1), (None, 2, 2), (None, 5, 3), (4, 1, 4)])
def test_replicas_default_to_the_seeds_three_capped_by_online_pools(requested: int | None, online: int,
                                                                    want: int) -> None:
    assert sts.replicas_for(requested, online) == want


def test_render_is_the_seeds_service_and_statefulset_with_the_chapters_parameters() -> None:
    s = Settings(engine="cstor-legacy", sts_size="128Mi")
    svc, ss = sts.render(s, N, "trial", 2, "run-1")
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["selector"] == {"app": N.app}
    spec = ss["spec"]
    assert (spec["serviceName"], spec["replicas"], spec["podManagementPolicy"]) == (N.service, 2, "OrderedReady")
    c = spec["template"]["spec"]["containers"][0]
    assert c["image"] == "nginx:1.27" and c["volumeMounts"] == [{"name": "data", "mountPath": "/var/lib/www/html"}]
    vct = spec["volumeClaimTemplates"][0]
    assert vct["metadata"]["name"] == "data" and vct["spec"]["storageClassName"] == "cstor-csi-disk"
    assert vct["spec"]["resources"]["requests"]["storage"] == "128Mi"
    for labels in (svc["metadata"]["labels"], ss["metadata"]["labels"], spec["template"]["metadata"]["labels"],
                   vct["metadata"]["labels"]):  # the claims carry the run label too: cleanup finds them
        assert labels[RUN_LABEL] == "run-1" and labels[sts.TRIAL_LABEL] == sts.TRIAL
    assert all(v.outcome == "valid" for v in validate_manifests([svc, ss], "1.30"))


def test_render_mirrors_the_image_through_image_registry() -> None:
    s = Settings(engine="cstor-legacy", image_registry="k8s.dockerproxy.com")
    ss = sts.render(s, N, "default", 1, "r")[1]
    assert ss["spec"]["template"]["spec"]["containers"][0]["image"] == "k8s.dockerproxy.com/library/nginx:1.27"


def test_sts_size_is_validated() -> None:
    with pytest.raises(ValidationError, match="sts_size"):
        Settings(sts_size="1 Gi")


def test_claim_problems_name_each_difference() -> None:
    assert sts.claim_problems(claim(), N, 0) == []
    assert sts.claim_problems(None, N, 0) == [f"{N.claim(0)} absent"]
    got = sts.claim_problems(claim(phase="Pending", cls="other", labelled=False), N, 0)
    assert [g.split(": ", 1)[1].split(" ")[0] for g in got] == ["storageClassName", "not", "Pending"]


def test_order_watch_keeps_snapshots_and_first_ready_times() -> None:
    ticks = iter([1.0, 2.0, 3.0])
    w = sts.OrderWatch(N, 1, lambda: next(ticks))
    assert w([pod(0, False)]).status == IN_PROGRESS
    assert w([pod(0, True), pod(1, False)]).status == IN_PROGRESS
    assert w([pod(0, True), pod(1, True)]).status == CURRENT
    assert w.ready_at == {0: 2.0, 1: 3.0}
    assert sts.order_violations(w.snapshots) == []


def test_order_violations_only_when_a_pod_exists_before_its_predecessors_are_ready() -> None:
    assert sts.order_violations([{0: True, 1: True, 2: False}, {0: True, 1: False}]) == []
    assert sts.order_violations([{0: False, 1: False}]) == ["ordinal 1 existed while 0 was not Ready"]
    assert sts.order_violations([{2: False}]) == ["ordinal 2 existed while 0, 1 were not Ready"]


def test_restart_problems() -> None:
    before, c = pod(0, True, "old"), claim()
    assert sts.restart_problems(before, pod(0, True, "new"), c, claim()) == []
    assert sts.restart_problems(before, None, c, c) == ["pod 0 did not come back"]
    assert sts.restart_problems(before, before, c, c) == ["pod 0 was not replaced (same uid)"]
    assert "mounts other" in sts.restart_problems(before, pod(0, True, "new", claim="other"), c, c)[0]
    assert "not the same object" in sts.restart_problems(before, pod(0, True, "new"), c, claim(uid="c2"))[0]
    assert "now names volume pvc-2" in sts.restart_problems(before, pod(0, True, "new"), c, claim(volume="pvc-2"))[0]


def test_marker_commands_write_then_read_the_same_file_under_the_seeds_mount() -> None:
    write, read = sts.marker_command("m-1"), sts.read_command()
    assert write[:2] == ["sh", "-c"] and read == ["cat", "/var/lib/www/html/runbooks-marker"]
    assert write[2] == "echo m-1 > /var/lib/www/html/runbooks-marker && sync && cat /var/lib/www/html/runbooks-marker"
