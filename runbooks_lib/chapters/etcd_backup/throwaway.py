"""The restore drill: the snapshot restored into a throwaway etcd on the node (127.0.0.1, random ports,
etcd's own TLS), its keys counted, and the etcd always stopped (verified by pid) and removed."""

from __future__ import annotations

import contextlib
import random
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ...transport import Transport
from .etcdctl import (
    Client,
    SnapshotStatus,
    parse_count,
    parse_endpoint_status,
    parse_listening_ports,
)
from .settings import Settings
from .target import CheckRow, Target, q, utc_now

# ----------------------------------------------------------------------------- drill


@dataclass
class Drill:
    ok: bool
    rows: list[CheckRow]
    figures: dict[str, Any]
    duration_s: float
    log_tail: str = ""


def _free_ports(t: Transport, count: int = 2) -> list[int]:
    used = parse_listening_ports(t.run("ss -ltnH", timeout=30).stdout)
    start = random.randint(30000, 32000)  # noqa: S311 - not crypto, just spreads parallel drills
    ports = [p for p in range(start, start + 2000) if p not in used]
    return ports[:count]


@dataclass
class Throwaway:
    """A throwaway etcd serving a restored snapshot on the node: 127.0.0.1, random ports, client and
    peer TLS with etcd's own certificates (only holders of a client certificate of etcd's CA, who can
    read the live etcd anyway, can read it)."""

    scratch: str
    client: Client | None = None  # set once it answers
    rows: list[CheckRow] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    log_tail: str = ""


def _drill_tls(target: Target) -> dict[str, str] | None:
    """etcd's own serving/peer certificates and CA (from its manifest or unit), for the throwaway etcd."""
    flags = dict(target.config.flags) if target.config else {}
    ca = flags.get("trusted-ca-file") or target.client.cacert
    if not flags.get("cert-file") and ca:  # no manifest or unit read: kubeadm's layout next to the CA
        pki = ca.rpartition("/")[0]
        flags.update({"cert-file": f"{pki}/server.crt", "key-file": f"{pki}/server.key",
                      "peer-cert-file": f"{pki}/peer.crt", "peer-key-file": f"{pki}/peer.key"})
    cert, key = flags.get("cert-file"), flags.get("key-file")
    if not (cert and key and ca and target.client.cert and target.client.key):
        return None
    return {"cert": cert, "key": key, "ca": ca, "peer_cert": flags.get("peer-cert-file") or cert,
            "peer_key": flags.get("peer-key-file") or key, "peer_ca": flags.get("peer-trusted-ca-file") or ca}


_ALIVE = ("alive() { for x in \"$@\"; do [ -e /proc/$x ] && ! grep -qs '^[0-9]* (.*) Z' /proc/$x/stat "
          "&& return 0; done; return 1; }; ")


def _stop_script(scratch: str) -> str:
    """Stop the throwaway etcd by its pids (timeout's and etcd's), wait, KILL if needed, report by pid, remove
    the scratch dir. Prints ``gone=PIDS`` or ``alive=PIDS``."""
    d = q(scratch)
    return (_ALIVE + f"p=$(cat {d}/pid 2>/dev/null); e=$(cat {d}/etcd.pid 2>/dev/null); "
            "[ -n \"$p\" ] && [ -z \"$e\" ] && e=$(cat /proc/$p/task/$p/children 2>/dev/null); set -- $p $e; "
            "if [ $# -gt 0 ]; then kill -TERM \"$@\" 2>/dev/null; i=0; "
            "while alive \"$@\" && [ $i -lt 150 ]; do i=$((i+1)); sleep 0.1; done; "
            "if alive \"$@\"; then kill -KILL \"$@\" 2>/dev/null; sleep 0.5; fi; fi; "
            f"rm -rf {d}; if alive \"$@\"; then echo \"alive=$*\"; else echo \"gone=$*\"; fi")


@contextlib.contextmanager
def throwaway_etcd(t: Transport, target: Target, snap_path: str, s: Settings) -> Iterator[Throwaway]:
    """Restore ``snap_path`` into a 0700 scratch dir and serve it (see :class:`Throwaway`); always stopped
    (verified by pid) and removed on exit. ``client`` is None when it did not come up (``rows`` say why)."""
    etcd_bin = target.tools.get("etcd")
    tls = _drill_tls(target)
    if not etcd_bin or tls is None:
        why = (f"{s.etcd_binary} is not installed on {t.name}: the drill needs an etcd binary (set etcd_binary, "
               "or drill: false)" if not etcd_bin else "etcd's TLS certificates (cert-file, key-file, CA, client "
               "certificate) are not known: the drill never serves a restored keyspace without client TLS")
        th = Throwaway("")
        th.rows.append(("restore drill", t.name, "fail", why))
        yield th
        return
    scratch = t.run("mktemp -d /var/tmp/runbooks-etcd-drill.XXXXXX", timeout=30, check=True).stdout.strip()
    th = Throwaway(scratch)
    data = f"{scratch}/data"
    client_port, peer_port = _free_ports(t)
    peer, client_url = f"https://127.0.0.1:{peer_port}", f"https://127.0.0.1:{client_port}"
    try:
        r0 = time.monotonic()
        res = t.run(target.restore_argv(snap_path, f"--data-dir={data}", "--name=drill",
                                        f"--initial-cluster=drill={peer}", f"--initial-advertise-peer-urls={peer}",
                                        f"--initial-cluster-token=runbooks-drill-{utc_now().strftime('%Y%m%d%H%M%S')}"),
                    timeout=s.timeouts.restore_s)
        th.figures["drill_restore_s"] = round(time.monotonic() - r0, 3)
        if not res.ok:
            out = (res.stderr or res.stdout).strip()
            th.rows.append(("restore drill: snapshot restore", t.name, "fail",
                            out.splitlines()[-1][:300] if out else f"exit {res.exit_code}"))
            yield th
            return
        th.rows.append(("restore drill: snapshot restore", t.name, "pass", f"restored into scratch dir {data}"))
        etcd_cmd = shlex.join([
            "timeout", "-k", "5", str(int(s.timeouts.drill_max_s)), str(etcd_bin), "--name=drill",
            f"--data-dir={data}", f"--listen-client-urls={client_url}", f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}", f"--initial-cluster=drill={peer}",
            "--client-cert-auth=true", f"--trusted-ca-file={tls['ca']}", f"--cert-file={tls['cert']}",
            f"--key-file={tls['key']}", "--peer-client-cert-auth=true", f"--peer-trusted-ca-file={tls['peer_ca']}",
            f"--peer-cert-file={tls['peer_cert']}", f"--peer-key-file={tls['peer_key']}"])
        client = Client(target.client.etcdctl, client_url, tls["ca"], target.client.cert, target.client.key,
                        s.timeouts.dial_s)
        s0 = time.monotonic()
        t.run(f"setsid -f sh -c {q('echo $$ > ' + scratch + '/pid; exec ' + etcd_cmd)} "
              f"> {q(scratch)}/etcd.log 2>&1 < /dev/null", timeout=30, check=True)
        tries = max(1, int(s.timeouts.drill_start_s / 0.25))
        health = client.shell("endpoint", "health", timeout_s=2)
        up = t.run(f"i=0; while [ $i -lt {tries} ]; do {health} >/dev/null 2>&1 && break; "
                   "i=$((i+1)); sleep 0.25; done; [ $i -lt " + str(tries) + " ] || exit 1; "
                   f"p=$(cat {q(scratch)}/pid); cat /proc/$p/task/$p/children > {q(scratch)}/etcd.pid; "
                   f"echo \"pids=$p $(cat {q(scratch)}/etcd.pid)\"", timeout=s.timeouts.drill_start_s + 30)
        th.figures["drill_start_s"] = round(time.monotonic() - s0, 3)
        if not up.ok:
            th.log_tail = t.run(f"tail -n 20 {q(scratch)}/etcd.log", timeout=30).stdout
            th.rows.append(("restore drill: throwaway etcd healthy", t.name, "fail",
                            f"not healthy on {client_url} within {s.timeouts.drill_start_s:.0f}s: "
                            + (th.log_tail.strip().splitlines()[-1][:300] if th.log_tail.strip() else "no log")))
            yield th
            return
        started = " ".join(up.stdout.strip().rpartition("pids=")[2].split())
        th.rows.append(("restore drill: throwaway etcd healthy", t.name, "pass",
                        f"{client_url} (127.0.0.1 only, client and peer TLS with etcd's CA; pids {started})"))
        th.client = client
        yield th
    finally:
        stop = t.run(_stop_script(scratch), timeout=60)
        out = stop.stdout.strip()
        gone = t.run(f"test ! -e {q(scratch)}", timeout=30).ok
        stopped = stop.ok and out.startswith("gone=")
        pids = out.partition("=")[2].strip() or "none started"
        th.rows.append(("restore drill: cleaned up", t.name, "pass" if stopped and gone else "fail",
                        (f"throwaway etcd stopped (pids {pids}: no longer running)" if stopped
                         else f"throwaway etcd still running (pids {pids or '?'}): {out or stop.stderr.strip()[-200:]}")
                        + (f", {scratch} removed" if gone else f", {scratch} still there")))


def drill(t: Transport, target: Target, snap_path: str, expected: SnapshotStatus, s: Settings,
          source_keys: int | None = None) -> Drill:
    """Restore into a scratch dir, serve it with a throwaway etcd, compare revision and keys, stop it for real."""
    t0 = time.monotonic()
    ok = False
    with throwaway_etcd(t, target, snap_path, s) as th:
        if th.client is not None:
            local = th.client
            st = parse_endpoint_status(t.run(local.argv("endpoint", "status", "-w", "json", timeout_s=10),
                                             timeout=40, check=True).stdout)[0]
            count, _ = parse_count(t.run(local.count_argv(timeout_s=30), timeout=60, check=True).stdout)
            th.figures.update({"drill_revision": st.revision, "drill_keys": count})
            rev_ok = st.revision == expected.revision
            th.rows.append(("restore drill: revision matches", t.name, "pass" if rev_ok else "fail",
                            f"restored {st.revision}, snapshot {expected.revision}"))
            if source_keys is None:
                th.rows.append(("restore drill: key count matches", t.name, "warn",
                                f"restored etcd holds {count} keys; the source's count at revision "
                                f"{expected.revision} was not readable (compacted?)"))
                keys_ok = True
            else:
                keys_ok = count == source_keys
                th.rows.append(("restore drill: key count matches", t.name, "pass" if keys_ok else "fail",
                                f"restored {count} keys, source had {source_keys} at revision {expected.revision}"))
            ok = rev_ok and keys_ok
    ok = ok and th.rows[-1][2] == "pass"  # stopped and removed, by pid
    return Drill(ok, th.rows, th.figures, time.monotonic() - t0, th.log_tail)
