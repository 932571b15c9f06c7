"""Chapter 02's minted secrets and the documents carrying them (pure), and apply's reset rule."""

from __future__ import annotations

import pytest
import yaml

from runbooks_lib.chapters.kubeadm import actions, bootstrap, config, schema
from runbooks_lib.chapters.kubeadm.settings import Settings

HASH = "sha256:" + "ab" * 32


def test_minted_token_and_key_have_kubeadms_shapes_and_differ_each_time() -> None:
    tokens = {bootstrap.mint_token() for _ in range(50)}
    keys = {bootstrap.mint_certificate_key() for _ in range(50)}
    assert len(tokens) == 50 and len(keys) == 50
    assert all(bootstrap.TOKEN.match(t) for t in tokens) and all(bootstrap.CERT_KEY.match(k) for k in keys)


@pytest.mark.parametrize("version", ["1.28.6", "1.37.1"])
def test_init_text_carries_token_ttl_and_key_and_stays_schema_valid(version: str) -> None:
    rendered = config.render(Settings(), version, "c1", config.Node("cp1", "10.0.0.11"), "iptables")
    token, key = bootstrap.mint_token(), bootstrap.mint_certificate_key()
    text = bootstrap.init_text(rendered, token, "45m", key)
    assert schema.validate(text) == []
    init = next(d for d in yaml.safe_load_all(text) if d["kind"] == "InitConfiguration")
    assert init["bootstrapTokens"][0]["token"] == token and init["bootstrapTokens"][0]["ttl"] == "45m"
    assert init["certificateKey"] == key
    assert token not in rendered.text and key not in rendered.text   # the shown config stays secret-free


@pytest.mark.parametrize("api", ["kubeadm.k8s.io/v1beta3", "kubeadm.k8s.io/v1beta4"])
def test_join_text_pins_the_ca_and_is_schema_valid(api: str) -> None:
    token, key = bootstrap.mint_token(), bootstrap.mint_certificate_key()
    worker = bootstrap.join_text(api, "10.0.0.10:6443", token, HASH, "w1", "10.0.0.21", "unix:///x.sock")
    cp = bootstrap.join_text(api, "10.0.0.10:6443", token, HASH, "cp2", "10.0.0.12", "unix:///x.sock", key)
    assert schema.validate(worker) == [] and schema.validate(cp) == []
    doc = yaml.safe_load(cp)
    assert doc["discovery"]["bootstrapToken"]["caCertHashes"] == [HASH]
    assert "unsafeSkipCAVerification" not in cp and "controlPlane" not in yaml.safe_load(worker)
    assert doc["controlPlane"] == {"localAPIEndpoint": {"advertiseAddress": "10.0.0.12", "bindPort": 6443},
                                   "certificateKey": key}
    with pytest.raises(ValueError):
        bootstrap.join_text(api, "e:6443", token, "sha256:short", "w1", "10.0.0.21", "unix:///x.sock")
    bad = schema.validate(cp.replace("caCertHashes", "caCertHash"))
    assert bad and "caCertHash" in bad[0]


def test_reset_is_planned_only_where_kubeadm_state_is() -> None:
    hosts = [("cp1", "control-plane"), ("w1", "worker"), ("w2", "worker")]
    init = {"cp1": True, "w1": True, "w2": False}
    acts = {a.host: a for a in actions.plan(hosts, init, "e:6443", None, "1h", 300, ["w1", "w2"],
                                            {"cp1": True, "w1": True, "w2": False})}
    assert acts["w1"].step == "reset" and "kubeadm reset -f" in acts["w1"].commands[0]
    assert acts["w2"].step == "none" and "nothing to reset" in acts["w2"].why
    assert acts["cp1"].step == "none"
    assert "nft delete table ip kube-proxy" in acts["w1"].commands[0]
    assert "flush ruleset" not in acts["w1"].commands[0]              # firewalld's table stays


def test_blockers_follow_kubeadms_ignore_preflight_errors() -> None:
    from runbooks_lib.verdict import Check

    checks = [Check("preflight.CRI", "w1", "drift", step="preflight"),
              Check("preflight.Swap", "w1", "fail", step="preflight"),
              Check("preflight.Mem", "w2", "warn", step="preflight"),
              Check("pki.apiserver_sans", "cp1", "fail", step="pki"),
              Check("node.ready", "w2", "fail", step="verify"),            # the cluster's state: never blocks
              Check("ha.endpoint", "runner", "fail", step="config")]
    assert actions.blockers(checks, []) == {"w1": ["preflight.CRI", "preflight.Swap"],
                                            "cp1": ["pki.apiserver_sans"], "runner": ["ha.endpoint"]}
    assert actions.blockers(checks, ["cri"])["w1"] == ["preflight.Swap"]
    got = actions.blockers(checks, ["all"])
    assert "w1" not in got and got["cp1"] == ["pki.apiserver_sans"]  # "all" covers preflight only


def test_ignored_preflight_errors_reach_kubeadms_own_configs() -> None:
    s = Settings(ignore_preflight_errors=["CRI"])
    rendered = config.render(s, "1.37.1", "c1", config.Node("cp1", "10.0.0.11"), "nftables")
    init = next(d for d in rendered.documents if d["kind"] == "InitConfiguration")
    assert init["nodeRegistration"]["ignorePreflightErrors"] == ["CRI"] and schema.validate(rendered.text) == []
    join = bootstrap.join_text(rendered.api_version, "e:6443", bootstrap.mint_token(), HASH, "w1", "10.0.0.21",
                               "unix:///x.sock", ignore_preflight=["CRI"])
    assert yaml.safe_load(join)["nodeRegistration"]["ignorePreflightErrors"] == ["CRI"]
    with pytest.raises(ValueError, match="not a kubeadm preflight check name"):
        Settings(ignore_preflight_errors=["CRI; rm -rf /"])
