"""Ansible inventories read as Ansible reads them (issue 18.9).

Fixtures are Kubespray's sample inventory and the examples of Ansible's intro_inventory page
(tests/fixtures/inventory/PROVENANCE.md). 17 of the 22 tests here failed on the loader before this
change, which ignored [all:vars], merged group vars alphabetically, dropped passwords silently, let a
host keep whichever of two addresses came last, and read ranges and host:port as host names; the
Kubespray INI sample, the lab's own inventory shape and three malformed-INI cases (bad header,
unknown section kind, no hosts) are regression guards that passed before too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runbooks_lib.params import HostSpec, ParamsError, load_params

DOCS = Path(__file__).resolve().parent / "fixtures" / "inventory" / "ansible-docs"


def load(tmp_path: Path, inventory: Path) -> dict[str, HostSpec]:
    (tmp_path / "known_hosts").write_text("")
    p = tmp_path / "p.yaml"
    p.write_text(f"cluster_name: prod\ninventory: {inventory}\nssh: {{known_hosts: known_hosts}}\n")
    return {h.name: h for h in load_params(p).hosts}


def problems(tmp_path: Path, inventory: Path) -> ParamsError:
    with pytest.raises(ParamsError) as err:
        load(tmp_path, inventory)
    assert err.value.field == "inventory"
    return err.value


def test_kubespray_sample_ini(tmp_path: Path, fixtures: Path) -> None:
    hosts = load(tmp_path, fixtures / "inventory" / "kubespray-sample.ini")
    assert sorted(hosts) == [f"node{i}" for i in range(1, 7)]
    assert hosts["node1"].address == "95.54.0.12" and hosts["node1"].roles == ["control-plane", "etcd"]
    assert hosts["node2"].roles == ["control-plane", "worker", "etcd"]
    assert hosts["node6"].roles == ["worker"] and hosts["node6"].address == "95.54.0.17"


def test_kubespray_sample_yaml_with_string_hosts_is_refused(tmp_path: Path, fixtures: Path) -> None:
    """The sample's `hosts:` are plain strings; each bad group is named, not only the first."""
    err = problems(tmp_path, fixtures / "inventory" / "kubespray-sample.yml")
    text = str(err)
    for group in ("etcd", "kube-master", "kube-node"):
        assert f"group {group}: hosts must be a mapping" in text
    assert len(err.problems) == 3


@pytest.mark.parametrize("form", ["groups-of-groups.ini", "groups-of-groups.yaml"])
def test_variable_precedence_all_parent_child_host(tmp_path: Path, form: str) -> None:
    """all < parent < child < host, as intro_inventory's "How variables are merged" says."""
    hosts = load(tmp_path, DOCS / form)
    key = str(DOCS / "keys" / "id_ops")
    assert (hosts["mail.example.com"].user, hosts["mail.example.com"].port) == ("ops", 22)  # [all:vars]
    assert (hosts["host3"].user, hosts["host3"].port) == ("se-ops", 2222)  # parent southeast
    assert (hosts["host1"].user, hosts["host1"].port) == ("atl-ops", 2222)  # child atlanta beats parent
    assert (hosts["host2"].user, hosts["host2"].port) == ("atl-ops", 2202)  # host var beats groups
    assert {h.key for h in hosts.values()} == {key}


def test_ini_and_yaml_forms_agree(tmp_path: Path) -> None:
    ini = load(tmp_path, DOCS / "groups-of-groups.ini")
    yml = load(tmp_path, DOCS / "groups-of-groups.yaml")
    assert {n: h.model_dump() for n, h in ini.items()} == {n: h.model_dump() for n, h in yml.items()}


def test_ranges_ports_and_aliases(tmp_path: Path) -> None:
    hosts = load(tmp_path, DOCS / "hosts-and-ranges.ini")
    www = sorted(n for n in hosts if n.startswith("www"))
    assert len(www) == 25 and www[0] == "www01.example.com" and www[-1] == "www49.example.com"
    assert sorted(n for n in hosts if n.startswith("db-")) == [f"db-{c}.example.com" for c in "abcdef"]
    assert hosts["badwolf.example.com"].port == 5309
    assert (hosts["jumper"].address, hosts["jumper"].port) == ("192.0.2.50", 5555)
    assert hosts["other2.example.com"].user == "myotheruser"


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_passwords_are_refused_and_never_echoed(tmp_path: Path) -> None:
    inv = write(tmp_path, "hosts.ini",
                "[k8s]\nn1 ansible_host=10.0.0.1 ansible_password=PLANTED-host-pw\nn2 ansible_host=10.0.0.2\n"
                "[k8s:vars]\nansible_become_pass=PLANTED-become\n[all:vars]\nansible_ssh_pass=PLANTED-ssh\n")
    err = problems(tmp_path, inv)
    text = str(err)
    assert "PLANTED" not in text
    for var in ("ansible_password", "ansible_become_pass", "ansible_ssh_pass"):
        assert f"sets {var}; runbooks connects with SSH keys only" in text
    assert "hosts.ini:2" in text and "hosts.ini:5" in text and "hosts.ini:7" in text


def test_yaml_password_refused(tmp_path: Path) -> None:
    inv = write(tmp_path, "hosts.yaml", "all:\n  hosts:\n    n1: {ansible_host: 10.0.0.1}\n"
                                        "  vars: {ansible_ssh_pass: PLANTED-yaml}\n")
    err = problems(tmp_path, inv)
    assert "ansible_ssh_pass" in str(err) and "PLANTED" not in str(err)


def test_one_host_two_addresses_is_an_error(tmp_path: Path) -> None:
    inv = write(tmp_path, "hosts.ini", "[a]\nn1 ansible_host=10.0.0.1\n[b]\nn1 ansible_host=10.0.0.9\n[c]\nn1\n")
    err = problems(tmp_path, inv)
    assert "n1" in str(err) and "10.0.0.1" in str(err) and "10.0.0.9" in str(err)
    # the same address given twice is fine
    ok = write(tmp_path, "ok.ini", "[a]\nn1 ansible_host=10.0.0.1\n[b]\nn1 ansible_host=10.0.0.1\n")
    assert load(tmp_path, ok)["n1"].address == "10.0.0.1"


def test_group_vars_and_host_vars_directories(tmp_path: Path) -> None:
    """Ansible reads group_vars/ and host_vars/ next to the inventory; vault values elsewhere are fine."""
    inv = write(tmp_path, "inv/hosts.ini", "[kube_node]\nn1 ansible_host=10.0.0.1\nn2 ansible_host=10.0.0.2\n")
    write(tmp_path, "inv/group_vars/all.yml",
          "ansible_user: ops\nregistry_password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\n")
    write(tmp_path, "inv/group_vars/kube_node/ssh.yml", "ansible_port: 2200\n")
    write(tmp_path, "inv/host_vars/n2.yaml", "ansible_user: n2-ops\n")
    hosts = load(tmp_path, inv)
    assert (hosts["n1"].user, hosts["n1"].port) == ("ops", 2200)
    assert (hosts["n2"].user, hosts["n2"].port) == ("n2-ops", 2200)


def test_templated_or_vaulted_connection_vars_are_errors(tmp_path: Path) -> None:
    inv = write(tmp_path, "inv/hosts.ini", "[k8s]\nn1 ansible_host=10.0.0.1\n")
    write(tmp_path, "inv/group_vars/all.yml", "ansible_user: \"{{ lookup('env', 'USER') }}\"\n"
                                              "ansible_port: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\n")
    text = str(problems(tmp_path, inv))
    assert "ansible_user is a Jinja2 template" in text and "ansible_port is vault-encrypted" in text


@pytest.mark.parametrize(("text", "expect"), [
    ("[a:children]\nb\n[b:children]\na\n[a]\nn1 ansible_host=10.0.0.1\n", "groups form a cycle"),
    ("[local]\nlocalhost ansible_connection=local\n", "ansible_connection=local"),
    ("[big]\nn[0:9999999].example.com\n", "expands to more than"),
    ("[bad:hosts\nn1\n", "section header"),
    ("[a:weird]\nn1\n", "unknown section kind"),
    ("[a]\nn1 ansible_port=ssh\n", "ansible_port 'ssh' is not a number"),
    ("# every host commented out\n[a]\n# n1\n", "no hosts found"),
])
def test_bad_ini_inventories(tmp_path: Path, text: str, expect: str) -> None:
    assert expect in str(problems(tmp_path, write(tmp_path, "hosts.ini", text)))


def test_yaml_typo_in_group_is_an_error(tmp_path: Path) -> None:
    """`host:` instead of `hosts:` would silently drop every host."""
    inv = write(tmp_path, "hosts.yaml", "all:\n  children:\n    k8s:\n      host:\n        n1:\n")
    assert "group k8s: unknown key 'host'" in str(problems(tmp_path, inv))


def test_unusable_inventory_files(tmp_path: Path) -> None:
    binary = tmp_path / "bin.ini"
    binary.write_bytes(b"\x7fELF\x02\x01\x00\x00")
    latin1 = tmp_path / "latin1.ini"
    latin1.write_bytes(b"[k8s]\nn\xe9ud1 ansible_host=10.0.0.1\n")
    (tmp_path / "dir.ini").mkdir()
    assert "binary data" in str(problems(tmp_path, binary))
    assert "not UTF-8 text (invalid byte at line 2, column 2)" in str(problems(tmp_path, latin1))
    assert "is a directory" in str(problems(tmp_path, tmp_path / "dir.ini"))


def test_bad_host_address_from_inventory_names_host_and_inventory(tmp_path: Path) -> None:
    inv = write(tmp_path, "hosts.ini", "[k8s]\nn1 ansible_host='10.0.0.1;rm -rf /'\nn2 ansible_host=10.0.0.2\n")
    with pytest.raises(ParamsError) as err:
        load(tmp_path, inv)
    assert err.value.field == "hosts.n1.address"
    assert "neither an IP address nor an RFC 1123 host name" in err.value.why and str(inv) in err.value.why


def test_lab_inventory_shape_still_loads(tmp_path: Path) -> None:
    """The lab's own inventory (all: vars with user, key, runbooks_lab) keeps working."""
    from runbooks_lib.lab.inventory import inventory_data, write_inventory

    key = tmp_path / "id_ed25519"
    key.write_text("placeholder")
    write_inventory(tmp_path / "inventory.yaml", inventory_data(
        [{"hostname": "t-cp1", "ip": "10.77.5.11", "roles": ["control-plane", "etcd"]},
         {"hostname": "t-w1", "ip": "10.77.5.12", "roles": ["worker"]}], key))
    hosts = load(tmp_path, tmp_path / "inventory.yaml")
    assert hosts["t-cp1"].roles == ["control-plane", "etcd"] and hosts["t-w1"].lab
    assert {h.user for h in hosts.values()} == {"runbooks"} and hosts["t-w1"].key == str(key)
