"""etcdctl output parsers and the failure diagnosis, on outputs captured from real etcdctl 3.4.23 runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbooks_lib.chapters.etcd_backup import etcdctl as e

F = Path(__file__).parent / "fixtures" / "etcd"
ERR = F / "errors"
CERTS = dict(cacert="/p/ca.crt", cert="/p/healthcheck-client.crt", key="/p/healthcheck-client.key")


def client(endpoint: str, **kw: str | None) -> e.Client:
    args = {**CERTS, **kw}
    return e.Client("etcdctl", endpoint, args["cacert"], args["cert"], args["key"])


def test_snapshot_status_34() -> None:
    st = e.parse_snapshot_status((F / "snapshot-status-etcdctl-3.4.json").read_text())
    assert (st.revision, st.total_keys, st.total_size) == (2, 5, 20480)
    assert st.hash_hex == "197511b6"  # what `-w table` printed for the same file


def test_snapshot_status_etcdutl_shape() -> None:
    # etcdutl 3.5 prints the same struct plus the storage version (not capturable here: no etcdutl)
    st = e.parse_snapshot_status('{"hash":1,"revision":7,"totalKey":9,"totalSize":8192,"version":"3.5.0"}\n')
    assert st.version == "3.5.0" and st.revision == 7


def test_snapshot_status_of_truncated_file_is_not_json() -> None:
    text = (F / "snapshot-status-truncated-3.4.txt").read_text()
    assert "SIGBUS" in text and text.rstrip().endswith("exit=2")
    with pytest.raises(ValueError):
        e.parse_snapshot_status(text)


def test_endpoint_status_count_members_health() -> None:
    st = e.parse_endpoint_status((F / "endpoint-status-3.4.json").read_text())[0]
    assert st.version == "3.4.23" and st.revision == 6 and st.db_size == 20480 and st.is_leader
    assert e.parse_count((F / "get-count-3.4.json").read_text()) == (3, 6)
    assert e.parse_count('{"header":{"revision":6}}') == (0, 6)  # count is omitted when zero
    members = e.parse_member_list((F / "member-list-3.4.json").read_text())
    assert members[0]["name"] == "cap" and members[0]["peer_urls"] == ["https://127.0.0.1:23801"]
    assert e.parse_health((F / "endpoint-health-3.4.json").read_text())[0]["health"] is True


def test_df_and_ss() -> None:
    assert e.parse_df((F / "df-PB1.txt").read_text()) == 83068252160
    ss = ("LISTEN 0 4096 127.0.0.1:2379 0.0.0.0:*\nLISTEN 0 4096 10.77.149.11:2380 0.0.0.0:*\n"
          "LISTEN 0 128 [::]:22 [::]:*\n")
    assert e.parse_listening_ports(ss) == {2379, 2380, 22}


def test_verify_output_parse_and_integrity() -> None:
    text = ("size=20512\nsha256=" + "a" * 64 + "\nbody_sha256=" + "b" * 64 + "\ntrailer=" + "b" * 64
            + "\nstatus_rc=0\n--- status\n" + (F / "snapshot-status-etcdctl-3.4.json").read_text())
    v = e.parse_verify(text)
    assert v.integrity_ok and v.status_rc == 0 and e.parse_snapshot_status(v.status_text).revision == 2
    bad = e.parse_verify(text.replace("trailer=" + "b" * 64, "trailer=" + "c" * 64))
    assert bad.has_integrity_hash and not bad.integrity_ok
    trunc = e.parse_verify(text.replace("size=20512", "size=10000"))
    assert not trunc.has_integrity_hash and not trunc.integrity_ok


def test_plain_snapshot_save_error_says_nothing() -> None:
    # the seed's complaint: every misconfiguration prints the same line without --debug
    assert e.grpc_errors("Error: context deadline exceeded\n") == []


@pytest.mark.parametrize(("fixture", "endpoint", "kw", "cause", "status", "words"), [
    ("no_tls_flags", "https://127.0.0.1:23791", dict(cacert=None, cert=None, key=None), "wrong_ca", "fail",
     "no --cacert"),
    ("wrong_ca", "https://127.0.0.1:23791", {}, "wrong_ca", "fail", "is not the CA"),
    ("cacert_only", "https://127.0.0.1:23791", dict(cert=None, key=None), "client_cert_missing", "fail",
     "requires a client certificate"),
    ("wrong_client_cert", "https://127.0.0.1:23791", {}, "client_cert_rejected", "fail", "rejected"),
    ("key_mismatch", "https://127.0.0.1:23791", {}, "key_mismatch", "fail", "does not belong"),
    ("missing_file", "https://127.0.0.1:23791", {}, "cert_file_missing", "fail",
     "/etc/kubernetes/pki/etcd/healthcheck-client.crt is missing"),
    ("http_scheme", "http://127.0.0.1:23791", {}, "http_on_tls", "fail", "use https://"),
    ("http_port", "https://127.0.0.1:23812", {}, "not_tls_port", "fail", "2381"),
    ("peer_port", "https://127.0.0.1:23801", {}, "not_client_port", "fail", "2380 is the peer port"),
    ("san_mismatch", "https://127.0.0.1:23792", {}, "san_mismatch", "fail", "valid for 10.0.0.10, not 127.0.0.1"),
    ("refused", "https://127.0.0.1:23799", {}, "refused", "unreachable", "nothing listens on 127.0.0.1:23799"),
    ("silent_listener", "https://127.0.0.1:23797", {}, "timeout", "unreachable", "no answer"),
])
def test_diagnose_captured_failures(fixture: str, endpoint: str, kw: dict[str, str | None], cause: str,
                                    status: str, words: str) -> None:
    text = (ERR / f"{fixture}.txt").read_text()
    assert "context deadline exceeded" in text or "Error:" in text  # what etcdctl itself says
    d = e.diagnose(text, client(endpoint, **kw))
    assert (d.cause, d.status) == (cause, status)
    assert words in d.message


def test_diagnose_success_output_is_not_a_known_failure() -> None:
    d = e.diagnose((ERR / "ok.txt").read_text(), client("https://127.0.0.1:23791"))
    assert d.cause == "unknown"


def test_client_argv_never_carries_key_material() -> None:
    argv = client("https://127.0.0.1:2379").argv("snapshot", "save", "/b/x.db", timeout_s=900)
    assert argv[:3] == ["env", "ETCDCTL_API=3", "etcdctl"]
    assert "--command-timeout=900s" in argv and "--key=/p/healthcheck-client.key" in argv


def test_parse_stream_hash() -> None:
    from runbooks_lib.chapters.etcd_backup.etcdctl import parse_stream_hash

    line = ('runbooks-stream-hash={"size": 544, "inode": 7, "dev": 65024, "mtime_ns": 1795537675371215621, '
            '"sha256": "aa", "body_sha256": "bb", "trailer": "bb"}')
    st, note = parse_stream_hash("Snapshot saved at /b/x.db\n" + line + "\n", "/b/x.db")
    assert st is not None and note == "" and st.stat_key == "544:7:65024:1795537675.371215621"
    assert parse_stream_hash("runbooks-stream-hash-error=etcdctl still writing at the deadline\n", "/b/x.db") == (
        None, "etcdctl still writing at the deadline")
    assert parse_stream_hash("Snapshot saved at /b/x.db\n", "/b/x.db")[0] is None


def test_parse_inline_from_a_real_save() -> None:
    """Captured from save_script against etcd 3.4.23 (5 keys): the hasher saw etcd's trailer match and
    ran snapshot status and the key count on the file while etcdctl was still in fsync."""
    from runbooks_lib.chapters.etcd_backup.etcdctl import (
        parse_count,
        parse_inline,
        parse_snapshot_status,
        parse_stream_hash,
    )

    out = (
        "Snapshot saved at /var/tmp/tmphd3f4pfz/b/x.db\n"
        'runbooks-stream-hash={"size": 24608, "inode": 15343921, "dev": 65024, "mtime_ns": 1795550645595292691, '
        '"sha256": "786a5a7ed281d3de608c79a511d8f29b6f2d8b320cdf00e94e2bcc94564089c0", '
        '"body_sha256": "00a663bbdc1545149c6bc3cb6fd2cff620189ed9cb46f8989f98ba7ced97f584", '
        '"trailer": "00a663bbdc1545149c6bc3cb6fd2cff620189ed9cb46f8989f98ba7ced97f584", "inline": {"when": '
        '"while etcdctl fsyncs", "status": "{\\"hash\\":3905437438,\\"revision\\":6,\\"totalKey\\":9,'
        '\\"totalSize\\":24576}\\n", "status_rc": 0, "count": "{\\"header\\":{\\"cluster_id\\":'
        '3797582674749719517,\\"member_id\\":7260212012445208507,\\"revision\\":6,\\"raft_term\\":2},'
        '\\"kvs\\":[{\\"key\\":\\"L3JlZ2lzdHJ5L3gvMA==\\",\\"create_revision\\":2,\\"mod_revision\\":2,'
        '\\"version\\":1}],\\"more\\":true,\\"count\\":5}\\n", "count_rc": 0}}\n')
    inline = parse_inline(out)
    assert inline is not None and inline.status_rc == 0 and inline.count_json
    assert inline.when == "while etcdctl fsyncs"
    assert parse_count(inline.count_json) == (5, 6)
    st = parse_snapshot_status(inline.status_text)
    assert (st.revision, st.total_keys, st.total_size) == (6, 9, 24576)
    stream, note = parse_stream_hash(out, "/var/tmp/tmphd3f4pfz/b/x.db")
    assert stream is not None and stream.size == 24608 == st.total_size + 32 and note == ""
    plain = out.split(', "inline"')[0] + "}\n"
    assert parse_stream_hash(plain, "/b/x.db")[0] is not None and parse_inline(plain) is None  # no checks asked
    failed = out.replace('"count_rc": 0', '"count_rc": 1').replace('"status_rc": 0', '"status_rc": 1')
    bad = parse_inline(failed)
    assert bad is not None and bad.status_rc == 1 and bad.count_json is None
