"""Chapter 02 against its own 3-node lab `kadm`: plan verdict, preflight × nodes, PKI from real files,
init/join unavailable, verify through the lab's API server, and no secret in any output."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_support import own_lab, params_file

from runbooks_lib.chapters import kubeadm
from runbooks_lib.cli import main
from runbooks_lib.run import Run
from runbooks_lib.verdict import verdict_for

pytestmark = [pytest.mark.lab, pytest.mark.slow]
LAB = "kadm"


@pytest.fixture(scope="module")
def lab_params(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The `kadm` lab (brought up here unless it is up) and a parameter file for it; taken down if started."""
    with own_lab(LAB, nodes=3) as state:
        yield params_file(state, tmp_path_factory.mktemp(LAB) / f"{LAB}.yaml")


def by(run: Run) -> dict[tuple[str, str], str]:
    return {(c.check, c.host): c.status for c in run.checks}


def test_fresh_lab_plan_is_drift_with_real_preflight_pki_and_api(lab_params: Path, tmp_path: Path) -> None:
    run = Run.start("kubeadm", str(lab_params), [], str(tmp_path / "run"))
    result = kubeadm.plan(run)
    got = by(run)
    assert verdict_for(run.checks) == "DRIFT", [c for c in run.checks if c.failed]
    assert got[("config.schema", "runner")] == "pass"
    cp, w1 = f"{LAB}-cp1", f"{LAB}-w1"
    # the lab's etcd holds 2379/2380 on the control plane and is reported as such
    assert got[("preflight.Port-2379", cp)] == "n/a in lab" and got[("preflight.Port-6443", cp)] == "pass"
    assert got[("preflight.FileExisting-crictl", w1)] == "n/a in lab"
    assert got[("preflight.CRI", w1)] == "drift"          # containerd: chapter 01 apply
    assert set(result.preflight.columns) == {"check", cp, w1, f"{LAB}-w2"}
    # PKI from the real files on the node: the CA hash equals the lab's own CA
    from runbooks_lib.chapters.kubeadm import pki
    from runbooks_lib.lab import lab

    ca = (lab.state_dir(LAB) / "pki" / "ca.crt").read_text()
    assert run.figures["ca_cert_hash"] == pki.ca_cert_hash(ca)
    assert got[("pki.apiserver_sans", cp)] == "pass" and got[("pki.expiry", cp)] == "pass"
    assert 364 < run.figures["pki_min_days_left"] <= 365
    # init/join: unavailable with the exact commands
    init = next(c for c in run.checks if c.check == "apply.init")
    assert init.status == "n/a in lab" and "unavailable: kubeadm not installed" in init.detail
    assert "kubeadm init --config <a private copy of /etc/kubernetes/kubeadm-config.yaml" in init.detail
    assert "--upload-certs" in init.detail
    join = next(c for c in run.checks if c.check == "apply.join-worker")
    assert f"caCertHashes [{run.figures['ca_cert_hash']}]" in join.detail
    # verify through the lab API server
    assert got[("api.readyz", "api")] == "pass"
    assert {got[("node.ready", h)] for h in (cp, w1)} == {"pass"}
    assert got[("csr.pending", "api")] == "pass"  # the lab serves CSRs (none pending)


def test_apply_without_confirm_refuses_init_and_join(lab_params: Path, tmp_path: Path) -> None:
    run = Run.start("kubeadm", str(lab_params), ["mode=apply"], str(tmp_path / "run"))
    kubeadm.plan(run)
    refused = [c for c in run.checks if c.check.startswith("apply.")]
    assert refused and all(c.status == "drift" and "refused, nothing changed" in c.detail for c in refused)


def test_no_planted_secret_in_any_output(lab_params: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    token = f"{secrets.token_hex(3)}.{secrets.token_hex(8)}"
    key = secrets.token_hex(32)
    kubeconfig = Path(str(lab_params.read_text().split("kubeconfig: ")[1].split("}")[0]))
    client_key = next(ln.split(":", 1)[1].strip() for ln in kubeconfig.read_text().splitlines()
                      if "client-key-data" in ln)
    out = tmp_path / "reports"
    code = main(["run", "kubeadm", "-p", str(lab_params), "--out", str(out), "-q",
                 "--set", f"kubeadm.token={token}", "--set", f"kubeadm.certificate_key={key}"])
    printed = capfd.readouterr()
    assert code == 0
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" for p in files)
    for value in (token, key, client_key, client_key[:40]):
        assert value not in printed.out + printed.err
        for p in files:
            assert value not in p.read_text(errors="replace"), f"{value[:8]}… in {p}"


def test_etcd_disk_test_runs_fio_for_real_and_leaves_nothing(lab_params: Path, tmp_path: Path) -> None:
    """fio is not in the lab image: the test installs Debian's package on its own lab's control plane."""
    from runbooks_lib.lab import lab

    t = lab.load_state(LAB).transport(f"{LAB}-cp1", command_timeout=200)  # type: ignore[union-attr]
    got = t.run("command -v fio || (DEBIAN_FRONTEND=noninteractive apt-get -qq update && "
                "DEBIAN_FRONTEND=noninteractive apt-get -qq install -y fio) >/dev/null 2>&1; command -v fio",
                sudo=True, timeout=200)
    if got.exit_code != 0:
        pytest.skip(f"fio could not be installed in the lab node: {got.stderr[-200:]}")
    run = Run.start("kubeadm", str(lab_params), [], str(tmp_path / "run"))
    kubeadm.plan(run)
    disk = next(c for c in run.checks if c.check == "preflight.EtcdDisk")
    assert disk.status in ("pass", "warn", "fail") and "fdatasync p90" in disk.detail and "p99" in disk.detail
    assert t.run("ls -d /var/lib/.runbooks-fio.* 2>/dev/null | wc -l", sudo=True).stdout.strip() == "0"


def test_reset_with_confirm_is_unavailable_with_the_exact_command(lab_params: Path, tmp_path: Path) -> None:
    """A node holding kubeadm state (here a planted kubelet.conf) gets the reset, unavailable without kubeadm;
    without state, "nothing to reset"."""
    from runbooks_lib.lab import lab

    state = lab.load_state(LAB)
    assert state is not None
    t = state.transport(f"{LAB}-w2")
    sets = ["mode=apply", f"confirm={LAB}", f"kubeadm.reset=[{LAB}-w2]", "kubeadm.etcd_disk_test=false"]
    t.run("mkdir -p /etc/kubernetes && touch /etc/kubernetes/kubelet.conf", sudo=True, timeout=20, check=True)
    try:
        run = Run.start("kubeadm", str(lab_params), sets, str(tmp_path / "run"))
        kubeadm.plan(run)
    finally:
        t.run("rm -f /etc/kubernetes/kubelet.conf", sudo=True, timeout=20, check=True)
    reset = [c for c in run.checks if c.check == "apply.reset"]
    assert [(c.host, c.status) for c in reset] == [(f"{LAB}-w2", "n/a in lab")]
    assert "unavailable: kubeadm not installed" in reset[0].detail
    assert "kubeadm reset -f && rm -rf /etc/cni/net.d" in reset[0].detail
    assert "nft delete table ip kube-proxy" in reset[0].detail and "flush ruleset" not in reset[0].detail
    clean = Run.start("kubeadm", str(lab_params), sets, str(tmp_path / "clean"))
    kubeadm.plan(clean)
    assert not [c for c in clean.checks if c.check == "apply.reset"]
    assert [c.detail for c in clean.checks if (c.check, c.host) == ("apply.node", f"{LAB}-w2")] == [
        "kubeadm.reset names it, but it holds no kubeadm state: nothing to reset"]
    assert {c.status for c in run.checks if c.check in ("apply.init", "apply.join-worker")} == {"n/a in lab"}


def test_verify_explains_a_node_not_ready_for_lack_of_cni(lab_params: Path, tmp_path: Path) -> None:
    """Through the lab's API server: kadm-w2's Ready condition set the way kubelet reports a missing CNI
    (via the nodes/status subresource), then restored."""
    from runbooks_lib import kube
    from runbooks_lib.chapters.kubeadm.verify import verify

    run = Run.start("kubeadm", str(lab_params), [], str(tmp_path / "run"))
    kc = kube.connect(run)
    node = f"{LAB}-w2"
    path = kc.path_for("Node", node, None) + "/status"
    before = kc.get("Node", node)["status"]["conditions"]
    msg = ("container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network "
           "plugin returns error: cni plugin not initialized")
    down = [dict(c, status="False", reason="KubeletNotReady", message=msg) if c["type"] == "Ready" else c
            for c in before]
    kc.request("PATCH", path, body={"status": {"conditions": down}}, content_type="application/merge-patch+json")
    try:
        got = verify(kc, {f"{LAB}-cp1": "", node: ""})
        row = next(r for r in got.rows if r[0] == "node.ready" and r[1] == node)
        assert row[2] == "warn" and "no CNI installed yet" in row[3] and "chapter 04" in row[3]
    finally:
        kc.request("PATCH", path, body={"status": {"conditions": before}},
                   content_type="application/merge-patch+json")
    again = verify(kc, {node: ""})
    assert next(r for r in again.rows if r[0] == "node.ready")[2] == "pass"


def test_vip_held_by_a_worker_and_super_admin_off_the_first_control_plane_fail(lab_params: Path,
                                                                                tmp_path: Path) -> None:
    from runbooks_lib.lab import lab

    state = lab.load_state(LAB)
    assert state is not None
    vip = state.node(f"{LAB}-w1").ip.rsplit(".", 1)[0] + ".250"
    w1, w2 = state.transport(f"{LAB}-w1"), state.transport(f"{LAB}-w2")
    w1.run(f"ip addr add {vip}/32 dev eth0", sudo=True, check=True)
    w2.run("install -d /etc/kubernetes && touch /etc/kubernetes/super-admin.conf", sudo=True, check=True)
    try:
        run = Run.start("kubeadm", str(lab_params), [f"kubeadm.control_plane_endpoint={vip}:8443",
                                                     "kubeadm.ha=kube-vip", "kubeadm.etcd_disk_test=false"],
                        str(tmp_path / "run"))
        result = kubeadm.plan(run)
        got = {(c.check, c.host): c for c in run.checks}
        assert got[("ha.vip", vip)].status == "fail" and f"held by {LAB}-w1" in got[("ha.vip", vip)].detail
        assert got[("pki.super_admin", f"{LAB}-w2")].status == "fail"
        assert ("pki.super_admin", f"{LAB}-cp1") not in got
        assert any("super-admin.conf" in text for text in result.ha_files.values())  # kube-vip during init
        # the apiserver certificate was not issued for the new endpoint: the SAN audit says so
        assert got[("pki.apiserver_sans", f"{LAB}-cp1")].status == "fail" and vip in \
            got[("pki.apiserver_sans", f"{LAB}-cp1")].detail
    finally:
        w1.run(f"ip addr del {vip}/32 dev eth0", sudo=True)
        w2.run("rm -f /etc/kubernetes/super-admin.conf", sudo=True)
