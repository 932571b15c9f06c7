"""Watch on the API double, through the real ``kubernetes`` client's Watch.

https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import kubernetes
from kubernetes import watch


def _core(kubeconfig: Path) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(str(kubeconfig)))


def test_list_then_watch_sees_added_modified_deleted(api_double):
    kubeconfig, _url, _d = api_double
    core = _core(kubeconfig)
    rv = core.list_namespaced_config_map("default").metadata.resource_version

    def writes() -> None:
        time.sleep(0.2)
        core.create_namespaced_config_map("default", {"metadata": {"name": "w1"}, "data": {"a": "1"}})
        core.patch_namespaced_config_map("w1", "default", {"data": {"a": "2"}})
        core.delete_namespaced_config_map("w1", "default")

    t = threading.Thread(target=writes)
    t.start()
    seen = []
    for ev in watch.Watch().stream(core.list_namespaced_config_map, "default", resource_version=rv,
                                   timeout_seconds=3):
        seen.append((ev["type"], ev["object"].metadata.name, ev["object"].data))
        if ev["type"] == "DELETED":
            break
    t.join()
    assert seen == [("ADDED", "w1", {"a": "1"}), ("MODIFIED", "w1", {"a": "2"}), ("DELETED", "w1", {"a": "2"})]


def test_watch_without_version_starts_with_current_objects_and_honours_timeout(api_double):
    kubeconfig, _url, _d = api_double
    core = _core(kubeconfig)
    started = time.monotonic()
    events = list(watch.Watch().stream(core.list_namespace, timeout_seconds=1))
    took = time.monotonic() - started
    assert {e["type"] for e in events} == {"ADDED"}
    assert "kube-system" in {e["object"].metadata.name for e in events}
    assert 0.9 <= took < 3


def test_watch_label_selector_and_bookmarks(api_double):
    kubeconfig, _url, double = api_double
    double.bookmark_s = 0.3
    core = _core(kubeconfig)
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "other"}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "mine", "labels": {"app": "x"}}})
    resp = core.list_namespaced_config_map("default", watch=True, resource_version=rv, label_selector="app=x",
                                           allow_watch_bookmarks=True, timeout_seconds=1, _preload_content=False)
    lines = [json.loads(line) for line in resp.read().decode().splitlines() if line.strip()]
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in lines][0] == ("ADDED", "mine")
    assert "BOOKMARK" in {e["type"] for e in lines}


def test_too_old_resource_version_is_410_gone(api_double):
    kubeconfig, _url, double = api_double
    core = _core(kubeconfig)
    with double.store.lock:
        double.store.log = type(double.store.log)(double.store.log, maxlen=5)
    for i in range(8):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"c{i}"}})
    resp = core.list_namespaced_config_map("default", watch=True, resource_version="1001", timeout_seconds=1,
                                           _preload_content=False)
    body = resp.read().decode()
    assert '"type": "ERROR"' in body and '"code": 410' in body
