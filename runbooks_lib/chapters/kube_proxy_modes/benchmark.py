"""Controller side of the dataplane benchmark: run the node program on a host, collect, verify.

The node program (``node_bench.py``, stdlib only) runs as ``python3 -c`` on the target over its
Transport (SSH to a node, or LocalTransport for this machine), once per N to load and time the
rules (each N has its own time limit and reports progress), then once for the interleaved latency
probe. Whatever happens, a cleanup pass runs afterwards and the
host is then checked for leftovers (namespaces, processes, rules, sets carrying the run id).
"""

from __future__ import annotations

import base64
import secrets
import shlex
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...transport import CommandResult, TargetUnreachable, Transport
from . import facts
from .settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

NODE_PROGRAM = Path(__file__).with_name("node_bench.py")
MIN_PYTHON = (3, 9)

Progress = Callable[[int, dict[str, Any]], None]


def node_source() -> str:
    return NODE_PROGRAM.read_text(encoding="utf-8")


def new_run_id() -> str:
    return secrets.token_hex(4)


def node_args(run_id: str, n: int, settings: Settings) -> list[str]:
    """Arguments of the node program for one N."""
    args = ["--run-id", run_id, "--n", str(n), "--endpoints", str(settings.endpoints),
            "--connections", str(settings.connections), "--point-time-limit", str(settings.point_time_limit_s),
            "--point-timeout", str(settings.per_n_timeout_s), "--modes", ",".join(settings.modes),
            "--nft-chunk", str(settings.nft_transaction_services)]
    if settings.ipvs_load_modules:
        args.append("--load-ipvs-modules")
    return args


LOADER = ("import base64, sys, zlib; "
          "exec(compile(zlib.decompress(base64.b64decode(sys.argv.pop(1))), 'kpm_node_bench', 'exec'))")


def node_payload() -> str:
    """The node program, compressed and base64-encoded for the command line (~17 kB)."""
    return base64.b64encode(zlib.compress(node_source().encode(), 9)).decode()


def _node_run(transport: Transport, args: list[str], timeout: float, what: str) -> CommandResult:
    # The program travels in the command line, not on stdin: it leaves no file behind and does
    # not depend on how a transport streams stdin (fabric/invoke feeds it byte by byte).
    tail = " ".join(shlex.quote(a) for a in args)
    cmd = f"python3 -c {shlex.quote(LOADER)} {node_payload()} {tail}"
    return transport.run(cmd, sudo=True, timeout=timeout,
                         display=f"python3 -c <{NODE_PROGRAM.name}, zlib+base64> {tail}  # {what}")


def _node_doc(transport: Transport, args: list[str], timeout: float, what: str) -> tuple[dict[str, Any] | None, str]:
    """The node program's document, or None and why not (timeout, no JSON, its own error)."""
    res = _node_run(transport, args, timeout, what)
    if res.timed_out:
        return None, f"timed out after {timeout:.0f}s"
    try:
        doc = facts.parse_bench_output(res.stdout)
    except ValueError as exc:
        return None, f"{exc}; stderr: {res.stderr.strip()[-300:]}"
    if "error" in doc:
        return None, str(doc["error"])
    return doc, ""


@dataclass
class BenchmarkResult:
    """What one benchmark run produced on one host."""

    host: str
    run_id: str
    documents: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    probe: dict[str, Any] = field(default_factory=dict)  # the interleaved latency pass (node program --probe)

    @property
    def rows(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for doc in self.documents:
            out.extend(facts.rows_from_doc(doc, self.host))
        return out

    def frame(self) -> pd.DataFrame:
        """The tidy table: one row per (N, mode), the probe floor as mode "floor (no rules)"."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=facts.ROW_COLUMNS)

    def unavailable(self) -> dict[str, str]:
        """Modes reported unavailable, with the reason (from the last document)."""
        out: dict[str, str] = {}
        for doc in self.documents:
            for mode, entry in (doc.get("modes") or {}).items():
                if entry.get("status") == "unavailable":
                    out[mode] = entry.get("reason", "")
        return out

    def environment(self) -> dict[str, Any]:
        doc = self.documents[-1] if self.documents else {}
        env = {k: doc.get(k) for k in ("host", "kernel", "python", "tools", "layouts", "client_hook")}
        env["timed"] = {m: e["timed"] for m, e in (doc.get("modes") or {}).items() if e.get("timed")}
        return env


def preflight(transport: Transport) -> str | None:
    """None when the host can run the program, else why not (python3 >= 3.9, root via sudo)."""
    res = transport.run("python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])' && id -u", sudo=True,
                        timeout=30)
    if not res.ok:
        return f"cannot run python3 as root: {(res.stderr or res.stdout).strip()[-300:]}"
    lines = res.stdout.split()
    try:
        major, minor = (int(x) for x in lines[0].split("."))
    except (ValueError, IndexError):
        return f"unexpected output: {res.stdout.strip()[:200]}"
    if (major, minor) < MIN_PYTHON:
        return f"python3 is {major}.{minor}; the node program needs >= 3.9"
    if len(lines) < 2 or lines[1] != "0":
        return "commands do not run as root (sudo)"
    return None


def cleanup(transport: Transport, run_id: str) -> dict[str, Any]:
    """Remove whatever run ``run_id`` left behind (namespaces, processes); safe to repeat."""
    res = _node_run(transport, ["--run-id", run_id, "--cleanup"], 120, "cleanup by prefix")
    try:
        return facts.parse_bench_output(res.stdout)
    except ValueError:
        return {"error": (res.stderr or res.stdout).strip()[-300:]}


def leftovers(transport: Transport, run_id: str) -> list[str]:
    """Everything of the run still on the host: [] when clean. Looks at namespaces, processes,
    and the host's own iptables/nftables/ipset state for the run's marker ``kpm-<run id>``."""
    prefix = f"kpm-{run_id}"
    found: list[str] = []
    ns = transport.run("ip netns list", sudo=True, timeout=30)
    found += [f"netns {n}" for n in facts.parse_netns_list(ns.stdout) if n.startswith(prefix)]
    procs = transport.run(f"grep -lx {shlex.quote(prefix)} /proc/[0-9]*/comm 2>/dev/null || true",
                          sudo=True, timeout=30)
    found += [f"process {p.split('/')[2]}" for p in procs.stdout.split() if p.startswith("/proc/")]
    marker = shlex.quote(prefix)
    for tool, cmd in (("iptables", "iptables-save"), ("nftables", "nft list ruleset"), ("ipset", "ipset list")):
        res = transport.run(f"command -v {cmd.split()[0]} >/dev/null 2>&1 || exit 0; "
                            f"{cmd} 2>/dev/null | grep -c -- {marker} || true", sudo=True, timeout=120)
        count = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else "0"
        if count.isdigit() and int(count) > 0:
            found.append(f"{tool}: {count} host rule lines mention {prefix}")
    return found


def probe_timeout(settings: Settings, targets: int) -> float:
    return targets * settings.point_time_limit_s + 60


def probe_latency(transport: Transport, run_id: str, settings: Settings, result: BenchmarkResult) -> None:
    """Measure every kept (mode, N) and the floor in interleaved rounds; put each point's latency
    into its document (``modes.<mode>.latency``, ``floor``)."""
    grid = [int(d["n"]) for d in result.documents]
    targets = 1 + sum(1 for d in result.documents for e in d.get("modes", {}).values() if e.get("status") == "ok")
    args = ["--run-id", run_id, "--probe", "--grid", ",".join(map(str, grid)), "--rounds", str(settings.probe_rounds),
            "--endpoints", str(settings.endpoints), "--connections", str(settings.connections),
            "--point-time-limit", str(settings.point_time_limit_s), "--modes", ",".join(settings.modes)]
    doc, err = _node_doc(transport, args, probe_timeout(settings, targets),
                         f"latency of {targets} points, {settings.probe_rounds} interleaved rounds")
    if doc is None:
        result.errors.append(f"latency probe: {err}")
        return
    result.probe = doc
    facts.merge_probe(result.documents, doc)


def run_benchmark(transport: Transport, settings: Settings, *, run_id: str | None = None,
                  progress: Progress | None = None) -> BenchmarkResult:
    """Run the grid on ``transport``'s host; always clean up and check for leftovers."""
    run_id = run_id or new_run_id()
    result = BenchmarkResult(host=transport.name, run_id=run_id)
    t0 = time.monotonic()
    recorder = transport.recorder
    try:
        why = preflight(transport)
        if why:
            result.errors.append(why)
            return result
        for slot, n in enumerate(settings.grid):
            doc, err = _node_doc(transport, [*node_args(run_id, n, settings), "--slot", str(slot)],
                                 settings.per_n_timeout_s + 30, f"benchmark N={n}: program, +1 service")
            if doc is None:
                result.errors.append(f"N={n}: {err}")
                break
            result.documents.append(doc)
            recorder.note(f"kube-proxy benchmark N={n} on {transport.name}: " + ", ".join(
                f"{m} {e.get('status')}" for m, e in doc.get("modes", {}).items()), target=transport.name)
            if progress:
                progress(n, doc)
        if result.documents:
            probe_latency(transport, run_id, settings, result)
            if progress:
                progress(-1, result.probe)
    except TargetUnreachable as exc:
        result.errors.append(f"unreachable: {exc.reason}")
        result.duration_s = time.monotonic() - t0
        return result
    finally:
        try:
            cleanup(transport, run_id)
            result.leftovers = leftovers(transport, run_id)
        except TargetUnreachable as exc:
            result.leftovers = [f"not verified: {exc.reason}"]
    result.duration_s = time.monotonic() - t0
    return result


def print_progress(n: int, doc: dict[str, Any]) -> None:
    """Default progress: one line per N (rules), then one for the latency pass (n = -1)."""
    if n < 0:
        res = doc.get("results", {})
        print(f"latency ({doc.get('rounds')} interleaved rounds, {doc.get('duration_s', 0):.1f} s): " + "; ".join(
            f"{k} p50 {v.get('p50_us')} µs" for k, v in res.items()), flush=True)
        return
    parts = [f"floor p50 {doc['floor'].get('p50_us')} µs"] if doc.get("floor") else []
    for mode, e in doc.get("modes", {}).items():
        if e.get("status") == "ok":
            parts.append(f"{mode}: load {e.get('program_s')} s, +1 svc {e.get('incremental_s')} s"
                         + (f", p50 {e['latency'].get('p50_us')} µs" if e.get("latency") else ""))
        else:
            parts.append(f"{mode}: {e.get('status')}")
    print(f"N={n:>6} ({doc.get('duration_s', 0):.1f} s): " + "; ".join(parts), flush=True)


# ----------------------------------------------------------------------------- findings

def shape_findings(frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(check, status, detail) on the curve's shape: iptables grows with N, nftables is flat.

    A measurement, not a pass/fail requirement on a production node: "warn" when the shape
    differs from what kube-proxy's design predicts (e.g. a noisy host)."""
    out: list[tuple[str, str, str]] = []
    ok = frame[(frame["status"] == "ok") & frame["p50_us"].notna()]
    ipt = ok[ok["mode"] == "iptables"].set_index("n")["p50_us"]
    if len(ipt) >= 2:
        hi_n = int(ipt.index.max())
        lo_n = 100 if 100 in ipt.index and hi_n > 100 else int(ipt.index.min())
        ratio = float(ipt[hi_n] / ipt[lo_n])
        out.append(("iptables p50 grows with N", "pass" if ratio >= 1.5 else "warn",
                    f"p50 {ipt[hi_n]:.0f} µs at N={hi_n} vs {ipt[lo_n]:.0f} µs at N={lo_n}: ×{ratio:.2f} "
                    f"(expected ≥ 1.5)"))
    nft = ok[ok["mode"] == "nftables"]["p50_us"]
    if len(nft) >= 2:
        med = float(nft.median())
        spread = float(max(abs(nft.max() - med), abs(nft.min() - med)) / med)
        out.append(("nftables p50 flat across N", "pass" if spread <= 0.25 else "warn",
                    f"p50 {nft.min():.0f}–{nft.max():.0f} µs, within ±{spread * 100:.0f} % of the median "
                    f"{med:.0f} µs (expected ±25 %)"))
    return out


# ----------------------------------------------------------------------------- checks

def mode_checks(documents: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(check, status, detail) per mode over the grid: ``fail`` when the mode errored (or was not
    measured) at any N, ``n/a`` when it is unavailable on the host, ``pass`` when every N has a
    latency; connection errors among successful ones make it ``warn``."""
    per_mode: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for doc in documents:
        for mode, entry in (doc.get("modes") or {}).items():
            per_mode.setdefault(mode, []).append((int(doc.get("n", 0)), entry))
    out: list[tuple[str, str, str]] = []
    for mode, entries in per_mode.items():
        check = f"kube-proxy benchmark: {mode}"
        unavailable = [e for _, e in entries if e.get("status") == "unavailable"]
        if len(unavailable) == len(entries):
            out.append((check, "n/a", f"unavailable: {unavailable[0].get('reason', '')}"))
            continue
        bad = [f"N={n}: " + (e.get("reason") or "error" if e.get("status") != "ok" else "no latency measured")
               for n, e in entries if e.get("status") != "ok" or not (e.get("latency") or {}).get("count")]
        if bad:
            out.append((check, "fail", f"errored at {len(bad)} of {len(entries)} N: " + "; ".join(bad)))
            continue
        p50 = [e["latency"]["p50_us"] for _, e in entries]
        conn_errors = sum(int(e["latency"].get("errors") or 0) for _, e in entries)
        detail = (f"measured at N={', '.join(str(n) for n, _ in entries)}: p50 {min(p50):.0f}–{max(p50):.0f} µs, "
                  f"{conn_errors} failed connections")
        out.append((check, "warn" if conn_errors else "pass", detail))
    return out
