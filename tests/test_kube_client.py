"""Cluster access against the API double: target reporting, errors, and evidence without secrets."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kube_double.fixture import make_run

from runbooks_lib import kube
from runbooks_lib.evidence import Recorder, load_records
from runbooks_lib.lab.apiserver import ApiDouble, free_port
from runbooks_lib.lab.apiserver.seed import BOOTSTRAP_TOKEN_SECRET, SECRET_PASSWORD, name_suffix
from runbooks_lib.transport import TargetUnreachable


def test_connect_names_the_double_in_the_header(kube_run, api_double):
    kc = kube.connect(kube_run)
    assert kube.connect(kube_run) is kc  # once per run
    _, url, _ = api_double
    assert f"API double at {url} (reports Kubernetes v1.30.4)" in kube_run.targets
    meta = json.loads((kube_run.run_dir / "meta.json").read_text())
    assert any(t.startswith("API double at https://127.0.0.1:") for t in meta["targets"])
    assert kc.target.context == "kubernetes-admin@runbooks-api-double"
    assert kc.target.user == "kubernetes-admin" and kc.target.is_double


def test_missing_kubeconfig(tmp_path):
    with pytest.raises(kube.KubeConfigError, match="does not exist"):
        kube.KubeClient.from_kubeconfig(tmp_path / "nope.conf")


def test_unknown_context_lists_known_ones(api_double):
    with pytest.raises(kube.KubeConfigError) as err:
        kube.KubeClient.from_kubeconfig(api_double[0], "prod", recorder=Recorder())
    assert "'prod' is not in kubeconfig" in str(err.value)
    assert "kubernetes-admin@runbooks-api-double, runbooks-viewer@runbooks-api-double" in str(err.value)


def test_unreachable_server_is_target_unreachable(tmp_path, api_double):
    _, _, double = api_double
    port = free_port()  # nothing listens there
    path = double.write_kubeconfig(tmp_path / "dead.conf", server=f"https://127.0.0.1:{port}")
    rec = Recorder()
    t0 = time.monotonic()
    with pytest.raises(TargetUnreachable) as err:
        kube.KubeClient.from_kubeconfig(path, recorder=rec, request_timeout=3)
    assert time.monotonic() - t0 < 10
    assert "connection refused" in str(err.value) and f"127.0.0.1:{port}" in str(err.value)
    assert rec.records[-1].status == "unreachable" and rec.records[-1].kind == "api"


def test_tls_failure_is_explained(tmp_path, api_double):
    _, url, _ = api_double
    other = ApiDouble(seed=False)  # a different CA
    path = other.write_kubeconfig(tmp_path / "wrong-ca.conf", server=url)
    with pytest.raises(TargetUnreachable) as err:
        kube.KubeClient.from_kubeconfig(path, recorder=Recorder(), request_timeout=5)
    text = str(err.value)
    assert "TLS to " in text and "not signed by the kubeconfig's CA" in text
    assert "certificate-authority-data" in text


def test_403_names_verb_resource_and_namespace(tmp_path):
    with ApiDouble(forbid=["patch:configmaps"]) as double:
        path = double.write_kubeconfig(tmp_path / "kc")
        kc = kube.KubeClient.from_kubeconfig(path, recorder=Recorder())
        with pytest.raises(kube.KubeRefused) as err:
            kc.patch_configmap_key("kube-proxy", "kube-system", "config.conf", "mode: ipvs\n")
    text = str(err.value)
    assert text.startswith("patch configmaps in kube-system refused: ")
    assert 'User "kubernetes-admin" cannot patch resource "configmaps"' in text
    assert err.value.code == 403


def test_viewer_context_is_read_only(api_double):
    kc = kube.KubeClient.from_kubeconfig(api_double[0], "runbooks-viewer@runbooks-api-double", recorder=Recorder())
    assert len(kc.nodes()) == 3
    with pytest.raises(kube.KubeRefused, match="^delete pods in kube-system refused: "):
        kc.delete("Pod", f"kube-proxy-{name_suffix('cp1', 'kube-proxy')}", "kube-system")
    with pytest.raises(kube.KubeRefused, match="^list secrets in the cluster scope refused"):
        kc.list_objects("Secret")


def test_401_explained(tmp_path, api_double):
    doc = yaml.safe_load(api_double[0].read_text())
    doc["users"][1]["user"]["token"] = "not-the-token-0123456789"
    path = tmp_path / "bad-token.conf"
    path.write_text(yaml.safe_dump(doc))
    kc = kube.KubeClient.from_kubeconfig(path, "runbooks-viewer@runbooks-api-double", recorder=Recorder())
    with pytest.raises(kube.KubeRefused) as err:
        kc.nodes()
    assert "list nodes in the cluster scope refused: 401 Unauthorized" in str(err.value)
    assert "runbooks-viewer" in str(err.value)


def test_api_calls_are_recorded_with_verb_path_status_kind_name(kube_run):
    kc = kube.connect(kube_run)
    kc.get("ConfigMap", "kube-proxy", "kube-system")
    with pytest.raises(kube.KubeNotFound):
        kc.get("ConfigMap", "nope", "kube-system")
    recs = [r for r in kube_run.recorder.records if r.kind == "api"]
    get_ok, get_404 = recs[-2], recs[-1]
    assert get_ok.command == "get /api/v1/namespaces/kube-system/configmaps/kube-proxy"
    assert get_ok.exit_code == 200 and get_ok.extra["kind"] == "ConfigMap" and get_ok.extra["name"] == "kube-proxy"
    assert get_ok.duration_s >= 0 and get_ok.target == "kube:kubernetes-admin@runbooks-api-double"
    assert get_404.exit_code == 404 and get_404.status == "failed"
    assert 'configmaps "nope" not found' in get_404.stderr
    assert get_ok.stdout == ""  # bodies are never recorded


def test_no_credential_or_secret_value_reaches_evidence(tmp_path, api_double):
    kubeconfig, _, double = api_double
    doc = yaml.safe_load(kubeconfig.read_text())
    key_b64 = doc["users"][0]["user"]["client-key-data"]
    key_pem = base64.b64decode(key_b64).decode()
    token = doc["users"][1]["user"]["token"]
    forbidden = [key_b64, token, SECRET_PASSWORD, base64.b64encode(SECRET_PASSWORD.encode()).decode(),
                 BOOTSTRAP_TOKEN_SECRET, base64.b64encode(BOOTSTRAP_TOKEN_SECRET.encode()).decode()]
    forbidden += [line for line in key_pem.splitlines() if "-----" not in line and len(line) > 20]
    for context, name in ((None, "admin"), ("runbooks-viewer@runbooks-api-double", "viewer")):
        run = make_run(tmp_path, kubeconfig, context=context, name=name)
        kc = kube.connect(run)
        if name == "admin":
            secret = kc.get("Secret", "registry-credentials", "default")  # the client does see the value
            assert base64.b64decode(secret["data"]["password"]).decode() == SECRET_PASSWORD
            kc.list_objects("Secret", "kube-system")
            kc.apply([{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "trial", "namespace": "default"},
                       "stringData": {"password": SECRET_PASSWORD}}], dry_run=True)
        else:
            with pytest.raises(kube.KubeRefused):
                kc.get("Secret", "registry-credentials", "default")
            kc.list_objects("Pod", "kube-system")
        records = json.dumps([r.__dict__ for r in run.recorder.records])
        jsonl = (run.run_dir / "evidence.jsonl").read_text()
        assert len(load_records(run.run_dir / "evidence.jsonl")) == len(run.recorder.records) >= 3
        for value in forbidden:
            assert value not in records, f"{name}: a secret value is in the records"
            assert value not in jsonl, f"{name}: a secret value is in evidence.jsonl"
        assert "Secret" in records or name == "viewer"
    assert double.request_count() > 0


def test_double_cli_serves_until_killed(tmp_path):
    path = tmp_path / "cli.kubeconfig"
    proc = subprocess.Popen([sys.executable, "-m", "runbooks_lib.lab.apiserver", "--kubeconfig", str(path),
                             "--forbid", "delete:pods"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "API double serving at https://127.0.0.1:" in line and path.exists()
        kc = kube.KubeClient.from_kubeconfig(path, recorder=Recorder())
        assert kc.describe().startswith("API double at https://127.0.0.1:")
        with pytest.raises(kube.KubeRefused):
            kc.delete("Pod", f"kube-proxy-{name_suffix('cp1', 'kube-proxy')}", "kube-system")
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    assert Path(path).stat().st_mode & 0o077 == 0
