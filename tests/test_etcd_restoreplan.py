"""The restore plan (pure): kubeadm stacked etcd on every member, and a systemd etcd."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from runbooks_lib.chapters.etcd_backup import chapter
from runbooks_lib.chapters.etcd_backup import config as c
from runbooks_lib.chapters.etcd_backup import restoreplan as rp

F = Path(__file__).parent / "fixtures" / "etcd"
ARGV = ["etcdutl", "snapshot", "restore", "/var/backups/etcd/s.db"]


def members() -> list[rp.Member]:
    one = (F / "manifests" / "kubeadm-1.30-single.yaml").read_text()
    two = one.replace("192.168.13.137", "192.168.13.138").replace("k8s-master1", "k8s-master2")
    three = (F / "manifests" / "kubeadm-1.30-member3.yaml").read_text()
    out = []
    for host, text in (("cp1", one), ("cp2", two), ("cp3", three)):
        cfg = c.parse_manifest(text)
        out.append(rp.Member(host, cfg, "/var/backups/etcd/s.db", text, "/etc/kubernetes/manifests/etcd.yaml",
                             "https://127.0.0.1:2379", ["--cacert=/etc/kubernetes/pki/etcd/ca.crt"]))
    return out


@pytest.mark.written_fixture
def test_kubeadm_plan_order_and_per_member_flags() -> None:
    ms = members()
    steps = rp.plan_kubeadm(ms, ARGV, "etcdctl", "/var/lib/etcd-restore-X", "tok-1", "STAMP")
    kinds = [s.what.split(":")[0].split(" ")[0] for s in steps]
    assert kinds == ["stop"] * 3 + ["wait"] * 3 + ["restore"] * 3 + ["etcd.yaml"] * 3 + ["wait"] * 3 + ["start"] * 3
    cluster = ("k8s-master1=https://192.168.13.137:2380,k8s-master2=https://192.168.13.138:2380,"
               "k8s-master3=https://192.168.13.139:2380")
    restores = [s for s in steps if s.what.startswith("restore")]
    for m, s in zip(ms, restores, strict=True):
        assert s.host == m.host
        assert f"--name={m.config.name}" in s.command
        assert f"--initial-cluster={cluster}" in s.command
        assert f"--initial-advertise-peer-urls={m.config.peer_urls[0]}" in s.command
        assert "--initial-cluster-token=tok-1" in s.command and "--data-dir=/var/lib/etcd-restore-X" in s.command
        assert "chmod 0700 /var/lib/etcd-restore-X" in s.command and "test ! -e /var/lib/etcd-restore-X" in s.command
    written = [s for s in steps if s.write_path]
    assert all(c.parse_manifest(s.content or "").data_dir == "/var/lib/etcd-restore-X" for s in written)
    assert "kube-apiserver.yaml" in steps[0].command and "etcd.yaml" in steps[0].command
    assert steps[-1].command.endswith("systemctl restart kubelet")


def test_never_into_the_live_data_dir() -> None:
    with pytest.raises(ValueError):
        rp.plan_kubeadm(members(), ARGV, "etcdctl", "/var/lib/etcd/", "t", "S")


def test_systemd_plan_for_the_lab_unit() -> None:
    text = (F / "lab-etcd.unit.txt").read_text()
    cfg = c.parse_unit(text)
    m = rp.Member("cp1", cfg, "/b/s.db", text, "/etc/systemd/system/etcd.service", "https://127.0.0.1:2379")
    steps = rp.plan_systemd(m, ARGV, "etcdctl", "/var/lib/etcd-restore-X", "tok", "etcd", "STAMP")
    assert [s.what.split(" ")[0] for s in steps] == ["restore", "stop", "keep", "point", "start", "wait"]
    assert "--initial-cluster=etcd-cp1=https://10.77.149.11:2380" in steps[0].command
    assert c.parse_unit(steps[3].content or "").data_dir == "/var/lib/etcd-restore-X"


def test_new_data_dir_keeps_one_suffix() -> None:
    when = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert rp.new_data_dir("/var/lib/etcd", when) == "/var/lib/etcd-restore-20250102T030405Z"
    assert rp.new_data_dir("/var/lib/etcd-restore-20240101T000000Z", when) == "/var/lib/etcd-restore-20250102T030405Z"


def test_history_tolerates_none_and_reads_figures(tmp_path: Path) -> None:
    assert chapter.history(tmp_path / "missing").empty
    assert chapter.plot_history(chapter.history(tmp_path)) is None
    (tmp_path / "junk.json").write_text("[1, 2]")
    for i in range(3):
        (tmp_path / f"2025010{i + 1}T020000Z_p.json").write_text(json.dumps({
            "chapter": "etcd-backup", "status": "PASS", "started_utc": f"2025-01-0{i + 1}T02:00:00Z",
            "figures": {"size_bytes": 1e6 * (i + 1), "keys": 100 + i, "revision": 10 + i, "save_s": 1.0,
                        "verify_s": 0.5, "ship_s": 0.5, "drill_s": 2.0}}))
    df = chapter.history(tmp_path)
    assert list(df["keys"]) == [100, 101, 102] and list(df["size_mb"]) == [1.0, 2.0, 3.0]
    assert list(df["duration_s"]) == [2.0, 2.0, 2.0]
    fig = chapter.plot_history(df)
    assert fig is not None and len(fig.axes) == 3
