"""A chapter run inside the kernel: parameters, recorder, hosts, checks, figures, verdict.

A notebook starts one with :meth:`Run.start` (after its ``parameters`` cell) and ends with
:meth:`Run.finish`, which shows the verdict (PASS, DRIFT or FAIL) and never raises: a failed
check is a verdict, not a crash; the runner takes the exit code from ``checks.jsonl``. Everything
is also written to ``run_dir`` (the runner's private directory) as it happens (JSON lines), so the
runner can build the report even when the kernel dies half way.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import __version__
from .evidence import Recorder, set_current, utc_now
from .fleet import Fleet
from .kube.errors import KubeError
from .params import Params, load_params, resolve_secret, secret_values
from .redact import default_redactor
from .transport import CommandFailed, SSHTransport, TargetUnreachable, Transport
from .verdict import Check, append_check, exit_code_for

RUN_DIR_ENV = "RUNBOOKS_RUN_DIR"
#: errors a guarded step records as a check instead of raising (a bug's exception still raises)
STEP_ERRORS = (KubeError, TargetUnreachable, CommandFailed, OSError, ValueError)
#: the chapter's reports directory (``--out``/<chapter>), set by the runner for earlier runs' figures
REPORTS_DIR_ENV = "RUNBOOKS_REPORTS_DIR"


class DestructiveRefused(PermissionError):
    """A destructive step was asked without mode=apply and confirm=<cluster name>."""


@functools.cache
def tool_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"runbooks_lib": __version__, "python": platform.python_version()}
    for dist in ("papermill", "nbconvert", "fabric", "kubernetes", "pydantic"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "absent"
    return out


class Run:
    """State of one chapter run in the kernel."""

    def __init__(self, chapter: str, params: Params, run_dir: Path, overrides: list[str] | None = None) -> None:
        self.chapter = chapter
        self.params = params
        self.overrides = list(overrides or [])
        self.run_dir = run_dir
        self.redactor = default_redactor()
        for value in secret_values(params):
            self.redactor.add_secret(value)
        self.recorder = Recorder(run_dir / "evidence.jsonl", self.redactor)
        set_current(self.recorder)
        self.checks: list[Check] = []
        self.figures: dict[str, Any] = {}
        self.targets: list[str] = []
        self.started = time.monotonic()
        self.started_utc = utc_now()
        self._fleet: Fleet | None = None
        self.header_handle: Any = None  # display.header's handle, re-rendered when params switch
        reports = os.environ.get(REPORTS_DIR_ENV)
        self.reports_dir: Path | None = Path(reports) if reports else None  # None interactively
        if params.hosts:
            kind = "lab" if params.is_lab else "hosts"
            names = ", ".join(h.name for h in params.selected_hosts())
            self.targets.append(f"{kind}: {names}")
        self._write_meta()

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def start(cls, chapter: str, params_file: str | None = None, overrides: list[str] | None = None,
              run_dir: str | None = None) -> Run:
        """Load and validate parameters (nothing is contacted) and begin recording."""
        params = load_params(params_file, overrides or [])
        where = run_dir or os.environ.get(RUN_DIR_ENV)
        path = Path(where) if where else Path(tempfile.mkdtemp(prefix=f"runbooks-{chapter}-"))
        path.mkdir(parents=True, exist_ok=True)
        return cls(chapter, params, path, overrides)

    def _write_meta(self) -> None:
        meta = {
            "chapter": self.chapter, "mode": self.params.mode, "params": self.params.name,
            "params_file": self.params.source, "cluster_name": self.params.cluster_name,
            "targets": self.targets, "started_utc": self.started_utc, "tools": tool_versions(),
        }
        (self.run_dir / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")

    def add_target(self, description: str) -> None:
        """Name what this run reached (e.g. "API double at https://127.0.0.1:PORT")."""
        if description not in self.targets:
            self.targets.append(description)
            self._write_meta()

    def use_params(self, params: Params) -> None:
        """Switch to other parameters (the interactive panel); connections are reopened."""
        if self._fleet is not None:
            self._fleet.close()
        self._fleet = None
        self.params = params
        for value in secret_values(params):
            self.redactor.add_secret(value)

    # ------------------------------------------------------------------ hosts
    def transport(self, host_name: str) -> Transport:
        return self.fleet().transports[host_name]

    def fleet(self) -> Fleet:
        """SSH transports for the selected hosts (connections open lazily)."""
        if self._fleet is None:
            p = self.params
            known = Path(p.ssh.known_hosts) if p.ssh.known_hosts else None
            self._fleet = Fleet(
                [
                    SSHTransport(
                        h.name, h.address, port=h.port, user=h.user,
                        key=Path(h.key) if h.key else None, known_hosts=known,
                        strict_host_key=p.ssh.strict_host_key, connect_timeout=p.ssh.connect_timeout,
                        command_timeout=p.ssh.command_timeout, recorder=self.recorder,
                    )
                    for h in p.selected_hosts()
                ],
                forks=p.ssh.forks,
            )
        return self._fleet

    def secret(self, name: str) -> str:
        """A named secret from ``secrets:``, read inside the kernel and registered for redaction."""
        ref = self.params.secrets.get(name)
        if ref is None:
            raise KeyError(f"secret {name!r} is not defined under secrets:")
        value = resolve_secret(ref, f"secrets.{name}")
        self.redactor.add_secret(value)
        return value

    # ------------------------------------------------------------------ safety
    def require_confirm(self, what: str) -> None:
        """Refuse a destructive step unless mode=apply and confirm=<cluster name>."""
        if not self.params.confirmed:
            self.recorder.note(f"refused destructive step: {what} (mode={self.params.mode}, "
                               f"confirm {'matches' if self.params.confirm == self.params.cluster_name else 'missing'})")
            raise DestructiveRefused(
                f"{what} is destructive: it needs mode=apply and confirm={self.params.cluster_name}")

    # ------------------------------------------------------------------ results
    def check(self, check: str, host: str, status: str, detail: str = "") -> Check:
        c = Check(check, host, status, self.redactor.redact(detail), step=self.recorder.step)
        self.checks.append(c)
        append_check(self.run_dir / "checks.jsonl", c)
        return c

    @contextlib.contextmanager
    def guarded(self, step: str, host: str) -> Iterator[None]:
        """Run a block as step ``step``: an error of :data:`STEP_ERRORS` raised inside becomes the check
        ``step`` (``error``, or ``unreachable``) for ``host``, its traceback in that step's evidence."""
        with self.recorder.in_step(step):
            try:
                yield
            except STEP_ERRORS as exc:
                self.recorder.record(kind="error", target=host, command=f"{step}: {type(exc).__name__}",
                                     exit_code=None, stderr=traceback.format_exc(), status="error")
                status = "unreachable" if isinstance(exc, TargetUnreachable) else "error"
                self.check(step, host, status, f"{type(exc).__name__}: {exc}")

    def figure(self, key: str, value: Any) -> None:
        """A key figure for the JSON report (numbers, small tables)."""
        self.figures[key] = self.redactor.redact_obj(value)
        (self.run_dir / "figures.json").write_text(
            json.dumps(self.figures, indent=2, default=str), encoding="utf-8")

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.checks)

    def checks_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame([asdict(c) for c in self.checks], columns=["check", "host", "status", "detail"])

    def finish(self) -> None:
        """Show the verdict. Never raises for a failed check or drift: that is the verdict."""
        from .display import show_verdict

        if self._fleet is not None:
            self._fleet.close()
        duration = time.monotonic() - self.started
        (self.run_dir / "finished.json").write_text(
            json.dumps({"duration_s": round(duration, 2), "finished_utc": utc_now()}), encoding="utf-8")
        show_verdict(self)
