"""`runbooks schedule`: cron -> OnCalendar, the systemd unit pair, the CronJob manifest."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from runbooks_lib import schedule as sch
from runbooks_lib.cli import main

ROOT = Path(__file__).resolve().parent.parent
LAB_PARAMS = ROOT / "parameters" / "lab.yaml"


@pytest.mark.parametrize(("cron", "calendar"), [
    ("0 2 * * *", "*-*-* 02:00:00"),
    ("*/15 * * * *", "*-*-* *:00,15,30,45:00"),
    ("30 1 * * 1-5", "Mon..Fri *-*-* 01:30:00"),
    ("0 0 1 */3 *", "*-01,04,07,10-01 00:00:00"),
    ("@hourly", "*-*-* *:00:00"),
    ("@weekly", "Sun *-*-* 00:00:00"),
    ("5 4 * * sun", "Sun *-*-* 04:05:00"),
    ("0 22 * * 1,3,5", "Mon,Wed,Fri *-*-* 22:00:00"),
    ("0 9-17/2 * * *", "*-*-* 09,11,13,15,17:00:00"),
    ("0 0 * jan,jul *", "*-01,07-* 00:00:00"),
    ("0 3 * * 0,6", "Sat,Sun *-*-* 03:00:00"),
    ("0 3 * * 7", "Sun *-*-* 03:00:00"),
])
def test_cron_to_oncalendar(cron: str, calendar: str) -> None:
    assert sch.cron_to_oncalendar(cron) == calendar


@pytest.mark.parametrize("cron", ["0 2 * *", "61 * * * *", "0 2 1 * 1", "a b c d e", "0 2 * * 8", "*/0 * * * *"])
def test_cron_refused(cron: str) -> None:
    with pytest.raises(sch.ScheduleError):
        sch.cron_to_oncalendar(cron)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("cron", ["0 2 * * *", "*/15 * * * *", "30 1 * * 1-5", "0 0 1 */3 *", "0 3 * * 0,6"])
def test_systemd_accepts_the_calendar(cron: str) -> None:
    res = subprocess.run(["systemd-analyze", "calendar", sch.cron_to_oncalendar(cron)], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stderr


def test_render_systemd_pair_verifies(tmp_path: Path) -> None:
    units = sch.render_systemd("etcd-backup", LAB_PARAMS, "0 2 * * *", runbooks="/bin/true")
    assert set(units) == {"runbooks-etcd-backup.service", "runbooks-etcd-backup.timer"}
    svc, timer = units["runbooks-etcd-backup.service"], units["runbooks-etcd-backup.timer"]
    assert f"ExecStart=/bin/true run etcd-backup -p {LAB_PARAMS} -q" in svc and "Type=oneshot" in svc
    assert "OnCalendar=*-*-* 02:00:00" in timer and "Unit=runbooks-etcd-backup.service" in timer
    ok, out = sch.verify_units(units)
    assert ok, out
    broken = dict(units, **{"runbooks-etcd-backup.timer": timer.replace("OnCalendar=*-*-* 02:00:00", "OnCalendar=x")})
    if shutil.which("systemd-analyze"):
        assert not sch.verify_units(broken)[0]


def test_install_systemd_writes_files(tmp_path: Path) -> None:
    units = sch.render_systemd("etcd-backup", LAB_PARAMS, "@daily", runbooks="/bin/true")
    paths = sch.install_systemd(units, dest=tmp_path, enable=False)
    assert sorted(p.name for p in paths) == sorted(units)
    assert all(p.read_text() == units[p.name] and oct(p.stat().st_mode)[-3:] == "644" for p in paths)


def test_cronjob_passes_schema_validation() -> None:
    m = sch.render_cronjob("etcd-backup", LAB_PARAMS, "0 2 * * *", image="registry.example/k8s-runbooks:0.1.0")
    kubernetes_validate.validate(m, "1.30", strict=True)
    pod = m["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
    assert {t["key"] for t in pod["tolerations"]} >= {"node-role.kubernetes.io/control-plane"}
    hostpaths = {v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert {"/etc/kubernetes/pki/etcd", "/var/backups/etcd"} <= hostpaths
    assert pod["containers"][0]["command"][:3] == ["runbooks", "run", "etcd-backup"]
    assert m["spec"]["concurrencyPolicy"] == "Forbid"
    bad = yaml.safe_load(yaml.safe_dump(m))
    bad["spec"]["jobTemplate"]["spec"]["template"]["spec"]["hostNetwork"] = "yes"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.30", strict=True)


def test_cli_dry_run_prints_units(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "etcd-backup", "--cron", "0 2 * * *", "-p", str(LAB_PARAMS), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "# --- runbooks-etcd-backup.service" in out and "OnCalendar=*-*-* 02:00:00" in out


def test_cli_kubernetes_prints_valid_cronjob(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "etcd-backup", "--cron", "0 2 * * *", "-p", str(LAB_PARAMS), "--kubernetes"]) == 0
    m = yaml.safe_load(capsys.readouterr().out)
    assert m["kind"] == "CronJob" and m["spec"]["schedule"] == "0 2 * * *"
    kubernetes_validate.validate(m, "1.30", strict=True)


def test_cli_bad_cron_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "etcd-backup", "--cron", "0 2 1 * 1", "-p", str(LAB_PARAMS), "--dry-run"]) == 2
    assert "day-of-month and day-of-week" in capsys.readouterr().err
