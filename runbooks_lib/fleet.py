"""Parallel fan-out across hosts with bounded concurrency; every host gets an outcome.

One unreachable or failing host never hides the others' results (as fabric's GroupResult),
and the whole fan-out has a wall-clock limit, unlike fabric's ThreadingGroup join. When the
limit passes or the caller is interrupted, no worker goes on with remote work: queued hosts are
cancelled, running commands are stopped on their hosts, and the workers are joined (bounded).
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from .transport.base import (
    Cancelled,
    Command,
    CommandResult,
    TargetUnreachable,
    Transport,
    stop_requested,
    stop_scope,
)

T = TypeVar("T")

#: seconds a stopped fan-out waits for its workers to stop their commands on the hosts
STOP_JOIN_S = 15.0  # under the runner's 20 s grace for an interrupted step


@dataclass
class Outcome(Generic[T]):
    """What happened on one host: a value, or why there is none."""

    host: str
    value: T | None = None
    error: str | None = None
    unreachable: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


class Fleet:
    """A named set of transports; ``forks`` bounds the threads in flight."""

    def __init__(self, transports: Iterable[Transport], forks: int = 20) -> None:
        self.transports = {t.name: t for t in transports}
        self.forks = max(1, forks)

    def __len__(self) -> int:
        return len(self.transports)

    def subset(self, names: Iterable[str]) -> Fleet:
        wanted = set(names)
        unknown = wanted - set(self.transports)
        if unknown:
            raise KeyError(f"unknown hosts: {', '.join(sorted(unknown))}")
        return Fleet([t for n, t in self.transports.items() if n in wanted], self.forks)

    def map(
        self,
        fn: Callable[[Transport], T],
        *,
        timeout: float = 600.0,
        hosts: Iterable[str] | None = None,
    ) -> dict[str, Outcome[T]]:
        """Call ``fn(transport)`` on every host in parallel; results keyed by host, in host order.

        Interrupted (KeyboardInterrupt, or the fan-out this one runs inside is stopped), the
        commands still running are stopped on their hosts before the exception goes on."""
        names = list(hosts) if hosts is not None else list(self.transports)
        outcomes: dict[str, Outcome[T]] = {}
        stop = threading.Event()

        def scoped(t: Transport) -> T:
            with stop_scope(stop):
                return fn(t)

        pool = cf.ThreadPoolExecutor(max_workers=min(self.forks, max(1, len(names))),
                                     thread_name_prefix="fleet")
        futures: dict[cf.Future[T], str] = {}
        try:
            for n in names:  # one by one: an interrupt between two submits still finds the first
                futures[pool.submit(scoped, self.transports[n])] = n
            done, not_done = self._wait(futures, timeout)
            if not_done:
                self._stop(futures, stop)
            for fut in done:
                name = futures[fut]
                exc = fut.exception()
                if exc is None:
                    outcomes[name] = Outcome(name, value=fut.result())
                elif isinstance(exc, TargetUnreachable):
                    outcomes[name] = Outcome(name, error=str(exc), unreachable=True)
                else:
                    tb = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                    outcomes[name] = Outcome(name, error=tb)
            for fut in not_done:
                name = futures[fut]
                outcomes[name] = Outcome(name, error=f"no answer within {timeout:.0f}s fan-out limit",
                                         unreachable=True)
        except BaseException:
            self._stop(futures, stop)
            raise
        finally:  # join idle workers; one past STOP_JOIN_S is left, to start at most a shielded cleanup
            pool.shutdown(wait=all(f.done() for f in futures), cancel_futures=True)
        return {n: outcomes[n] for n in names}

    @staticmethod
    def _wait(futures: dict[cf.Future[T], str], timeout: float) -> tuple[set[cf.Future[T]], set[cf.Future[T]]]:
        """Wait for the futures up to ``timeout``; raise Cancelled if an enclosing fan-out stops."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            done, not_done = cf.wait(futures, timeout=max(0.0, min(left, 0.2)))
            if not not_done or left <= 0:
                return done, not_done
            if stop_requested():
                raise Cancelled("enclosing fan-out stopped")

    @staticmethod
    def _stop(futures: dict[cf.Future[T], str], stop: threading.Event) -> None:
        """Cancel what has not started, stop what runs (each worker stops its own command on its
        host), and wait up to STOP_JOIN_S for the workers to finish."""
        for fut in futures:
            fut.cancel()
        stop.set()
        cf.wait(futures, timeout=STOP_JOIN_S)

    def run(self, cmd: Command, *, timeout: float | None = None, sudo: bool = True,
            hosts: Iterable[str] | None = None) -> dict[str, Outcome[CommandResult]]:
        """Run one command everywhere."""
        per_cmd = timeout
        wall = (timeout or max(t.command_timeout for t in self.transports.values())) + 60
        return self.map(lambda t: t.run(cmd, timeout=per_cmd, sudo=sudo), timeout=wall, hosts=hosts)

    def close(self) -> None:
        for t in self.transports.values():
            t.close()
