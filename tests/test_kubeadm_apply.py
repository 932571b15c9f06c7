"""Chapter 02 apply where kubeadm is installed, on its own 4-node lab `kapply` (2 control planes, 2
workers) with a kubeadm test double on every node (tests/doubles/kubeadm_double.py, written from the
kubeadm docs: kubeadm cannot be installed here). The nodes, SSH, sudo, files, the CA and the cluster API
(the lab's API server, for the gates) are real; kubeadm's effect on them is the double's.

Checked: init with the minted token (its TTL) and certificate key, in a private file removed afterwards;
a fresh certificate key uploaded right before the control-plane join and used by it; discovery pinned to
the real CA's hash; control planes before workers, workers in parallel; the gate; no secret in any
evidence; a second apply runs no kubeadm command; reset only where there is state; a failed gate stops
what depends on it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_support import own_lab

from runbooks_lib.chapters import kubeadm
from runbooks_lib.chapters.kubeadm import pki
from runbooks_lib.run import Run

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.written_fixture]
LAB = "kapply"
DOUBLE = Path(__file__).parent / "doubles" / "kubeadm_double.py"
CP1, CP2, W1, W2 = (f"{LAB}-{n}" for n in ("cp1", "w1", "w2", "w3"))


@pytest.fixture(scope="module")
def lab_state() -> Iterator[Any]:
    with own_lab(LAB, nodes=4) as state:
        _install_double(state)
        yield state


def _install_double(state: Any) -> None:
    for n in state.nodes:
        t = state.transport(n.hostname)
        t.run("install -m 0755 /dev/stdin /usr/local/bin/kubeadm && mkdir -p /etc/kubeadm-double && "
              "echo v1.37.1 > /etc/kubeadm-double/version && echo 1.5 > /etc/kubeadm-double/join_sleep && "
              "rm -f /var/log/kubeadm-double.jsonl && "
              # the endpoint's name resolves to cp1 on the nodes (a lab node: nothing probes beyond the lab)
              f"echo '{state.nodes[0].ip} {LAB}-api' >> /etc/hosts && "
              # the lab's apiserver.crt names cp1 only: moved away, as the SAN audit advises, so init can run
              "rm -f /etc/kubernetes/pki/apiserver.crt /etc/kubernetes/pki/apiserver.key",
              stdin=DOUBLE.read_text(), check=True, timeout=30)
        t.close()


def _params(state: Any, tmp: Path, extra: str = "", ignore: str = "[CRI, SystemVerification]") -> Path:
    """Inventory: cp1 and w1 as control planes (the endpoint kapply-api:6443), w2 and w3 as workers. Lab
    nodes have no containerd (CRI) and cgroup v1 (SystemVerification on 1.37): ignored as kubeadm's
    --ignore-preflight-errors would."""
    ip = {n.hostname: n.ip for n in state.nodes}
    hosts = lambda names: "".join(f"        {h}: {{ansible_host: {ip[h]}}}\n" for h in names)  # noqa: E731
    inv = tmp / "inventory.yaml"
    inv.write_text(f"all:\n  vars: {{ansible_user: runbooks, ansible_ssh_private_key_file: {state.key}, "
                   f"ansible_become: true, runbooks_lab: true}}\n  children:\n"
                   f"    control_plane:\n      hosts:\n{hosts([CP1, CP2])}    workers:\n      hosts:\n{hosts([W1, W2])}")
    p = tmp / "kapply.yaml"
    p.write_text(f"cluster_name: {LAB}\nkubernetes_version: '1.37.1'\ninventory: {inv}\n"
                 f"ssh: {{known_hosts: {state.known_hosts}}}\nkube: {{kubeconfig: {state.kubeconfig}}}\n"
                 f"kubeadm:\n  control_plane_endpoint: '{LAB}-api:6443'\n  join_forks: 2\n  gate_timeout_s: 6\n"
                 f"  etcd_disk_test: false\n  token_ttl: 45m\n  ignore_preflight_errors: {ignore}\n{extra}")
    return p


def _apply(params: Path, tmp: Path, name: str, confirm: bool = True) -> Run:
    sets = ["mode=apply"] + ([f"confirm={LAB}"] if confirm else [])
    run = Run.start("kubeadm", str(params), sets, str(tmp / name))
    rendered = kubeadm.plan_config(run)
    sv = kubeadm.survey(run, rendered)
    kubeadm.plan_actions(run, sv)
    return run


def _log(state: Any, node: str) -> list[dict[str, Any]]:
    t = state.transport(node)
    try:
        text = t.run("cat /var/log/kubeadm-double.jsonl 2>/dev/null; true", timeout=20).stdout
    finally:
        t.close()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _acting(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Calls that change something (not version / validate / preflight dry runs)."""
    return [e for e in entries if e["argv"][:1] in (["init"], ["join"], ["reset"], ["token"])
            and e["argv"][:3] != ["init", "phase", "preflight"]]


def _last_reset(state: Any, node: str) -> float:
    return max(e["start"] for e in _acting(_log(state, node)) if e["argv"][:1] == ["reset"])


def _checks(run: Run) -> dict[tuple[str, str], Any]:
    return {(c.check, c.host): c for c in run.checks}


def _evidence_text(run: Run) -> str:
    return "\n".join(p.read_text(errors="replace") for p in Path(run.run_dir).rglob("*") if p.is_file())


def test_plan_and_unconfirmed_apply_run_no_kubeadm_command(lab_state: Any, tmp_path: Path) -> None:
    params = _params(lab_state, tmp_path)
    run = Run.start("kubeadm", str(params), [], str(tmp_path / "plan"))
    kubeadm.plan(run)
    got = _checks(run)
    assert got[("apply.init", CP1)].status == "drift" and "kubeadm init" in got[("apply.init", CP1)].detail
    assert got[("apply.join-control-plane", CP2)].status == "drift"
    refused = _apply(params, tmp_path, "refused", confirm=False)
    assert _checks(refused)[("apply.join-worker", W1)].status == "drift"
    blocked = _checks(_apply(_params(lab_state, tmp_path, ignore="[]"), tmp_path, "blocked"))
    init = blocked[("apply.init", CP1)]
    assert init.status == "fail" and "not attempted: preflight.SystemVerification" in init.detail
    assert "preflight.CRI" in init.detail and "kubeadm.ignore_preflight_errors" in init.detail
    assert "not attempted" in blocked[("apply.join-worker", W2)].detail
    for n in (CP1, CP2, W1, W2):
        assert _acting(_log(lab_state, n)) == [], n


def test_apply_inits_then_joins_in_order_with_fresh_keys_and_no_secret_leaks(lab_state: Any, tmp_path: Path) -> None:
    params = _params(lab_state, tmp_path)
    run = _apply(params, tmp_path, "apply")
    got = _checks(run)
    statuses = {k: c.status for k, c in got.items() if k[0].startswith("apply.")}
    for key in (("apply.init", CP1), ("apply.kubeconfig", CP1), ("apply.upload-certs", CP1),
                ("apply.join-control-plane", CP2), ("apply.gate", CP2), ("apply.join-worker", W1),
                ("apply.join-worker", W2)):
        assert statuses.get(key) == "pass", (key, got.get(key))
    assert "n/a in lab" in got[("apply.gate", CP2)].detail          # its own API server: none on a lab node
    cp1, cp2 = _acting(_log(lab_state, CP1)), _acting(_log(lab_state, CP2))
    w1, w2 = _acting(_log(lab_state, W1)), _acting(_log(lab_state, W2))
    init = next(e for e in cp1 if e["argv"][:1] == ["init"] and "phase" not in e["argv"])
    token = re.search(r"token: (\S+)", init["config"]).group(1)          # type: ignore[union-attr]
    init_key = re.search(r"certificateKey: (\S+)", init["config"]).group(1)  # type: ignore[union-attr]
    assert "ttl: 45m" in init["config"] and "--upload-certs" in init["argv"]
    uploads = [e for e in cp1 if e["argv"][:3] == ["init", "phase", "upload-certs"]]
    assert len(uploads) == 1
    new_key = uploads[0]["argv"][uploads[0]["argv"].index("--certificate-key") + 1]
    [cp_join] = cp2
    assert f"certificateKey: {new_key}" in cp_join["config"] and new_key != init_key
    assert uploads[0]["end"] <= cp_join["start"]                       # the key minted right before the join
    pem = lab_state.transport(CP1).read_file("/etc/kubernetes/pki/ca.crt")
    assert pem and pki.ca_cert_hash(pem) in cp_join["config"]        # pinned to the real CA
    for e in (cp_join, *w1, *w2):
        assert f"token: {token}" in e["config"] and "unsafeSkipCAVerification" not in e["config"]
    [j1], [j2] = w1, w2
    assert "controlPlane" not in j1["config"] and "controlPlane" not in j2["config"]
    assert cp_join["end"] <= min(j1["start"], j2["start"])            # control planes before workers
    assert max(j1["start"], j2["start"]) < min(j1["end"], j2["end"])  # workers in parallel
    recs = run.recorder.records
    last_join = max(i for i, r in enumerate(recs) if r.kind == "command" and "kubeadm join" in r.command)
    assert any(r.step == "verify" and r.kind == "api" for r in recs[last_join:])  # verify re-read after apply
    text = _evidence_text(run)
    for secret in (token, init_key, new_key, token.split(".")[1]):
        assert secret not in text
    t = lab_state.transport(CP1)
    kept = t.run("cat /etc/kubernetes/kubeadm-config.yaml; find /tmp -name kubeadm.yaml", timeout=20).stdout
    assert "kind: ClusterConfiguration" in kept and "bootstrapTokens" not in kept and "kubeadm.yaml" not in kept
    home = t.run("stat -c '%U %a' ~/.kube/config", sudo=False, timeout=20).stdout.split()
    assert home == ["runbooks", "600"]
    for n in (CP2, W1, W2):
        assert not lab_state.transport(n).run("test -e /etc/kubernetes/super-admin.conf", timeout=20).ok, n

    again = _apply(params, tmp_path, "again")
    summary = _checks(again)[("apply.summary", "runner")]
    assert summary.status == "pass" and "no kubeadm command ran" in summary.detail
    assert {c.status for c in again.checks if c.check == "apply.node"} == {"pass"}
    for n, before in ((CP1, cp1), (CP2, cp2), (W1, w1), (W2, w2)):
        assert _acting(_log(lab_state, n)) == before, n


def test_reset_only_where_state_is_and_a_failed_gate_stops_the_rest(lab_state: Any, tmp_path: Path) -> None:
    """Runs after the apply test (module order): reset cp2 and w3, then rejoin them with cp2's Node gone
    from the API: cp2's gate fails and w3 is not attempted."""
    reset = _params(lab_state, tmp_path, f"  reset: [{CP2}, {W2}]\n")
    run = _apply(reset, tmp_path, "reset")
    got = _checks(run)
    assert got[("apply.reset", CP2)].status == "pass" and got[("apply.reset", W2)].status == "pass"
    assert [e["argv"][:1] for e in _acting(_log(lab_state, W2))][-1] == ["reset"]
    count = len(_acting(_log(lab_state, W2)))
    second = _checks(_apply(reset, tmp_path, "reset-again"))
    assert second[("apply.node", W2)].status == "pass" and "nothing to reset" in second[("apply.node", W2)].detail
    assert len(_acting(_log(lab_state, W2))) == count

    from runbooks_lib.kube import KubeClient

    kc = KubeClient.from_kubeconfig(lab_state.kubeconfig)
    kc.delete("Node", CP2)
    run = _apply(_params(lab_state, tmp_path), tmp_path, "gate")
    got = _checks(run)
    assert got[("apply.join-control-plane", CP2)].status == "pass"
    gate = got[("apply.gate", CP2)]
    assert gate.status == "fail" and f"node {CP2} not registered" in gate.detail
    assert got[("apply.join-worker", W2)].status == "fail"
    assert "not attempted" in got[("apply.join-worker", W2)].detail
    assert [e["argv"][:1] for e in _acting(_log(lab_state, W2))][-1] == ["reset"]  # w3 never joined


def test_kube_vip_is_placed_before_init_and_each_control_plane_join(lab_state: Any, tmp_path: Path) -> None:
    """Reset every node, then apply with kubeadm.ha: kube-vip. kube-vip's static pod is on the first control
    plane before init mounting super-admin.conf (≥ 1.29), switched to admin.conf after init, and on the
    second control plane before its join; workers get none. Nothing probes the VIP (a free address in the
    lab's own subnet)."""
    everyone = _params(lab_state, tmp_path, f"  reset: [{CP1}, {CP2}, {W1}, {W2}]\n")
    assert {c.status for c in _apply(everyone, tmp_path, "reset-all").checks if c.check == "apply.reset"} == {"pass"}
    haproxy = tmp_path / "haproxy.yaml"   # the endpoint (cp1:8443, a lab node) does not answer: nothing runs
    haproxy.write_text(_params(lab_state, tmp_path).read_text().replace(f"{LAB}-api:6443", f"{LAB}-api:8443")
                       + "  ha: keepalived-haproxy\n")
    got = _checks(_apply(haproxy, tmp_path, "haproxy"))
    assert got[("apply.init", CP1)].status == "fail" and "does not answer" in got[("apply.init", CP1)].detail
    assert "not attempted" in got[("apply.join-worker", W1)].detail
    since = _last_reset(lab_state, CP1)
    assert not [e for e in _acting(_log(lab_state, CP1)) if e["argv"][:1] == ["init"] and e["start"] > since]
    vip = lab_state.nodes[0].ip.rsplit(".", 1)[0] + ".250"
    params = _params(lab_state, tmp_path).read_text().replace(
        f"control_plane_endpoint: '{LAB}-api:6443'", f"control_plane_endpoint: '{vip}:6443'") + "  ha: kube-vip\n"
    path = tmp_path / "vip.yaml"
    path.write_text(params)
    run = _apply(path, tmp_path, "vip")
    got = _checks(run)
    assert got[("apply.init", CP1)].status == "pass" and got[("apply.join-control-plane", CP2)].status == "pass"
    init = [e for e in _acting(_log(lab_state, CP1)) if e["argv"][:1] == ["init"] and "phase" not in e["argv"]][-1]
    assert "super-admin.conf" in init["manifests_before"]["kube-vip.yaml"]
    assert f"value: {vip}" in init["manifests_before"]["kube-vip.yaml"]
    t = lab_state.transport(CP1)
    assert "path: /etc/kubernetes/admin.conf" in (t.read_file("/etc/kubernetes/manifests/kube-vip.yaml") or "")
    join = [e for e in _acting(_log(lab_state, CP2)) if e["argv"][:1] == ["join"]][-1]
    assert "path: /etc/kubernetes/admin.conf" in join["manifests_before"]["kube-vip.yaml"]
    assert f"apiServerEndpoint: {vip}:6443" in join["config"]
    for w in (W1, W2):
        last = [e for e in _acting(_log(lab_state, w)) if e["argv"][:1] == ["join"]][-1]
        assert "kube-vip.yaml" not in last["manifests_before"], w
