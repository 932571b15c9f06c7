"""Chapter 01's change view: each distinct change block once, with the hosts it applies to."""

from __future__ import annotations

import pytest

from runbooks_lib import display
from runbooks_lib.changes import Change
from runbooks_lib.chapters.system_init import display as si_display
from runbooks_lib.chapters.system_init.checks import Desired, Finding
from runbooks_lib.chapters.system_init.settings import Settings
from runbooks_lib.chapters.system_init.steps import Applied, NodeResult, Result
from runbooks_lib.transport.base import CommandResult

SYSCTL = Change("sysctl.persisted", "write /etc/sysctl.d/99-kubernetes.conf", ["sysctl --system"],
                path="/etc/sysctl.d/99-kubernetes.conf", content="net.ipv4.ip_forward = 1\n",
                diff="--- /etc/sysctl.d/99-kubernetes.conf\n+++ desired\n@@ -0,0 +1 @@\n+net.ipv4.ip_forward = 1")
SWAP = Change("swap.off", "turn swap off", ["swapoff -a"])


def result(mode: str = "plan") -> Result:
    def node(host: str, *changes: Change) -> NodeResult:
        return NodeResult(host, findings=[Finding(c.check, "drift", c.summary, c) for c in changes])

    nodes = {"cp1": node("cp1", SYSCTL, SWAP), "w1": node("w1", SYSCTL, SWAP), "w2": node("w2", SYSCTL),
             "w3": node("w3"), "w4": NodeResult("w4", error="ssh: connection refused", unreachable=True)}
    s = Settings()
    return Result(mode, nodes, 1.0, Desired(s, "1.30", "pause:3.9", s.kube_proxy_mode, []))


def test_each_distinct_change_once_with_its_hosts() -> None:
    groups = si_display.change_groups(result())
    assert [hosts for hosts, _ in groups] == [["cp1", "w1"], ["cp1", "w1", "w2"], ["w3"], ["w4"]]
    blocks = [b for _, b in groups]
    assert blocks[0] == SWAP.describe() and blocks[1] == SYSCTL.describe()
    assert blocks[2] == "no changes" and "connection refused" in blocks[3]
    assert sum(b.count("+net.ipv4.ip_forward = 1") for b in blocks) == 1


def test_applied_changes_grouped_too() -> None:
    r = result("apply")
    ok = CommandResult("cp1", "swapoff -a", 0, "", "", 0.1)
    for h in ("cp1", "w1"):
        r.nodes[h].applied = [Applied(SWAP, [ok])]
    groups = si_display.change_groups(r)
    assert groups[0] == (["cp1", "w1"], "  [swap.off] turn swap off: ok")


def test_show_changes_one_block_per_group(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr(display, "_show", shown.append)
    si_display.show_changes(result())
    assert len(shown) == 1  # one output (one scroll box in the report), holding every group
    groups = shown[0].split("<div style='margin:0.4em 0'>")[1:]
    assert len(groups) == 4
    assert shown[0].count("net.ipv4.ip_forward = 1") == 1
    assert "cp1, w1, w2" in groups[1] and "runbooks-diff-add" in groups[1] and "(3 of 5 nodes)" in groups[1]
