"""Parallel fan-out across hosts with bounded concurrency; every host gets an outcome.

One unreachable or failing host never hides the others' results (as fabric's GroupResult),
and the whole fan-out has a wall-clock limit, unlike fabric's ThreadingGroup join.
"""

from __future__ import annotations

import concurrent.futures as cf
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from .transport.base import Command, CommandResult, TargetUnreachable, Transport

T = TypeVar("T")


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
        """Call ``fn(transport)`` on every host in parallel; results keyed by host, in host order."""
        names = list(hosts) if hosts is not None else list(self.transports)
        outcomes: dict[str, Outcome[T]] = {}
        pool = cf.ThreadPoolExecutor(max_workers=min(self.forks, max(1, len(names))),
                                     thread_name_prefix="fleet")
        try:
            futures = {pool.submit(fn, self.transports[n]): n for n in names}
            done, not_done = cf.wait(futures, timeout=timeout)
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
                fut.cancel()
                name = futures[fut]
                outcomes[name] = Outcome(name, error=f"no answer within {timeout:.0f}s fan-out limit",
                                         unreachable=True)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return {n: outcomes[n] for n in names}

    def run(self, cmd: Command, *, timeout: float | None = None, sudo: bool = True,
            hosts: Iterable[str] | None = None) -> dict[str, Outcome[CommandResult]]:
        """Run one command everywhere."""
        per_cmd = timeout
        wall = (timeout or max(t.command_timeout for t in self.transports.values())) + 60
        return self.map(lambda t: t.run(cmd, timeout=per_cmd, sudo=sudo), timeout=wall, hosts=hosts)

    def close(self) -> None:
        for t in self.transports.values():
            t.close()
