"""Drift vs failure, destructive changes that need confirm, and lab relaxations only for proven lab nodes
(pure: on captured lab gathers; the non-lab VM's section is written, see fixtures/facts/PROVENANCE.md)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from runbooks_lib.chapters.system_init import drift, labproof
from runbooks_lib.chapters.system_init.checks import Desired, Finding, Node
from runbooks_lib.chapters.system_init.gather import NodeFacts, parse
from runbooks_lib.chapters.system_init.settings import Settings
from runbooks_lib.facts import lab as lab_f
from runbooks_lib.facts import script

FX = Path(__file__).resolve().parent / "fixtures" / "facts"
CLUSTER = [("sysinit-cp1", "10.77.109.11"), ("sysinit-w1", "10.77.109.12"), ("sysinit-w2", "10.77.109.13")]
SANDBOX = "registry.aliyuncs.com/google_containers/pause:3.9"
LAB_SECTION = (FX / "debian12-lab-section-w1.txt").read_text()
KNOWN_HOSTS = (FX / "debian12-lab-known_hosts-w1.txt").read_text()


def desired() -> Desired:
    s = Settings(ntp_servers=["10.77.109.11"])
    return Desired(s, "1.30", SANDBOX, s.kube_proxy_mode, CLUSTER, cluster_name="sysinit")


def facts(state: str = "fresh", section: str = LAB_SECTION) -> NodeFacts:
    f = parse("sysinit-w1", script.split((FX / f"debian12-lab-gather-{state}-w1.txt").read_text()))
    f.lab = lab_f.parse(section)
    return f


def known(name: str) -> str | None:
    return KNOWN_HOSTS if name == "sysinit" else None


def by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


W1 = Node("sysinit-w1", "10.77.109.12", ["worker"], True)


# ------------------------------------------------------------------ lab proof (issue 11.7)

def test_lab_section_parses_all_three_signs() -> None:
    lf = lab_f.parse(LAB_SECTION)
    assert lf.virt == "podman" and lf.containerenv and lf.pid1_container == "podman"
    assert lf.lab_name == "sysinit" and lf.marker["node"] == "sysinit-w1"
    assert {k for k, _ in lf.host_keys} == {"ecdsa-sha2-nistp256", "ssh-ed25519", "ssh-rsa"}


def test_a_lab_node_whose_facts_agree_is_proven() -> None:
    node, fd = labproof.prove(W1, lab_f.parse(LAB_SECTION), "sysinit-w1", known)
    assert node.lab and fd.status == "pass" and "podman" in fd.detail


@pytest.mark.parametrize(("section", "hostname", "kh", "why"), [
    ((FX / "rocky9-lab-section-vm.txt").read_text(), "sysinit-w1", known, "not a container"),
    (LAB_SECTION.replace("lab=sysinit", "lab=other"), "sysinit-w1", known, "no known_hosts for lab 'other'"),
    (LAB_SECTION, "sysinit-w1", lambda n: "10.0.0.9 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOther\n",
     "none of its SSH host keys"),
    (LAB_SECTION.split("# a runbooks")[0] + "@@--\n" + LAB_SECTION.split("@@--\n")[-1], "sysinit-w1", known,
     "no lab marker"),
    (LAB_SECTION, "prod-w1", known, "names node 'sysinit-w1', this is 'prod-w1'"),
])
def test_a_flagged_lab_host_whose_facts_disagree_is_an_error_without_relaxations(
        section: str, hostname: str, kh: object, why: str) -> None:
    node, fd = labproof.prove(W1, lab_f.parse(section), hostname, kh)  # type: ignore[arg-type]
    assert not node.lab
    assert fd.status == "error" and fd.detail.startswith("sysinit-w1 is flagged lab") and why in fd.detail


def test_forged_lab_flag_gets_no_na_in_lab() -> None:
    """The same node, flagged lab, but its facts are a VM's: host-global checks are judged for real."""
    f = facts("applied", (FX / "rocky9-lab-section-vm.txt").read_text())
    node, _ = labproof.prove(W1, f.lab, f.hostname, known)
    got = by_check(drift.plan_findings(f, node, desired()))
    assert "n/a in lab" not in {fd.status for fd in got.values()}
    assert got["sysctl.runtime"].status == "drift" and got["kube.packages"].status == "drift"
    proven = by_check(drift.plan_findings(f, W1, desired()))
    assert proven["sysctl.runtime"].status == "n/a in lab"


def test_not_flagged_is_na_whatever_the_facts() -> None:
    node, fd = labproof.prove(replace(W1, lab=False), lab_f.parse(LAB_SECTION), "sysinit-w1", known)
    assert not node.lab and fd.status == "n/a"


# ------------------------------------------------------------------ drift vs fail (issue 11.6)

def test_fresh_lab_node_plan_is_drift_never_fail() -> None:
    got = drift.plan_findings(facts(), W1, desired())
    assert [(fd.check, fd.status) for fd in got if fd.status in ("fail", "error")] == []
    drifting = {fd.check for fd in got if fd.status == "drift"}
    assert {"packages", "sysctl.persisted", "hosts", "containerd.config", "containerd.cri"} <= drifting
    assert all("planned: " in fd.detail or "expected to be fixed by apply's" in fd.detail
               for fd in got if fd.status == "drift")


def test_what_apply_cannot_fix_still_fails() -> None:
    f = facts("applied")
    f.hostname = "Bad_Name"
    f.kernel = "5.10.0-28-amd64"
    d = desired()
    d.proxy_mode = "nftables"
    got = by_check(drift.plan_findings(f, Node("sysinit-cp1", "", ["control-plane"], True), d))
    assert got["host.hostname"].status == "fail" and got["host.kernel"].status == "fail"


def test_after_apply_what_still_differs_fails_and_what_waits_for_confirm_stays_drift() -> None:
    got = drift.plan_findings(facts(), W1, desired())
    withheld = drift.waiting(got)
    assert withheld == {"hosts", "swap.masked"}
    drift.settle(got, withheld, "sysinit")
    st = by_check(got)
    assert st["hosts"].status == "drift" and st["hosts"].detail.startswith("needs confirm=sysinit: not applied")
    assert st["sysctl.persisted"].status == "fail" and st["sysctl.persisted"].detail.startswith(
        "still differs after apply")
    assert st["chrony.sync"].status in ("pass", "warn", "drift")   # waits on chrony.config, never a bare fail


def test_plan_says_which_changes_need_confirm() -> None:
    got = by_check(drift.mark_confirm(drift.plan_findings(facts(), W1, desired()), "sysinit", confirmed=False))
    assert "destructive: rewrites /etc/hosts" in got["hosts"].detail and "needs confirm=sysinit" in got["hosts"].detail
    assert "needs confirm" not in got["sysctl.persisted"].detail


def test_destructive_changes_are_marked_and_described() -> None:
    from runbooks_lib.changes import chrony, containerd, hosts, swap, sysctl

    assert swap.off_change(["/dev/dm-1"]).destructive and swap.mask_change(False).destructive  # type: ignore[union-attr]
    assert hosts.change("127.0.0.1 localhost\n", CLUSTER).destructive  # type: ignore[union-attr]
    ch = chrony.config_change("/etc/chrony.conf", "pool 2.pool.ntp.org iburst\n", ["10.0.0.1"], "chronyd")
    assert "restarts chronyd" in ch.destructive and "confirm" in ch.describe()  # type: ignore[union-attr]
    assert containerd.config_change("", {}, {"version": 2}, SANDBOX).destructive  # type: ignore[union-attr]
    assert not sysctl.file_change(None, {"net.ipv4.ip_forward": "1"}).destructive  # type: ignore[union-attr]


def test_a_check_waiting_on_a_withheld_change_stays_drift_and_says_why() -> None:
    got = drift.plan_findings(facts(), W1, desired())
    cri = by_check(got)["containerd.cri"]
    assert cri.status == "drift"
    drift.settle(got, {"containerd.config"}, "sysinit")
    assert cri.status == "drift" and cri.detail.startswith("needs confirm=sysinit: waits for the containerd.config")
    assert by_check(got)["packages"].status == "fail"          # not withheld, still pending after apply
