"""Execute a notebook with papermill so that SIGINT and SIGTERM stop it cleanly.

Papermill runs in a worker thread; the main thread only waits and owns the signal handlers
(:class:`StopSignals`, held until the caller has written the report).
On a signal it interrupts the kernel's process group (the running step's own ``finally``
blocks and context managers clean up on the nodes), lets no further cell start, waits
``grace`` seconds for papermill to return (nbclient then shuts the kernel down), and
otherwise kills the group. A kernel never outlives the run.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbclient.exceptions import CellExecutionError
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.utils import merge_kwargs, remove_args
from traitlets import Any as AnyTrait

from .progress import Progress

ENGINE = "runbooks"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Execution:
    """What happened to one notebook execution."""

    error: BaseException | None = None
    signal: int | None = None  # the signal that stopped the run
    kernel_pid: int | None = None
    kernel_pgid: int | None = None
    stop_s: float | None = None  # from the signal to papermill having returned
    kernel_killed: bool = False  # the kernel ignored the interrupt and was killed


class _Client(PapermillNotebookClient):  # type: ignore[misc]
    """Reports its kernel's process group, starts no cell once a stop was requested, tells the
    console progress which cell runs and what it prints, and talks to the kernel over IPC."""

    on_kernel = AnyTrait(None)
    stop_requested = AnyTrait(None)
    watcher = AnyTrait(None)  # a progress.Progress, or None
    ipc_path = AnyTrait(None)  # path prefix of the kernel's IPC sockets, or None for TCP

    def create_kernel_manager(self) -> Any:
        """IPC transport: the kernel's sockets are files in the run's private directory, nothing
        listens on a TCP port (and ipykernel has no "running over TCP without encryption" to warn)."""
        km = super().create_kernel_manager()
        if self.ipc_path is not None:
            km.transport = "ipc"
            km.ip = str(self.ipc_path)
        return km

    # papermill drives nbclient through these synchronous wrappers
    def start_new_kernel(self, **kwargs: Any) -> None:
        super().start_new_kernel(**kwargs)
        if self.on_kernel is not None:
            self.on_kernel(self.km)

    def execute_cell(self, cell: Any, cell_index: int, *args: Any, **kwargs: Any) -> Any:
        if self.stop_requested is not None and self.stop_requested.is_set():
            raise CellExecutionError("run interrupted: no further cell started", "RunInterrupted", "")
        if self.watcher is not None and cell.get("cell_type") == "code":
            self.watcher.on_cell(cell_index, len(self.nb.cells))
        return super().execute_cell(cell, cell_index, *args, **kwargs)

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        output = super().process_message(msg, cell, cell_index)
        if self.watcher is not None and output is not None and output.get("output_type") == "stream":
            self.watcher.on_text(str(output.get("text", "")))
        return output


class _Engine(NBClientEngine):  # type: ignore[misc]
    """papermill's nbclient engine with :class:`_Client`."""

    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, log_output: bool = False,
                                 stdout_file: Any = None, stderr_file: Any = None, start_timeout: int = 60,
                                 execution_timeout: float | None = None, **kwargs: Any) -> Any:
        kwargs = remove_args(["input_path"], **kwargs)
        safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
        final_kwargs = merge_kwargs(
            safe_kwargs, timeout=execution_timeout or kwargs.get("timeout"), startup_timeout=start_timeout,
            kernel_name=kernel_name, log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file)
        return _Client(nb_man, **final_kwargs).execute()


papermill_engines.register(ENGINE, _Engine)


def _stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name: state, ppid, pgrp, session, ..."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    fields = _stat(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def _group_members(pgid: int) -> list[int]:
    """Live processes in process group and session ``pgid`` (the kernel's own session)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if len(fields) > 3 and fields[2] == fields[3] == str(pgid) and fields[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


def _signal_group(ex: Execution, sig: int) -> None:
    """Signal the kernel's process group, only after checking it is the kernel's.

    jupyter_client starts a kernel with ``start_new_session``, so its group id is its pid. The
    group is signalled only when that holds, it is not this process's group (nor 0/1), and a live
    member of that very session exists (a group id is not reused while it has members)."""
    pgid, pid = ex.kernel_pgid, ex.kernel_pid
    if not pgid or pgid != pid or pgid <= 1 or pgid in (os.getpgrp(), os.getpid()):
        return
    if not _group_members(pgid):
        return
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return


class StopSignals:
    """SIGINT/SIGTERM handlers for a whole run, including writing its report afterwards: a signal
    is recorded (``received``, ``event``) instead of killing the process half way through a file.
    Installed only in the main thread (Python's rule); the previous handlers come back on exit."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.received: list[int] = []
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._on_signal) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.received.append(signum)
        self.event.set()

    @property
    def exit_code(self) -> int | None:
        """128 + the first signal's number (130 SIGINT, 143 SIGTERM), if one arrived."""
        return 128 + self.received[0] if self.received else None


def execute(notebook: Path, output: Path, parameters: dict[str, Any], kernel_name: str, *,
            cell_timeout: float, cwd: Path, progress: bool, stops: StopSignals, grace: float = 20.0,
            watcher: Progress | None = None, ipc_path: Path | None = None) -> Execution:
    """Run ``notebook`` into ``output``; stop it when ``stops`` sees SIGINT/SIGTERM (see the module
    docstring). ``watcher``: the console line naming step and host (instead of papermill's cell
    bar when given); ``ipc_path``: talk to the kernel over IPC sockets at this path prefix."""
    import papermill as pm

    ex = Execution()

    def on_kernel(km: Any) -> None:
        ex.kernel_pid = km.provisioner.pid
        ex.kernel_pgid = km.provisioner.pgid

    def work() -> None:
        try:
            pm.execute_notebook(
                str(notebook), str(output), parameters=parameters, kernel_name=kernel_name,
                engine_name=ENGINE, progress_bar=progress and watcher is None, request_save_on_cell_execute=True,
                execution_timeout=cell_timeout, cwd=str(cwd), on_kernel=on_kernel, stop_requested=stops.event,
                watcher=watcher if progress else None, ipc_path=ipc_path)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, which writes the report
            ex.error = exc

    worker = threading.Thread(target=work, name="papermill", daemon=True)
    worker.start()
    while worker.is_alive() and not stops.event.is_set():
        worker.join(0.2)
        if progress and watcher is not None:
            watcher.tick()
    if progress and watcher is not None:
        watcher.done()
    if stops.event.is_set():
        ex.signal = stops.received[0]
        t0 = time.monotonic()
        _stop_kernel(ex, worker, grace, stops.received)
        ex.stop_s = round(time.monotonic() - t0, 2)
    return ex


def _stop_kernel(ex: Execution, worker: threading.Thread, grace: float, received: list[int]) -> None:
    """Interrupt, wait ``grace`` s (a second signal cuts it short), then kill the kernel's group."""
    _signal_group(ex, signal.SIGINT)
    deadline = time.monotonic() + grace
    while worker.is_alive() and time.monotonic() < deadline and len(received) < 2:
        worker.join(0.1)
    if worker.is_alive() or (ex.kernel_pid and _alive(ex.kernel_pid)):
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 10.0)):
            if not (ex.kernel_pid and _alive(ex.kernel_pid)):
                break
            ex.kernel_killed = True
            _signal_group(ex, sig)
            end = time.monotonic() + wait
            while ex.kernel_pid and _alive(ex.kernel_pid) and time.monotonic() < end:
                time.sleep(0.05)
        worker.join(15.0)  # nbclient notices the dead kernel and returns
    # whatever the kernel started in its group (ssh, local commands) goes with it
    _signal_group(ex, signal.SIGKILL)
