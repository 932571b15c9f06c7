"""The objects layer's pure parts and sources: YAML documents, pinned URLs, patches, Helm, ordering,
field diffs, kstatus rules and offline validation (issue 13 §1)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks_lib.evidence import Recorder
from runbooks_lib.kube import helm, sources
from runbooks_lib.kube.errors import ManifestInvalid
from runbooks_lib.kube.manifests import validate_custom, validate_set
from runbooks_lib.kube.objects import field_diff, order, prune_order, ref_of
from runbooks_lib.kube.patches import Patch, PatchError, apply_patches
from runbooks_lib.kube.plan import parse_warnings
from runbooks_lib.kube.status import compute

DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "demo"},
          "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
              "metadata": {"labels": {"app": "web"}},
              "spec": {"containers": [
                  {"name": "web", "image": "nginx:1.27", "args": ["--a", "--b"],
                   "env": [{"name": "MODE", "value": "x"}, {"name": "KEEP", "value": "1"}]},
                  {"name": "side", "image": "busybox:1.36"}]}}}}
CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": "widgets.example.com"},
       "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                              "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                  "spec": {"type": "object", "required": ["size"], "properties": {
                                      "size": {"type": "integer", "minimum": 1},
                                      "color": {"type": "string", "enum": ["red", "blue"]},
                                      "port": {"x-kubernetes-int-or-string": True}}},
                                  "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]}}


def widget(name: str, **spec: object) -> dict[str, object]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name, "namespace": "demo"},
            "spec": spec}


# -- sources

def test_multi_document_yaml_skips_empty_documents_and_flattens_lists(tmp_path: Path) -> None:
    f = tmp_path / "m.yaml"
    f.write_text("---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n# only a comment\n---\n"
                 "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}\n"
                 "- {apiVersion: v1, kind: Secret, metadata: {name: s}}\n", encoding="utf-8")
    assert [str(ref_of(o)) for o in sources.from_file(f)] == ["Namespace a", "ConfigMap c", "Secret s"]


def test_a_document_without_name_or_kind_is_refused_naming_it() -> None:
    with pytest.raises(sources.SourceError, match=r"document 2 \(ConfigMap\) lacks metadata.name") as e:
        sources.load_documents("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n"
                               "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n---\n- a list\n", "m.yaml")
    assert "document 3 is a list" in str(e.value)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, bytes]]:
    """An http.server on 127.0.0.1 serving tmp_path; yields (base url, the manifest's bytes)."""
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-url, namespace: demo}\ndata: {k: v}\n"
    (tmp_path / "m.yaml").write_bytes(body)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", body
    finally:
        server.shutdown()
        server.server_close()


def test_url_source_with_its_sha256_loads_and_is_one_evidence_record(served: tuple[str, bytes]) -> None:
    url, body = served
    rec = Recorder()
    objs = sources.from_url(f"{url}/m.yaml", hashlib.sha256(body).hexdigest(), recorder=rec)
    assert [str(ref_of(o)) for o in objs] == ["ConfigMap demo/from-url"]
    assert len(rec.records) == 1 and rec.records[0].status == "ok"
    assert rec.records[0].extra["sha256"] == hashlib.sha256(body).hexdigest()


def test_url_source_with_another_digest_or_none_is_refused(served: tuple[str, bytes]) -> None:
    url, _ = served
    rec = Recorder()
    with pytest.raises(sources.SourceError, match="expected 0000"):
        sources.from_url(f"{url}/m.yaml", "0" * 64, recorder=rec)
    assert rec.records[-1].status == "failed"
    with pytest.raises(sources.SourceError, match="needs its sha256"):
        sources.from_url(f"{url}/m.yaml", "", recorder=rec)


# -- patches

def test_strategic_merge_merges_containers_and_env_by_name_and_replaces_args() -> None:
    patch = Patch("Deployment", "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "mirror.local/nginx:1.27", "args": ["--c"],
         "env": [{"name": "MODE", "value": "y"}, {"name": "NEW", "value": "2"}]}]}}}}, namespace="demo")
    (out,) = apply_patches([DEPLOY], [patch], "1.30")
    web, side = out["spec"]["template"]["spec"]["containers"]
    assert side == {"name": "side", "image": "busybox:1.36"}  # a list-map: the other container is kept
    assert web["image"] == "mirror.local/nginx:1.27"
    assert web["args"] == ["--c"]  # atomic list: replaced
    assert web["env"] == [{"name": "MODE", "value": "y"}, {"name": "KEEP", "value": "1"}, {"name": "NEW", "value": "2"}]
    assert DEPLOY["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"  # input untouched


def test_strategic_merge_delete_directive_and_null_removal() -> None:
    patch = Patch("Deployment", "web", {"spec": {"selector": None, "template": {"spec": {"containers": [
        {"name": "side", "$patch": "delete"}]}}}})
    (out,) = apply_patches([DEPLOY], [patch], "1.30")
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["web"]
    assert "selector" not in out["spec"]


def test_json6902_patch_and_its_failures() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
          "data": {"mode": ""}}
    (out,) = apply_patches([cm], [Patch("ConfigMap", "kube-proxy", [
        {"op": "test", "path": "/data/mode", "value": ""}, {"op": "replace", "path": "/data/mode", "value": "ipvs"},
        {"op": "add", "path": "/data/extra", "value": "1"}], type="json")], "1.30")
    assert out["data"] == {"mode": "ipvs", "extra": "1"}
    with pytest.raises(PatchError, match="operation 1"):
        apply_patches([cm], [Patch("ConfigMap", "kube-proxy", [{"op": "replace", "path": "/data/nope", "value": 1}],
                                   type="json")], "1.30")
    with pytest.raises(PatchError, match="matches 0 objects"):
        apply_patches([cm], [Patch("ConfigMap", "other", {}, type="merge")], "1.30")


def test_strategic_merge_on_a_custom_resource_is_refused() -> None:
    with pytest.raises(PatchError, match="use a merge or json patch"):
        apply_patches([widget("w", size=1)], [Patch("Widget", "w", {"spec": {"size": 2}})], "1.30")


# -- helm

def test_helm_missing_says_what_to_install() -> None:
    with pytest.raises(helm.HelmError, match=r"helm not found .*install helm >= 3.x .*rendered manifest"):
        helm.render_chart("./chart", "rel", "demo", helm="/nonexistent/helm")


@pytest.mark.skipif(helm.shutil.which("helm") is None, reason="no helm binary on this runner")
def test_helm_template_renders_a_chart_and_records_the_version(tmp_path: Path) -> None:
    chart = tmp_path / "c"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n", encoding="utf-8")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ .Release.Name }}'}\ndata: {v: '{{ .Values.v }}'}\n",
        encoding="utf-8")
    out = helm.render_chart(chart, "rel", "demo", set_values={"v": "7"})
    assert out.helm_version.startswith("v3") or out.helm_version.startswith("v4")
    assert out.objects[0]["data"] == {"v": "7"}


def test_release_data_round_trips_as_helm_encodes_it() -> None:
    doc = {"name": "m", "version": 3, "chart": {"metadata": {"name": "metrics-server", "version": "3.12.1"}}}
    encoded = helm.encode_release(doc)
    assert helm.decode_release(encoded) == doc
    with pytest.raises(helm.HelmError, match="cannot be decoded"):
        helm.decode_release("bm90IGd6aXA=")


# -- ordering and diffs

def test_order_puts_a_cluster_in_dependency_order_whatever_the_input_order() -> None:
    kinds = ["Widget", "APIService", "Service", "Deployment", "ConfigMap", "ClusterRoleBinding", "ClusterRole",
             "ServiceAccount", "CustomResourceDefinition", "Namespace", "Secret", "RoleBinding", "Role"]
    objs = [{"apiVersion": "v1", "kind": k, "metadata": {"name": k.lower()}} for k in kinds]
    random.Random(7).shuffle(objs)
    got = [o["kind"] for o in order(objs)]
    assert got == ["Namespace", "CustomResourceDefinition", "ServiceAccount", "Secret", "ConfigMap", "ClusterRole",
                   "ClusterRoleBinding", "Role", "RoleBinding", "Service", "Deployment", "APIService", "Widget"]
    hooks = [{"kind": "ValidatingWebhookConfiguration", "metadata": {"name": "v"}}]
    assert [o["kind"] for o in prune_order(objs + hooks)][:2] == ["ValidatingWebhookConfiguration", "Widget"]


def test_field_diff_ignores_server_metadata_and_status_and_hides_secret_values() -> None:
    live = {"kind": "ConfigMap", "metadata": {"name": "c", "resourceVersion": "1", "generation": 1, "uid": "u",
                                              "managedFields": [{"manager": "x"}], "creationTimestamp": "t"},
            "data": {"a": "1", "gone": "x"}, "status": {"s": 1}}
    new = {"kind": "ConfigMap", "metadata": {"name": "c", "resourceVersion": "9"}, "data": {"a": "2"}}
    assert [str(f) for f in field_diff(live, new)] == ["~ .data.a: 1 -> 2", "- .data.gone: x"]
    s1 = {"kind": "Secret", "metadata": {"name": "s"}, "data": {"p": "c2VjcmV0"}}
    s2 = {"kind": "Secret", "metadata": {"name": "s"}, "data": {"p": "b3RoZXI="}}
    assert [str(f) for f in field_diff(s1, s2)] == ["~ .data.p: (hidden) -> (hidden)"]


def test_list_maps_diff_by_name() -> None:
    a = DEPLOY
    b = apply_patches([DEPLOY], [Patch("Deployment", "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "side", "image": "busybox:1.37"}]}}}})], "1.30")[0]
    assert [str(f) for f in field_diff(a, b)] == [
        '~ .spec.template.spec.containers[name="side"].image: busybox:1.36 -> busybox:1.37']


def test_server_warning_headers_are_parsed() -> None:
    header = '299 - "unknown field \\"spec.foo\\"", 299 - "policy/v1beta1 PodDisruptionBudget is deprecated"'
    assert parse_warnings(header) == ['unknown field "spec.foo"', "policy/v1beta1 PodDisruptionBudget is deprecated"]
    assert parse_warnings('299 - "unknown field "colour"", 299 - "a, b"') == ['unknown field "colour"', "a, b"]


# -- status rules (kstatus + Argo additions)

@pytest.mark.parametrize(("obj", "want"), [
    ({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2},
      "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
                 "availableReplicas": 2}}, "in_progress"),
    ({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2},
      "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
                 "availableReplicas": 2}}, "current"),
    ({"kind": "Deployment", "metadata": {"generation": 1}, "spec": {"replicas": 1},
      "status": {"observedGeneration": 1, "conditions": [{"type": "Progressing", "status": "False",
                                                          "reason": "ProgressDeadlineExceeded"}]}}, "failed"),
    ({"kind": "Pod", "status": {"phase": "Pending", "containerStatuses": [
        {"name": "c", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}, "failed"),
    ({"kind": "PersistentVolumeClaim", "status": {"phase": "Lost"}}, "failed"),
    ({"kind": "PersistentVolumeClaim", "status": {"phase": "Pending"}}, "in_progress"),
    ({"kind": "APIService", "status": {"conditions": [{"type": "Available", "status": "False"}]}}, "in_progress"),
    ({"kind": "CustomResourceDefinition", "status": {"conditions": [{"type": "NamesAccepted", "status": "False"}]}},
     "failed"),
    ({"kind": "Job", "status": {"startTime": "t"}}, "in_progress"),
    ({"kind": "Widget", "status": {"conditions": [{"type": "Ready", "status": "False"}]}}, "in_progress"),
    ({"kind": "Widget", "metadata": {"deletionTimestamp": "t"}}, "terminating"),
    ({"kind": "ConfigMap"}, "current"),
])
def test_kstatus_rules(obj: dict[str, object], want: str) -> None:
    assert compute(obj).status == want


def test_an_object_seen_before_the_apply_is_never_current() -> None:
    obj = {"kind": "ConfigMap", "metadata": {"generation": 1}}
    assert compute(obj, min_generation=2).status == "in_progress"


# -- offline validation

def test_custom_resources_are_validated_against_their_crd_schema() -> None:
    assert validate_custom(widget("ok", size=2, color="red", port="http"), CRD).outcome == "valid"
    bad = validate_custom(widget("bad", size=0, colour="red"), CRD)
    assert bad.outcome == "invalid"
    assert "spec: Additional properties are not allowed ('colour'" in bad.detail
    assert "spec.size: 0 is less than the minimum of 1" in bad.detail
    v2 = dict(widget("v2", size=1), apiVersion="example.com/v2")
    assert "does not serve version v2" in validate_custom(v2, CRD).detail


def test_a_set_with_a_broken_object_lists_every_problem() -> None:
    broken = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": 1}}
    with pytest.raises(ManifestInvalid) as e:
        validate_set([CRD, widget("w", color="green"), broken], "1.30", {("example.com", "Widget"): CRD})
    text = str(e.value)
    assert "Widget demo/w" in text and "'size' is a required property" in text and "ConfigMap c: data.a" in text


def test_mirror_images_rewrites_registries_in_every_pod_template() -> None:
    from runbooks_lib.kube.patches import mirror_images

    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "j"}, "spec": {"jobTemplate": {"spec": {
        "template": {"spec": {"containers": [{"name": "c", "image": "registry.k8s.io/etcd:3.5.15-0"}]}}}}}}
    out = mirror_images([DEPLOY, cron], {"docker.io": "mirror.local:5000/hub", "registry.k8s.io": "mirror.local:5000/k8s"})
    assert [c["image"] for c in out[0]["spec"]["template"]["spec"]["containers"]] == [
        "mirror.local:5000/hub/library/nginx:1.27", "mirror.local:5000/hub/library/busybox:1.36"]
    assert out[1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "mirror.local:5000/k8s/etcd:3.5.15-0"
    assert mirror_images([DEPLOY], {"quay.io": "m"})[0] == DEPLOY
