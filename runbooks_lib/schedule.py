"""Scheduled runs: a systemd service + timer, or a Kubernetes CronJob, running a chapter headless.

``runbooks schedule etcd-backup --cron "0 2 * * *" -p FILE [--dry-run] [--kubernetes]``

* systemd (default): ``runbooks-<chapter>.service`` (oneshot: ``runbooks run <chapter> -p FILE -q``;
  a failed check fails the unit, so OnFailure=/monitoring sees it) and ``runbooks-<chapter>.timer``
  (``OnCalendar=`` converted from the cron expression, in UTC, ``Persistent=true``). Written to
  /etc/systemd/system and enabled unless ``--dry-run`` prints them.
* The mode that makes the schedule useful (:data:`SCHEDULED_MODE`): etcd-backup runs in apply with
  ``confirm=<cluster>`` (a plan run takes no snapshot; retention deletes need confirm), and the unit's
  Description says so; every other chapter runs in plan (a report of drift, nothing changed).
  A parameter file that asks for an etcd restore is refused: a timer must never restore.
* Refused with exit 2: a cron expression that is malformed or never fires (``0 0 31 2 *``), checked
  by :func:`cron_to_oncalendar` and ``systemd-analyze calendar`` where present; a chapter not built.
* ``--kubernetes``: a CronJob that runs the same command (papermill inside ``runbooks run``) in
  the k8s-runbooks image on a control-plane node (nodeSelector + tolerations, hostNetwork,
  hostPath mounts for etcd's certificates, the backup directory and the reports).
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

SYSTEMD_DIR = Path("/etc/systemd/system")

_DOW = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
           "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
# (name, low, high) of the five cron fields
_FIELDS = [("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7)]


#: chapters scheduled in apply (with confirm=<cluster>), and what that does; the others run in plan
SCHEDULED_MODE = {
    "etcd-backup": "apply with confirm: takes, verifies, ships and drills a snapshot; retention deletes",
}
_MONTH_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


class ScheduleError(ValueError):
    """A cron expression systemd cannot express, or bad arguments."""


def _value(token: str, index: int) -> int:
    t = token.lower()
    if index == 3 and t[:3] in _MONTHS and not t.isdigit():
        return _MONTHS.index(t[:3]) + 1
    if index == 4 and t[:3] in [d.lower() for d in _DOW] and not t.isdigit():
        return [d.lower() for d in _DOW].index(t[:3])
    if not t.isdigit():
        raise ScheduleError(f"cron {_FIELDS[index][0]}: {token!r} is not a number")
    return int(t)


def _expand(field: str, index: int) -> list[int] | None:
    """The values a cron field allows (None for an unrestricted '*')."""
    name, low, high = _FIELDS[index]
    if field == "*":
        return None
    values: set[int] = set()
    for part in field.split(","):
        rng, _, step_s = part.partition("/")
        if step_s and (not step_s.isdigit() or int(step_s) < 1):
            raise ScheduleError(f"cron {name}: bad step in {part!r} (a positive number after /)")
        step = int(step_s) if step_s else 1
        if rng == "*":
            a, b = low, (6 if index == 4 else high)
        elif "-" in rng:
            a_s, b_s = rng.split("-", 1)
            a, b = _value(a_s, index), _value(b_s, index)
        else:
            a = _value(rng, index)
            b = (6 if index == 4 else high) if step_s else a
        if not (low <= a <= high and low <= b <= high) or a > b:
            raise ScheduleError(f"cron {name}: {part!r} is outside {low}-{high}")
        values.update(range(a, b + 1, step))
    if index == 4:
        values = {0 if v == 7 else v for v in values}
    return sorted(values)


def _join(values: list[int] | None, width: int = 2) -> str:
    """systemd list syntax, with a..b ranges for runs of consecutive values."""
    if values is None:
        return "*"
    out, i = [], 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        a, b = f"{values[i]:0{width}d}", f"{values[j]:0{width}d}"
        out.append(a if i == j else (f"{a},{b}" if j == i + 1 else f"{a}..{b}"))
        i = j + 1
    return ",".join(out)


def cron_to_oncalendar(expr: str) -> str:
    """A 5-field cron expression (or @daily etc.) as a systemd ``OnCalendar=`` value.

    Cron runs a job when *either* a restricted day of month or a restricted day of week
    matches; one OnCalendar expression can only AND them, so that combination is refused.
    """
    expr = _MACROS.get(expr.strip().lower(), expr.strip())
    fields = expr.split()
    if len(fields) != 5:
        raise ScheduleError(f"cron expression {expr!r}: expected 5 fields (minute hour day month weekday)")
    minute, hour, dom, month, dow = (_expand(f, i) for i, f in enumerate(fields))
    if dom is not None and dow is not None:
        raise ScheduleError("cron ORs day-of-month and day-of-week when both are restricted; systemd cannot "
                            "express that in one OnCalendar: restrict only one of them")
    if dom is not None and not any(d <= _MONTH_DAYS[m - 1] for m in (month or range(1, 13)) for d in dom):
        raise ScheduleError(f"cron expression {expr!r} never fires: no month it names has day "
                            f"{', '.join(map(str, dom))}")
    dow_part = ""
    if dow is not None:
        monday_first = sorted((d + 6) % 7 for d in dow)  # 0 = Mon .. 6 = Sun
        names = _join(monday_first, 1).split(",")
        dow_part = ",".join("..".join(_DOW[(int(x) + 1) % 7] for x in n.split("..")) for n in names) + " "
    return f"{dow_part}*-{_join(month)}-{_join(dom)} {_join(hour)}:{_join(minute)}:00 UTC"


def check_calendar(calendar: str, timeout_s: float = 30.0) -> None:
    """``systemd-analyze calendar`` must accept ``calendar`` and find a next elapse (skipped when absent)."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        return
    res = subprocess.run([tool, "calendar", calendar], capture_output=True, text=True, timeout=timeout_s)
    out = (res.stdout + res.stderr).strip()
    if res.returncode != 0 or "Next elapse: never" in out:
        raise ScheduleError(f"systemd-analyze calendar {calendar!r}: " + (out.splitlines()[-1] if out else
                                                                         f"exit {res.returncode}"))


def unit_name(chapter: str) -> str:
    return f"runbooks-{re.sub(r'[^a-z0-9-]', '-', chapter.lower())}"


def mode_args(chapter: str, cluster: str | None) -> list[str]:
    """``--mode apply --set confirm=<cluster>`` for a chapter in :data:`SCHEDULED_MODE`, else nothing (plan)."""
    if chapter in SCHEDULED_MODE and cluster:
        return ["--mode", "apply", "--set", f"confirm={cluster}"]
    return []


def mode_text(chapter: str) -> str:
    return SCHEDULED_MODE.get(chapter, "plan: reports drift, changes nothing")


def _command(runbooks: str, chapter: str, params_file: str, extra: list[str] | None, out: str | None,
             cluster: str | None = None) -> list[str]:
    cmd = [runbooks, "run", chapter, "-p", params_file, "-q", *mode_args(chapter, cluster)]
    if out:
        cmd += ["--out", out]
    return cmd + list(extra or [])


def render_systemd(chapter: str, params_file: str | Path, cron: str, *, runbooks: str | None = None,
                   workdir: str | Path | None = None, user: str | None = None, out: str | None = None,
                   extra_args: list[str] | None = None, timeout_s: int = 3600,
                   cluster: str | None = None) -> dict[str, str]:
    """{"runbooks-<chapter>.service": text, "runbooks-<chapter>.timer": text} for ``cron`` (UTC).

    ``cluster``: the parameter file's cluster_name, for the confirm of chapters scheduled in apply."""
    calendar = cron_to_oncalendar(cron)
    name = unit_name(chapter)
    runbooks = runbooks or shutil.which("runbooks") or str(Path(sys.executable).with_name("runbooks"))
    params = str(Path(params_file).expanduser().resolve())
    wd = str(Path(workdir).resolve()) if workdir else str(Path(params).parent)
    cmd = shlex.join(_command(runbooks, chapter, params, extra_args, out, cluster))
    mode = mode_text(chapter) if cluster or chapter not in SCHEDULED_MODE else "plan"
    service = (
        "# written by `runbooks schedule`\n"
        "[Unit]\n"
        f"Description=k8s-runbooks: {chapter} (headless run in {mode}; HTML/JSON report)\n"
        "Wants=network-online.target\nAfter=network-online.target\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        + (f"User={user}\n" if user else "")
        + f"WorkingDirectory={wd}\n"
        "Environment=RUNBOOKS_HEADLESS=1\n"
        f"ExecStart={cmd}\n"
        f"TimeoutStartSec={int(timeout_s)}\n"
        # SIGTERM to `runbooks` only: it interrupts the kernel (the step cleans up) and writes the report
        "KillMode=mixed\nTimeoutStopSec=90\n"
        "Nice=10\nIOSchedulingClass=best-effort\nIOSchedulingPriority=7\n"
    )
    timer = (
        "# written by `runbooks schedule`\n"
        "[Unit]\n"
        f"Description=k8s-runbooks: {chapter} on schedule ({cron} UTC; {mode.split(':')[0]})\n\n"
        "[Timer]\n"
        f"OnCalendar={calendar}\n"
        "Persistent=true\n"
        "RandomizedDelaySec=60\n"
        f"Unit={name}.service\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )
    return {f"{name}.service": service, f"{name}.timer": timer}


def install_systemd(units: dict[str, str], dest: Path = SYSTEMD_DIR, enable: bool = True,
                    timeout_s: float = 60.0) -> list[Path]:
    """Write the unit files (0644) and, with ``enable``, daemon-reload + enable --now the timer."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in units.items():
        path = dest / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o644)
        written.append(path)
    if enable:
        timer = next(n for n in units if n.endswith(".timer"))
        for cmd in (["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", timer]):
            subprocess.run(cmd, check=True, timeout=timeout_s)
    return written


def verify_units(units: dict[str, str], timeout_s: float = 60.0) -> tuple[bool, str]:
    """``systemd-analyze verify`` on the unit pair (in a temp dir); (ok, output). Parses when it is absent."""
    import tempfile

    tool = shutil.which("systemd-analyze")
    if tool is None:
        problems = [n for n, text in units.items() if "[Service]" not in text and "[Timer]" not in text]
        return (not problems, "systemd-analyze absent; parsed only" + (f": {problems}" if problems else ""))
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for name, text in units.items():
            p = Path(d) / name
            p.write_text(text, encoding="utf-8")
            paths.append(str(p))
        res = subprocess.run([tool, "verify", *paths], capture_output=True, text=True, timeout=timeout_s)
        return res.returncode == 0, (res.stdout + res.stderr).strip()


def render_cronjob(chapter: str, params_file: str | Path, cron: str, *, image: str = "k8s-runbooks:0.1.0",
                   namespace: str = "kube-system", name: str | None = None,
                   params_configmap: str | None = None, ssh_secret: str | None = None,
                   pki_dir: str = "/etc/kubernetes/pki/etcd", backup_dir: str = "/var/backups/etcd",
                   reports_dir: str = "/var/lib/runbooks/reports", deadline_s: int = 3600,
                   time_zone: str = "Etc/UTC", cluster: str | None = None) -> dict[str, Any]:
    """A batch/v1 CronJob running ``runbooks run <chapter>`` (papermill) on a control-plane node.

    The parameter file comes from a ConfigMap (key ``params.yaml``), the SSH key and known_hosts
    the chapter uses to reach the node from a Secret; nothing secret is inlined.
    """
    base = name or unit_name(chapter)
    cm = params_configmap or f"{base}-params"
    secret = ssh_secret or f"{base}-ssh"
    params_name = Path(params_file).name
    cmd = ["runbooks", "run", chapter, "-p", f"/etc/runbooks/{params_name}", "-q", *mode_args(chapter, cluster),
           "--out", "/reports"]
    labels = {"app.kubernetes.io/name": "k8s-runbooks", "app.kubernetes.io/component": chapter}
    annotations = {"runbooks.k8s/mode": mode_text(chapter) if cluster or chapter not in SCHEDULED_MODE else "plan"}
    container = {
        "name": "runbooks",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": cmd,
        "env": [{"name": "RUNBOOKS_HEADLESS", "value": "1"}],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "volumeMounts": [
            {"name": "params", "mountPath": "/etc/runbooks", "readOnly": True},
            {"name": "ssh", "mountPath": "/etc/runbooks-ssh", "readOnly": True},
            {"name": "etcd-certs", "mountPath": pki_dir, "readOnly": True},
            {"name": "backups", "mountPath": backup_dir},
            {"name": "reports", "mountPath": "/reports"},
        ],
    }
    pod_spec = {
        "restartPolicy": "Never",
        "hostNetwork": True,
        "dnsPolicy": "ClusterFirstWithHostNet",
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": {"node-role.kubernetes.io/control-plane": ""},
        "tolerations": [
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "node-role.kubernetes.io/master", "operator": "Exists", "effect": "NoSchedule"},
        ],
        "containers": [container],
        "volumes": [
            {"name": "params", "configMap": {"name": cm, "items": [{"key": "params.yaml", "path": params_name}]}},
            {"name": "ssh", "secret": {"secretName": secret, "defaultMode": 0o400}},
            {"name": "etcd-certs", "hostPath": {"path": pki_dir, "type": "Directory"}},
            {"name": "backups", "hostPath": {"path": backup_dir, "type": "DirectoryOrCreate"}},
            {"name": "reports", "hostPath": {"path": reports_dir, "type": "DirectoryOrCreate"}},
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": base, "namespace": namespace, "labels": dict(labels), "annotations": annotations},
        "spec": {
            "schedule": _MACROS.get(cron.strip().lower(), cron.strip()),
            "timeZone": time_zone,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": dict(labels)},
                "spec": {"backoffLimit": 0, "activeDeadlineSeconds": int(deadline_s),
                         "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec}},
            },
        },
    }


def validate_cronjob(manifest: dict[str, Any], kubernetes_version: str = "1.30") -> None:
    """Schema validation with kubernetes-validate (raises its ValidationError)."""
    import kubernetes_validate

    kubernetes_validate.validate(manifest, kubernetes_version, strict=True)


# ----------------------------------------------------------------------------- CLI


def _cmd_schedule(args: argparse.Namespace) -> int:
    from . import chapters
    from .params import DEFAULT_PARAMS, ParamsError, load_params

    try:
        ch = chapters.find(args.chapter)
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    if not ch.built:
        print(f"schedule: chapter {ch.name} is not built yet ({ch.notebook.name} does not exist)", file=sys.stderr)
        return 2
    params_file = Path(args.params or DEFAULT_PARAMS)
    try:
        params = load_params(params_file, [])
    except ParamsError as exc:
        print(f"invalid parameters: {exc}", file=sys.stderr)
        return 2
    if ch.name == "etcd-backup" and params.etcd_backup.restore.enabled:
        print(f"schedule: {params_file} has etcd_backup.restore.enabled: true; a scheduled run must never "
              "restore etcd: use a parameter file without it", file=sys.stderr)
        return 2
    try:
        check_calendar(cron_to_oncalendar(args.cron))
        if args.kubernetes:
            manifest = render_cronjob(ch.name, params_file, args.cron, image=args.image, namespace=args.namespace,
                                      cluster=params.cluster_name)
            validate_cronjob(manifest, params.kubernetes_version)
            print(yaml.safe_dump(manifest, sort_keys=False), end="")
            return 0
        units = render_systemd(ch.name, params_file, args.cron, out=args.out, cluster=params.cluster_name)
    except ScheduleError as exc:
        print(f"schedule: {exc}", file=sys.stderr)
        return 2
    ok, output = verify_units(units)
    if not ok:
        print(f"systemd-analyze verify failed:\n{output}", file=sys.stderr)
        return 1
    if args.dry_run:
        for name, text in units.items():
            print(f"# --- {name}\n{text}")
        return 0
    for path in install_systemd(units):
        print(f"wrote {path}")
    print(f"enabled {unit_name(ch.name)}.timer (next run: systemctl list-timers {unit_name(ch.name)}.timer)")
    return 0


def add_schedule_parser(sub: Any) -> None:
    """``runbooks schedule CHAPTER --cron EXPR -p FILE [--dry-run] [--kubernetes]``."""
    p = sub.add_parser("schedule", help="run a chapter on a schedule (systemd timer or Kubernetes CronJob)")
    p.add_argument("chapter", help="chapter name or number, e.g. etcd-backup")
    p.add_argument("--cron", required=True, help='cron expression in UTC, e.g. "0 2 * * *" (the timer says '
                   "OnCalendar=... UTC; the CronJob timeZone: Etc/UTC); etcd-backup runs in apply with confirm")
    p.add_argument("-p", "--params", help="parameter file the scheduled run uses")
    p.add_argument("--dry-run", action="store_true", help="print the units instead of installing them")
    p.add_argument("--kubernetes", action="store_true", help="print a CronJob manifest instead")
    p.add_argument("--image", default="k8s-runbooks:0.1.0", help="image for --kubernetes")
    p.add_argument("--namespace", default="kube-system", help="namespace for --kubernetes")
    p.add_argument("--out", default=None, help="reports directory of the scheduled runs")
    p.set_defaults(func=_cmd_schedule)
