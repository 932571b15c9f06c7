"""`runbooks schedule`: cron -> OnCalendar (UTC), the systemd unit pair, the CronJob manifest.

Every test writes its own parameter file in tmp_path: none needs the lab (or anything) to be up.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from runbooks_lib import schedule as sch
from runbooks_lib.cli import main

TOKEN = "k3x9qz.w8v7u6t5s4r3q2p1"  # planted: a kubeadm bootstrap token given as a parameter
CERT_KEY = "9f3c1e7a5b2d4f6081a3c5e7f9b1d3a5c7e9f1b3d5a7c9e1f3b5d7a9c1e3f5b7"


def write_params(d: Path, extra: str = "") -> Path:
    """A parameter file of its own (hosts inline, an empty known_hosts): nothing here needs a lab."""
    (d / "known_hosts").write_text("")
    p = d / "prod.yaml"
    p.write_text("cluster_name: prod\nssh:\n  known_hosts: known_hosts\nhosts:\n"
                 "  - {name: cp1, address: 192.0.2.10, roles: [control-plane, etcd]}\n"
                 f"kubeadm:\n  token: {TOKEN}\n  certificate_key: {CERT_KEY}\n" + extra)
    return p


@pytest.fixture
def params(tmp_path: Path) -> Path:
    return write_params(tmp_path)


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
    ("0 0 29 2 *", "*-02-29 00:00:00"),
    ("0 0 31 1-3 *", "*-01..03-31 00:00:00"),
])
def test_cron_to_oncalendar(cron: str, calendar: str) -> None:
    """The timer runs in UTC, as `schedule --help` promises (systemd's default is the machine's local time)."""
    assert sch.cron_to_oncalendar(cron) == calendar + " UTC"


@pytest.mark.parametrize("cron", ["0 2 * *", "61 * * * *", "0 2 1 * 1", "a b c d e", "0 2 * * 8", "*/0 * * * *",
                                  "*/x * * * *", "0 0 31 2 *", "0 0 30,31 2 *", "0 0 31 4,6,9,11 *"])
def test_cron_refused(cron: str) -> None:
    with pytest.raises(sch.ScheduleError):
        sch.cron_to_oncalendar(cron)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("cron", ["0 2 * * *", "*/15 * * * *", "30 1 * * 1-5", "0 0 1 */3 *", "0 3 * * 0,6"])
def test_systemd_accepts_the_calendar(cron: str) -> None:
    res = subprocess.run(["systemd-analyze", "calendar", sch.cron_to_oncalendar(cron)], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert "UTC" in res.stdout and "Next elapse: never" not in res.stdout
    sch.check_calendar(sch.cron_to_oncalendar(cron))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_refuses_a_calendar_that_never_elapses() -> None:
    with pytest.raises(sch.ScheduleError, match="never"):
        sch.check_calendar("*-02-30 00:00:00 UTC")


def test_render_systemd_pair_verifies(params: Path) -> None:
    units = sch.render_systemd("etcd-backup", params, "0 2 * * *", runbooks="/bin/true", cluster="prod")
    assert set(units) == {"runbooks-etcd-backup.service", "runbooks-etcd-backup.timer"}
    svc, timer = units["runbooks-etcd-backup.service"], units["runbooks-etcd-backup.timer"]
    assert f"ExecStart=/bin/true run etcd-backup -p {params} -q --mode apply --set confirm=prod" in svc
    assert "Type=oneshot" in svc and "in apply with confirm" in svc  # the Description says the mode
    assert "OnCalendar=*-*-* 02:00:00 UTC" in timer and "Unit=runbooks-etcd-backup.service" in timer
    ok, out = sch.verify_units(units)
    assert ok, out
    broken = dict(units, **{"runbooks-etcd-backup.timer": timer.replace("OnCalendar=*-*-* 02:00:00 UTC",
                                                                        "OnCalendar=x")})
    if shutil.which("systemd-analyze"):
        assert not sch.verify_units(broken)[0]


def test_other_chapters_are_scheduled_in_plan(params: Path) -> None:
    svc = sch.render_systemd("system-init", params, "0 2 * * *", runbooks="/bin/true", cluster="prod")[
        "runbooks-system-init.service"]
    assert "--mode" not in svc and "confirm" not in svc and "run in plan" in svc


def test_install_systemd_writes_files(tmp_path: Path, params: Path) -> None:
    units = sch.render_systemd("etcd-backup", params, "@daily", runbooks="/bin/true")
    paths = sch.install_systemd(units, dest=tmp_path, enable=False)
    assert sorted(p.name for p in paths) == sorted(units)
    assert all(p.read_text() == units[p.name] and oct(p.stat().st_mode)[-3:] == "644" for p in paths)


def test_cronjob_passes_schema_validation(params: Path) -> None:
    m = sch.render_cronjob("etcd-backup", params, "0 2 * * *", image="registry.example/k8s-runbooks:0.1.0",
                           cluster="prod")
    kubernetes_validate.validate(m, "1.30", strict=True)
    pod = m["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
    assert {t["key"] for t in pod["tolerations"]} >= {"node-role.kubernetes.io/control-plane"}
    hostpaths = {v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert {"/etc/kubernetes/pki/etcd", "/var/backups/etcd"} <= hostpaths
    assert pod["containers"][0]["command"][:3] == ["runbooks", "run", "etcd-backup"]
    assert "--mode apply --set confirm=prod" in " ".join(pod["containers"][0]["command"])
    assert m["spec"]["timeZone"] == "Etc/UTC"
    assert m["spec"]["concurrencyPolicy"] == "Forbid"
    bad = yaml.safe_load(yaml.safe_dump(m))
    bad["spec"]["jobTemplate"]["spec"]["template"]["spec"]["hostNetwork"] = "yes"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.30", strict=True)


def test_cli_dry_run_prints_units(params: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "etcd-backup", "--cron", "0 2 * * *", "-p", str(params), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "# --- runbooks-etcd-backup.service" in out and "OnCalendar=*-*-* 02:00:00 UTC" in out
    assert "--mode apply --set confirm=prod" in out


def test_cli_kubernetes_prints_valid_cronjob(params: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "etcd-backup", "--cron", "0 2 * * *", "-p", str(params), "--kubernetes"]) == 0
    m = yaml.safe_load(capsys.readouterr().out)
    assert m["kind"] == "CronJob" and m["spec"]["schedule"] == "0 2 * * *"
    kubernetes_validate.validate(m, "1.30", strict=True)


@pytest.mark.parametrize(("cron", "why"), [
    ("0 2 1 * 1", "day-of-month and day-of-week"),
    ("*/x * * * *", "bad step"),
    ("0 0 31 2 *", "never fires"),
    ("0 0 30 2 *", "never fires"),
])
@pytest.mark.parametrize("kind", ["--dry-run", "--kubernetes"])
def test_cli_bad_cron_is_usage_error(params: Path, capsys: pytest.CaptureFixture[str], cron: str, why: str,
                                     kind: str) -> None:
    assert main(["schedule", "etcd-backup", "--cron", cron, "-p", str(params), kind]) == 2
    assert why in capsys.readouterr().err


def test_cli_refuses_an_unbuilt_chapter(params: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from runbooks_lib import chapters

    # every chapter is built in this checkout: point the registry at an empty notebooks folder
    monkeypatch.setattr(chapters, "NOTEBOOKS", tmp_path / "no-notebooks")
    assert not chapters.find("etcd-backup").built
    assert main(["schedule", "etcd-backup", "--cron", "0 2 * * *", "-p", str(params), "--dry-run"]) == 2
    assert "not built" in capsys.readouterr().err


def test_cli_refuses_to_schedule_a_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = write_params(tmp_path, "etcd_backup:\n  restore: {enabled: true}\n")
    assert main(["schedule", "etcd-backup", "--cron", "0 2 * * *", "-p", str(p), "--dry-run"]) == 2
    assert "never restore" in capsys.readouterr().err


def test_units_and_cronjob_hold_no_planted_secret(params: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 18 (secret scan): secrets given as parameters appear in no unit or CronJob, plain or base64."""
    assert main(["schedule", "etcd-backup", "--cron", "0 2 * * *", "-p", str(params), "--dry-run"]) == 0
    assert main(["schedule", "etcd-backup", "--cron", "0 2 * * *", "-p", str(params), "--kubernetes"]) == 0
    out = capsys.readouterr()
    text = out.out + out.err
    assert "runbooks-etcd-backup.timer" in text and "CronJob" in text
    for secret in (TOKEN, CERT_KEY):
        for form in (secret, base64.b64encode(secret.encode()).decode()):
            assert form not in text
