"""etcdctl/etcdutl command lines and pure parsers of their output, including failure diagnosis.

etcdctl 3.4 answers almost every connection problem of ``snapshot save`` with the same
``Error: context deadline exceeded`` (the seed's complaint). With ``--debug`` the gRPC layer
logs the real reason on each reconnect ("x509: certificate signed by unknown authority",
"connection refused", ...). :func:`diagnose` reads that log; the phrases it matches were
captured from real etcdctl 3.4.23 runs (tests/fixtures/etcd/errors/).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from . import remote


@dataclass(frozen=True)
class Client:
    """How to reach etcd with etcdctl (API v3) from the node."""

    etcdctl: str
    endpoint: str
    cacert: str | None
    cert: str | None
    key: str | None
    dial_s: float = 3.0

    def argv(self, *args: str, timeout_s: float = 15.0, debug: bool = False) -> list[str]:
        out = ["env", "ETCDCTL_API=3", self.etcdctl, f"--endpoints={self.endpoint}",
               f"--dial-timeout={_dur(self.dial_s)}", f"--command-timeout={_dur(timeout_s)}"]
        if debug:
            out.append("--debug")
        for flag, value in (("cacert", self.cacert), ("cert", self.cert), ("key", self.key)):
            if value:
                out.append(f"--{flag}={value}")
        return out + list(args)

    def count_argv(self, *extra: str, timeout_s: float = 15.0) -> list[str]:
        """The key count of the whole keyspace in one response (see :func:`parse_count`)."""
        return self.argv("get", "", "--prefix", "--keys-only", "--limit=1", "-w", "json", *extra, timeout_s=timeout_s)

    def shell(self, *args: str, timeout_s: float = 15.0, debug: bool = False) -> str:
        return shlex.join(self.argv(*args, timeout_s=timeout_s, debug=debug))


def _dur(seconds: float) -> str:
    return f"{max(1, round(seconds))}s"


# ----------------------------------------------------------------------------- parsers


@dataclass
class SnapshotStatus:
    hash: int
    revision: int
    total_keys: int
    total_size: int
    version: str | None = None  # etcdutl 3.5+ adds the storage version

    @property
    def hash_hex(self) -> str:
        return f"{self.hash:08x}"


def _json_payload(text: str) -> Any:
    """The JSON document in ``text`` (etcdctl prints JSON log lines to stderr; stdout is the payload)."""
    text = text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        for line in reversed(text.splitlines()):
            line = line.strip()
            if line.startswith(("{", "[")) and '"level"' not in line[:12]:
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    continue
    raise ValueError(f"no JSON in output: {text[:200]!r}")


def parse_snapshot_status(text: str) -> SnapshotStatus:
    """``etcdctl snapshot status -w json`` (3.4) or ``etcdutl snapshot status -w json`` (3.5+)."""
    data = _json_payload(text)
    if not isinstance(data, dict) or "revision" not in data:
        raise ValueError(f"not a snapshot status: {text[:200]!r}")
    return SnapshotStatus(hash=int(data.get("hash", 0)), revision=int(data["revision"]),
                          total_keys=int(data.get("totalKey", 0)), total_size=int(data.get("totalSize", 0)),
                          version=data.get("version"))


@dataclass
class EndpointStatus:
    endpoint: str
    version: str
    db_size: int
    revision: int
    leader: int
    member_id: int
    raft_index: int

    @property
    def is_leader(self) -> bool:
        return self.leader == self.member_id


def parse_endpoint_status(text: str) -> list[EndpointStatus]:
    """``etcdctl endpoint status -w json``: one entry per endpoint that answered."""
    data = _json_payload(text)
    out = []
    for item in data if isinstance(data, list) else [data]:
        st = item.get("Status") or {}
        hdr = st.get("header") or {}
        out.append(EndpointStatus(
            endpoint=str(item.get("Endpoint", "")), version=str(st.get("version", "")),
            db_size=int(st.get("dbSize", 0)), revision=int(hdr.get("revision", 0)),
            leader=int(st.get("leader", 0)), member_id=int(hdr.get("member_id", 0)),
            raft_index=int(st.get("raftIndex", 0))))
    return out


def parse_count(text: str) -> tuple[int, int]:
    """``etcdctl get "" --prefix --keys-only --limit=1 -w json``: (key count, header revision).

    A range response's ``count`` is the number of keys in the range whatever the limit; it is
    omitted when zero.
    """
    data = _json_payload(text)
    return int(data.get("count", 0)), int((data.get("header") or {}).get("revision", 0))


def parse_member_list(text: str) -> list[dict[str, Any]]:
    data = _json_payload(text)
    return [{"id": f"{int(m.get('ID', 0)):x}", "name": m.get("name", ""), "peer_urls": m.get("peerURLs") or [],
             "client_urls": m.get("clientURLs") or []} for m in data.get("members") or []]


def parse_health(text: str) -> list[dict[str, Any]]:
    """``etcdctl endpoint health -w json``: [{endpoint, health, took, error?}]."""
    data = _json_payload(text)
    return data if isinstance(data, list) else [data]


@dataclass
class VerifyOutput:
    """What the node-side verify script printed (see :func:`verify_script`)."""

    size: int
    sha256: str
    body_sha256: str
    trailer: str
    status_rc: int
    status_text: str
    count_json: str | None = None  # live key count at the snapshot's revision, when asked
    hashed: str = "read"  # "stream": digests not re-read, the file's size:inode:dev matched the save's stream hash

    @property
    def has_integrity_hash(self) -> bool:
        """etcd appends sha256(db) to a snapshot; the file size is then 512*n + 32."""
        return self.size % 512 == 32

    @property
    def integrity_ok(self) -> bool:
        return self.has_integrity_hash and self.body_sha256 == self.trailer and len(self.trailer) == 64


# Programs run on the node by its own python3 (remote/*.py: real, linted, type-checked files).
_ONE_PASS = remote.source("digest")


# The node's own python3 (not a user's pyenv/virtualenv shim on PATH, which costs ~0.1 s to start).
_PY = ('py=; for p in /usr/libexec/platform-python /usr/bin/python3 "$(command -v python3 2>/dev/null)"; do '
       '[ -n "$p" ] && [ -x "$p" ] && { py=$p; break; }; done; ')


def verify_script(path: str, status_argv: list[str], count_argv: list[str] | None = None,
                  known: StreamHash | None = None) -> str:
    """Shell that reads the snapshot once per job, jobs in parallel: status (then, with its revision,
    the live key count at that revision), sha256 of the file, etcd's appended integrity hash.

    ``openssl dgst`` is used when present (SHA-NI: ~4x faster than coreutils' sha256sum). With
    ``known`` (the digests streamed during the save), the file is not hashed again when its
    ``size:inode:dev:mtime`` on disk is still the streamed one (``hashed=stream``); otherwise it is read.
    """
    f = shlex.quote(path)
    status = shlex.join(status_argv)
    count = ""
    if count_argv is not None:
        count = (" rev=$(sed -n 's/.*\"revision\":\\([0-9]*\\).*/\\1/p' \"$d/status\" | head -n 1); "
                 f"if [ -n \"$rev\" ]; then {shlex.join(count_argv)} --rev=$rev > \"$d/count\" 2>/dev/null "
                 "|| : > \"$d/count\"; fi;")
    return (
        f"f={f}; d=$(mktemp -d) || exit 1; "
        "if command -v openssl >/dev/null 2>&1; then h() {{ openssl dgst -sha256 -r | cut -d' ' -f1; }}; "
        "else h() {{ sha256sum | cut -d' ' -f1; }}; fi; "
        f"({status} > \"$d/status\" 2>&1; echo $? > \"$d/rc\";{count}) & "
        + (f"if [ \"$(stat -c %s:%i:%d:%.9Y \"$f\" 2>/dev/null)\" = {known.stat_key} ]; then echo stream > \"$d/src\"; "
           "else " if known is not None else "")
        + _PY + f"if [ -n \"$py\" ]; then \"$py\" -S -c {shlex.quote(_ONE_PASS)} \"$f\" \"$d\"; else "
        "(h < \"$f\" > \"$d/sha\") & "
        "(head -c -32 \"$f\" | h > \"$d/body\") & "
        "tail -c 32 \"$f\" | od -An -v -tx1 | tr -d ' \\n' > \"$d/trailer\"; fi; "
        + ("fi; " if known is not None else "")
        + "wait; "
        "echo \"hashed=$(cat \"$d/src\" 2>/dev/null || echo read)\"; "
        "echo \"size=$(stat -c %s \"$f\")\"; echo \"sha256=$(cat \"$d/sha\" 2>/dev/null)\"; "
        "echo \"body_sha256=$(cat \"$d/body\" 2>/dev/null)\"; echo \"trailer=$(cat \"$d/trailer\" 2>/dev/null)\"; "
        "echo \"status_rc=$(cat \"$d/rc\")\"; "
        "if [ -s \"$d/count\" ]; then echo \"count=$(tr -d '\\n' < \"$d/count\")\"; fi; "
        "echo '--- status'; cat \"$d/status\"; rm -rf \"$d\""
    ).replace("{{", "{").replace("}}", "}")


def parse_verify(text: str) -> VerifyOutput:
    head, _, status = text.partition("--- status\n")
    fields = dict(line.split("=", 1) for line in head.splitlines() if "=" in line)
    return VerifyOutput(size=int(fields.get("size") or -1), sha256=fields.get("sha256", ""),
                        body_sha256=fields.get("body_sha256", ""), trailer=fields.get("trailer", ""),
                        status_rc=int(fields.get("status_rc") or -1), status_text=status,
                        count_json=fields.get("count"), hashed=fields.get("hashed") or "read")


# ----------------------------------------------------------------------------- save + streamed hash


@dataclass(frozen=True)
class StreamHash:
    """Digests of a snapshot computed while etcdctl wrote it (see :func:`save_script`)."""

    path: str
    size: int
    inode: int
    dev: int
    mtime_ns: int
    sha256: str       # sha256 of the whole file
    body_sha256: str  # sha256 of all but the last 32 bytes: what etcd's integrity trailer must equal
    trailer: str      # the last 32 bytes, hex

    @property
    def stat_key(self) -> str:
        """``stat -c %s:%i:%d:%.9Y`` of the file the digests describe (an in-place rewrite changes it)."""
        return f"{self.size}:{self.inode}:{self.dev}:{self.mtime_ns // 10**9}.{self.mtime_ns % 10**9:09d}"


_FOLLOW = remote.source("follow_save")  # hashes the snapshot while etcdctl writes it

STREAM_MARK = "runbooks-stream-hash="
STREAM_ERR = "runbooks-stream-hash-error="


SAVE_EXISTS = "runbooks-snapshot-exists"


def save_state_dir(path: str) -> str:
    """The save's state directory next to the snapshot (pids, exit code, hasher output): ``DIR/.NAME.save``."""
    head, _, name = path.rpartition("/")
    return f"{head}/.{name}.save"


def save_script(path: str, save_argv: list[str], limit_s: float, status_argv: list[str] | None = None,
                count_argv: list[str] | None = None) -> str:
    """One shell: ``etcdctl snapshot save`` in the background and, when the node has python3, a hasher
    following the file as it is written (niced, at most ``limit_s`` seconds). Exits with etcdctl's code;
    on success prints ``runbooks-stream-hash={json}`` (or ``...-error=`` with the hasher's reason).

    Refuses (prints ``runbooks-snapshot-exists``, exit 17) when ``path``, ``path.part`` or the save's
    state dir exists: two runs never write one file. With ``status_argv`` / ``count_argv`` (``path`` in
    them stands for the snapshot), the hasher runs the snapshot's status and the live key count on the
    file it hashed as soon as the stream is complete; their output is in the json (see :func:`parse_inline`).

    Interrupted (TERM, INT, HUP, PIPE, or the hasher seeing the runner's channel close: exit 6), the
    shell stops etcdctl and removes ``NAME.part`` and its state dir (:func:`save_state_dir`, which holds
    the pids :func:`cleanup_script` needs when the runner cleans up itself). The snapshot directory is
    created (0700) only when it does not exist; an existing one is left as it is.
    """
    f = shlex.quote(path)
    st = shlex.quote(save_state_dir(path))
    checks = {k: v for k, v in (("status", status_argv), ("count", count_argv)) if v is not None}
    return (
        f"f={f}; s={st}; if [ -e \"$f\" ] || [ -e \"$f.part\" ] || [ -e \"$s\" ]; then echo {SAVE_EXISTS}; exit 17; fi; "
        "dir=$(dirname \"$f\"); [ -d \"$dir\" ] || { mkdir -p \"$dir\" && chmod 0700 \"$dir\"; } || exit 1; "
        "mkdir -m 0700 \"$s\" || exit 1; echo $$ > \"$s/sh\"; "
        "cleanup() { if [ -s \"$s/pid\" ]; then kill -TERM \"$(cat \"$s/pid\")\" 2>/dev/null; fi; "
        # the subshell that waits for etcdctl writes rc into $s as etcdctl dies: let it finish (5 s at most)
        # before removing $s, or rm -rf races that write and leaves the state dir behind
        "i=0; while [ -n \"$sub\" ] && kill -0 \"$sub\" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; "
        "rm -f \"$f.part\"; rm -rf \"$s\"; }; sub=; "
        "trap 'cleanup; exit 143' TERM; trap 'cleanup; exit 130' INT; trap 'cleanup; exit 129' HUP; "
        "trap 'cleanup; exit 141' PIPE; "
        f"({shlex.join(save_argv)} & echo $! > \"$s/pid\"; wait $!; echo $? > \"$s/rc.t\"; mv -f \"$s/rc.t\" \"$s/rc\") & sub=$!; "
        + _PY
        + "if [ -n \"$py\" ]; then "
        f"nice -n 10 \"$py\" -S -c {shlex.quote(_FOLLOW)} \"$f\" \"$s/rc\" {float(limit_s):.0f} "
        f"{shlex.quote(json.dumps(checks))} 3>&1 > \"$s/hash\" 2> \"$s/err\"; "
        "if [ $? = 6 ]; then cleanup; exit 6; fi; "
        "else echo 'python3 not found on the node' > \"$s/err\"; fi; "
        "wait; rc=$(cat \"$s/rc\" 2>/dev/null); [ -n \"$rc\" ] || rc=1; "
        "if [ \"$rc\" = 0 ]; then if [ -s \"$s/hash\" ]; then "
        f"printf '{STREAM_MARK}%s\\n' \"$(cat \"$s/hash\")\"; "
        f"else printf '{STREAM_ERR}%s\\n' \"$(tail -n 1 \"$s/err\")\"; fi; "
        "fi; trap - TERM INT HUP PIPE; rm -rf \"$s\"; exit \"$rc\""
    )


def cleanup_script(path: str) -> str:
    """Runner-side cleanup after an interrupted save of ``path``: stop its etcdctl and shell (by the pids in
    the state dir), remove ``NAME.part`` and the state dir; print what was removed. A finished snapshot stays."""
    f = shlex.quote(path)
    st = shlex.quote(save_state_dir(path))
    return (f"f={f}; s={st}; for p in pid sh; do if [ -s \"$s/$p\" ]; then kill -TERM \"$(cat \"$s/$p\")\" "
            "2>/dev/null && echo \"stopped $p $(cat \"$s/$p\")\"; fi; done; "
            # let them exit (5 s at most): etcdctl's waiting subshell writes its exit code into $s as it dies
            "i=0; while [ $i -lt 50 ]; do alive=; for p in pid sh; do if [ -s \"$s/$p\" ] && "
            "kill -0 \"$(cat \"$s/$p\")\" 2>/dev/null; then alive=1; fi; done; [ -n \"$alive\" ] || break; "
            "sleep 0.1; i=$((i+1)); done; "
            "for x in \"$f.part\" \"$s\"; do if [ -e \"$x\" ]; then rm -rf \"$x\" && echo \"removed $x\"; fi; done; true")


@dataclass
class InlineChecks:
    """What the save's hasher ran on the snapshot it hashed: snapshot status and the live key count."""

    status_rc: int
    status_text: str
    count_json: str | None  # ``get "" --prefix --keys-only --limit=1 -w json`` at the current revision
    when: str = ""  # "while etcdctl fsyncs" (the stream was complete) or "after the save"


def parse_inline(text: str) -> InlineChecks | None:
    """The checks in a save's ``runbooks-stream-hash`` json (None when it ran none)."""
    for line in reversed(text.splitlines()):
        if line.startswith(STREAM_MARK):
            try:
                d = json.loads(line[len(STREAM_MARK):]).get("inline")
                if not isinstance(d, dict) or "status" not in d:
                    return None
                return InlineChecks(int(d.get("status_rc", -1)), str(d["status"]),
                                    str(d["count"]) if d.get("count_rc") == 0 and d.get("count") else None,
                                    str(d.get("when", "")))
            except (ValueError, TypeError):
                return None
    return None


def parse_stream_hash(text: str, path: str) -> tuple[StreamHash | None, str]:
    """(the streamed digests of ``path``, or None; the hasher's reason when it gave none)."""
    for line in reversed(text.splitlines()):
        if line.startswith(STREAM_MARK):
            try:
                d = json.loads(line[len(STREAM_MARK):])
                return StreamHash(path, int(d["size"]), int(d["inode"]), int(d["dev"]), int(d["mtime_ns"]),
                                  str(d["sha256"]), str(d["body_sha256"]), str(d["trailer"])), ""
            except (ValueError, KeyError, TypeError) as exc:
                return None, f"unreadable stream hash: {exc}"
        if line.startswith(STREAM_ERR):
            return None, line[len(STREAM_ERR):].strip() or "hasher failed"
    return None, "no stream hash in the output"


def parse_df(text: str) -> int:
    """Available bytes from ``df -PB1 PATH``."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if len(lines) < 2:
        raise ValueError(f"unexpected df output: {text[:200]!r}")
    return int(lines[-1].split()[3])


def parse_listening_ports(text: str) -> set[int]:
    """TCP ports in LISTEN state from ``ss -ltnH``."""
    ports: set[int] = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            m = re.search(r":(\d+)$", parts[3])
            if m:
                ports.add(int(m.group(1)))
    return ports


# ----------------------------------------------------------------------------- diagnosis


@dataclass
class Diagnosis:
    cause: str    # short id: wrong_ca, san_mismatch, client_cert_rejected, http_on_tls, refused, ...
    status: str   # the check status: fail, or unreachable (exit 3)
    message: str  # what an operator reads

    def __str__(self) -> str:
        return f"{self.cause}: {self.message}"


_ERR = re.compile(r"Err: (?:connection error: desc = )?\"?(?P<err>.+?)\"?\. Reconnecting")
_TIMEOUTISH = ("i/o timeout", "no route to host", "network is unreachable", "host is down")


def grpc_errors(text: str) -> list[str]:
    """The distinct transport errors gRPC logged under --debug, in order."""
    seen: list[str] = []
    for m in _ERR.finditer(text):
        err = re.sub(r"\d+\.\d+\.\d+\.\d+:\d+->", "", m.group("err")).replace('\\"', '"')
        if err not in seen:
            seen.append(err)
    return seen


def diagnose(text: str, client: Client) -> Diagnosis:
    """Name the cause of a failed etcdctl call from its (``--debug``) output and the client settings."""
    url = urlsplit(client.endpoint)
    where = f"{url.hostname}:{url.port or 2379}"
    errs = grpc_errors(text)
    blob = "\n".join(errs) + "\n" + text
    m = re.search(r"open (\S+): (no such file or directory|permission denied)", text)
    if m:
        what = "is missing" if "no such" in m.group(2) else "is not readable (run with sudo/root)"
        return Diagnosis("cert_file_missing" if "no such" in m.group(2) else "cert_file_unreadable", "fail",
                         f"certificate file {m.group(1)} {what} on the node")
    if "private key does not match public key" in text:
        return Diagnosis("key_mismatch", "fail", f"key {client.key} does not belong to certificate {client.cert}")
    m = re.search(r"x509: certificate is valid for ([^\"]+?), not ([^\s\"]+)", blob)
    if m:
        return Diagnosis("san_mismatch", "fail",
                         f"etcd's certificate is valid for {m.group(1)}, not {m.group(2)}: use an endpoint address "
                         "listed in the certificate")
    if "certificate has expired or is not yet valid" in blob:
        return Diagnosis("cert_expired", "fail", "a certificate has expired or is not yet valid "
                                                 "(kubeadm certs check-expiration / renew)")
    if "x509: certificate signed by unknown authority" in blob:
        if not client.cacert:
            return Diagnosis("wrong_ca", "fail", "no --cacert given, so etcd's serving certificate is not trusted: "
                                                 "give etcd's CA (kubeadm: /etc/kubernetes/pki/etcd/ca.crt)")
        return Diagnosis("wrong_ca", "fail", f"--cacert {client.cacert} is not the CA that signed etcd's serving "
                                             "certificate (kubeadm: /etc/kubernetes/pki/etcd/ca.crt)")
    if "first record does not look like a TLS handshake" in blob:
        return Diagnosis("not_tls_port", "fail",
                         f"{where} does not speak TLS: wrong port (2381 is etcd's plain-http metrics port; clients "
                         "use 2379), or etcd serves plain http there (then use http://)")
    if "connection refused" in blob:
        return Diagnosis("refused", "unreachable", f"nothing listens on {where} (etcd down or wrong port)")
    if any(t in blob for t in _TIMEOUTISH):
        return Diagnosis("timeout", "unreachable", f"no answer from {where}: {next(t for t in _TIMEOUTISH if t in blob)}")
    if url.scheme == "https" and any(("broken pipe" in e or "bad certificate" in e or "certificate required" in e
                                      or "connection reset by peer" in e) for e in errs):
        if not (client.cert and client.key):
            return Diagnosis("client_cert_missing", "fail",
                             "etcd requires a client certificate (--client-cert-auth) and none was given: set cert "
                             "and key (kubeadm: /etc/kubernetes/pki/etcd/healthcheck-client.crt/.key)")
        return Diagnosis("client_cert_rejected", "fail",
                         f"etcd rejected the client certificate {client.cert} (not signed by etcd's CA?)")
    closing = "transport is closing" in text or any("use of closed network connection" in e or "EOF" in e
                                                    for e in errs)
    if url.scheme == "http" and closing:
        return Diagnosis("http_on_tls", "fail",
                         f"http:// to {where}, but the connection was closed: etcd serves TLS there — use https://")
    if url.scheme == "https" and closing:
        return Diagnosis("not_client_port", "fail",
                         f"TLS to {where} works but it does not answer etcd's client API: wrong port (2380 is the "
                         "peer port; clients use 2379)")
    for needle, cause in (("etcdserver: no leader", "no_leader"), ("etcdserver: request timed out", "server_timeout"),
                          ("mvcc: database space exceeded", "no_space")):
        if needle in text:
            return Diagnosis(cause, "fail", f"etcd answered but is unhealthy: {needle}")
    if "context deadline exceeded" in text and not errs:
        return Diagnosis("timeout", "unreachable", f"no answer from {where} within the dial timeout "
                                                   "(host down, firewall drop, or etcd hung)")
    last = [ln for ln in text.strip().splitlines() if ln.startswith("Error") or "Failed" in ln]
    return Diagnosis("unknown", "fail", (last[-1] if last else text.strip()[-300:]) or "etcdctl failed")
