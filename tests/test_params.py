"""Parameter schema: errors name file and field; overrides typed by the schema; inventories."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbooks_lib.params import ParamsError, is_secret_path, load_params


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text(text)
    return p


def test_typo_is_an_error_with_suggestion(tmp_path: Path) -> None:
    p = write(tmp_path, 'cluster_name: prod\nkubernetes_verison: "1.30"\n')
    with pytest.raises(ParamsError) as err:
        load_params(p)
    assert err.value.field == "kubernetes_verison"
    assert "did you mean 'kubernetes_version'" in str(err.value)
    assert str(p) in str(err.value)


def test_nested_unknown_key(tmp_path: Path) -> None:
    p = write(tmp_path, "cluster_name: prod\nssh: {conect_timeout: 3}\n")
    with pytest.raises(ParamsError, match=r"ssh\.conect_timeout: unknown key \(did you mean 'connect_timeout'"):
        load_params(p)


def test_unquoted_version_explained(tmp_path: Path) -> None:
    p = write(tmp_path, "cluster_name: prod\nkubernetes_version: 1.30\n")
    with pytest.raises(ParamsError, match="kubernetes_version.*quote it"):
        load_params(p)


def test_set_overrides_are_typed_by_schema(tmp_path: Path) -> None:
    p = write(tmp_path, "cluster_name: prod\n")
    params = load_params(p, ["kubernetes_version=1.30", "ssh.forks=7", "ssh.strict_host_key=false"])
    assert params.kubernetes_version == "1.30"
    assert params.ssh.forks == 7 and params.ssh.strict_host_key is False
    with pytest.raises(ParamsError, match="ssh.forks"):
        load_params(p, ["ssh.forks=many"])
    with pytest.raises(ParamsError, match="mode"):
        load_params(p, ["mode=destroy"])


def test_confirm_requires_apply_and_cluster_name(tmp_path: Path) -> None:
    p = write(tmp_path, "cluster_name: prod\n")
    assert not load_params(p, ["confirm=prod"]).confirmed  # allowed with plan, and unused
    assert load_params(p, ["mode=apply", "confirm=prod"]).confirmed


def test_wrong_confirm_is_an_error(tmp_path: Path) -> None:
    """Before: a confirm naming another cluster was silently ignored."""
    p = write(tmp_path, "cluster_name: prod\n")
    for mode in ("apply", "plan"):
        with pytest.raises(ParamsError) as err:
            load_params(p, [f"mode={mode}", "confirm=lab"])
        assert err.value.field == "confirm"
        assert "confirm 'lab' does not match cluster_name 'prod'" in str(err.value)


def known_hosts(tmp_path: Path) -> Path:
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    return kh


def test_seed_ansible_inventory(tmp_path: Path, fixtures: Path) -> None:
    inv = fixtures / "inventory" / "seed-k8s.ini"
    p = write(tmp_path, f"cluster_name: prod\ninventory: {inv}\nssh: {{known_hosts: {known_hosts(tmp_path)}}}\n")
    hosts = {h.name: h for h in load_params(p).hosts}
    assert hosts["k8s-m1"].address == "192.168.13.134" and hosts["k8s-m1"].port == 65422
    assert hosts["k8s-m1"].roles == ["control-plane", "worker", "etcd"]
    assert hosts["k8s-n2"].roles == ["worker", "etcd"]
    assert hosts["k8s-n3"].user == "ops"


def test_kubespray_yaml_inventory(tmp_path: Path, fixtures: Path) -> None:
    inv = fixtures / "inventory" / "kubespray.yaml"
    p = write(tmp_path, f"cluster_name: prod\ninventory: {inv}\nssh: {{known_hosts: {known_hosts(tmp_path)}}}\n")
    params = load_params(p)
    hosts = {h.name: h for h in params.hosts}
    assert hosts["node1"].roles == ["control-plane", "etcd"]
    assert hosts["node2"].roles == ["worker"] and hosts["node2"].port == 2222
    assert all(h.user == "deploy" for h in hosts.values())
    assert [h.name for h in params.hosts_with_role("control-plane")] == ["node1"]


def test_bad_inventory_names_field(tmp_path: Path) -> None:
    p = write(tmp_path, "cluster_name: prod\ninventory: missing.ini\n")
    with pytest.raises(ParamsError) as err:
        load_params(p)
    assert err.value.field == "inventory" and "not found" in err.value.why


def test_secret_fields_marked() -> None:
    assert is_secret_path("kubeadm.token")
    assert is_secret_path("secrets.anything")
    assert not is_secret_path("kubernetes_version")


def test_schema_file_is_current() -> None:
    from runbooks_lib.params import PROJECT_ROOT, schema_json

    on_disk = (PROJECT_ROOT / "parameters" / "schema.json").read_text()
    assert on_disk == schema_json(), "parameters/schema.json is stale: run `runbooks schema --write`"


def test_example_parameter_files_validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The examples use ~/.ssh/known_hosts, which must exist: give them a home that has one."""
    from runbooks_lib.params import PROJECT_ROOT

    (tmp_path / ".ssh").mkdir()
    known_hosts(tmp_path / ".ssh")
    monkeypatch.setenv("HOME", str(tmp_path))

    for example in sorted((PROJECT_ROOT / "parameters").glob("example-*.yaml")):
        params = load_params(example)
        assert params.mode == "plan", example


def test_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    p = write(tmp_path, "cluster_name: prod\nssh: {known_hosts: kh}\nkube: {kubeconfig: sub/kc}\n")
    params = load_params(p)
    assert params.ssh.known_hosts == str(tmp_path / "kh")
    assert params.kube.kubeconfig == str(tmp_path / "sub" / "kc")
    assert load_params(write(tmp_path, "cluster_name: x\n")).kube.kubeconfig.endswith("/.kube/config")


def test_set_entry_of_a_mapping_is_typed_by_its_value_type(tmp_path: Path) -> None:
    """Before: `--set secrets.registry=8675309` became the int 8675309 and failed as "not a string"."""
    p = write(tmp_path, "cluster_name: prod\n")
    assert load_params(p, ["secrets.registry=8675309"]).secrets == {"registry": "8675309"}


def test_secret_file_reference_that_is_not_a_text_file(tmp_path: Path) -> None:
    """Before: a directory or binary file behind `file:` ended in IsADirectoryError / UnicodeDecodeError."""
    from runbooks_lib.params import resolve_secret

    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00secret")
    for name, why in (("missing", "secret file not found"), ("bin", "binary data"), (".", "is a directory")):
        with pytest.raises(ParamsError) as err:
            resolve_secret(f"file:{tmp_path / name}", "secrets.registry")
        assert err.value.field == "secrets.registry" and why in err.value.why
