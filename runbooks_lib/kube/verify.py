"""Expectations about the cluster, waited by WATCH, each giving one evidence record and one result.

    exps = [verify.rollout_complete("Deployment", "web", "demo"),
            verify.apiservice_available("v1beta1.metrics.k8s.io"),
            verify.status_field("Widget", "w1", "demo", "status.phase", "Ready", api_version="example.com/v1"),
            verify.pods_ready("kube-system", "k8s-app=kube-proxy", node="w1", replacing={old_uid})]
    for r in verify.wait_all(kc, exps, timeout=120):
        r.check(run)                                  # one check per expectation

A wait lists the one object (fieldSelector metadata.name=NAME) to get its state and the list's
resourceVersion, then watches from that resourceVersion with timeoutSeconds set to the time left,
judging every event, and re-lists after "410 Gone". The requests of a wait are not recorded one
by one: the wait is ONE evidence record (first and last state, duration, timeout, event and request
counts, and the object's recent events when it did not happen). A server that does not serve watch
is an error result, never a silent fallback to polling. An expectation about the pods matching a
selector (:func:`pods_ready`) lists and watches by labelSelector/fieldSelector instead, keeping the
set by uid and judging all of it at each event; it is still one record. (The first wait on a custom resource's
group/version adds the one recorded discovery request that finds its resource name.)
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.watch import Watch

from ..evidence import utc_now
from ..transport.base import TargetUnreachable
from .core import KubeCore
from .errors import KubeApiError, KubeError
from .objects import ObjectRef
from .podexec import ExecOps
from .status import CURRENT, FAILED, IN_PROGRESS, NOT_FOUND, Status, compute, cond

Obj = dict[str, Any]
Judge = Callable[[Any], Status]  # the object (or None), or for a selector expectation the list of objects


@dataclass(frozen=True)
class Expectation:
    """Something that should become true of one object (or, with a selector, of the objects matching
    it: ``ref.name`` is then the selector text): ``judge`` says current / in_progress / failed."""

    ref: ObjectRef
    what: str
    judge: Judge = field(compare=False)
    fail_fast: bool = False
    label_selector: str | None = None
    field_selector: str | None = None

    @property
    def by_selector(self) -> bool:
        return self.label_selector is not None or self.field_selector is not None


@dataclass(frozen=True)
class ExecExpectation:
    """A command run in a pod should exit with ``exit_code`` (one exec, recorded as one command)."""

    pod: str
    namespace: str
    command: list[str]
    exit_code: int = 0
    container: str | None = None
    what: str = ""


@dataclass
class VerifyResult:
    """The outcome of one expectation: one evidence record, one check."""

    what: str
    ref: str
    ok: bool
    status: str  # "pass", "fail" or "error"
    first: str
    last: str
    duration_s: float
    timeout_s: float
    events: int = 0
    last_message: str = ""
    recent_events: str = ""
    object: Obj | None = field(default=None, repr=False)
    error: KubeError | None = field(default=None, repr=False)

    @property
    def detail(self) -> str:
        took = f"after {self.duration_s:.1f} s" if self.ok else f"not within {self.timeout_s:g} s"
        return f"{self.last} ({took}; first seen: {self.first})"

    def check(self, run: Any) -> Any:
        """Record this result as the run's one check for it."""
        return run.check(self.what, self.ref, self.status, self.detail)


def _ref(kind: str, name: str, namespace: str | None, api_version: str | None) -> ObjectRef:
    return ObjectRef(api_version or "", kind, name, namespace)


def current(kind: str, name: str, namespace: str | None = None, *, api_version: str | None = None,
            min_generation: int = 0) -> Expectation:
    """kstatus Current (per-kind rules, generation gate)."""
    return Expectation(_ref(kind, name, namespace, api_version), f"{kind} {name} current",
                       lambda o: compute(o, min_generation))


def rollout_complete(kind: str, name: str, namespace: str, *, min_generation: int = 0) -> Expectation:
    """A Deployment/DaemonSet/StatefulSet rolled out (observedGeneration, updated, available)."""
    return Expectation(_ref(kind, name, namespace, None), f"{kind} {namespace}/{name} rolled out",
                       lambda o: compute(o, min_generation))


def condition_true(kind: str, name: str, namespace: str | None, ctype: str, status: str = "True", *,
                   api_version: str | None = None) -> Expectation:
    def judge(obj: Obj | None) -> Status:
        if obj is None:
            return Status(NOT_FOUND, "not found")
        c = cond(obj, ctype)
        if c is None:
            return Status(IN_PROGRESS, f"no {ctype} condition yet")
        seen = f"{ctype}={c.get('status')}" + (f" ({c.get('reason')}: {c.get('message', '')})" if c.get("reason") else "")
        return Status(CURRENT if c.get("status") == status else IN_PROGRESS, seen)
    return Expectation(_ref(kind, name, namespace, api_version), f"{kind} {name} {ctype}={status}", judge)


def apiservice_available(name: str) -> Expectation:
    exp = condition_true("APIService", name, None, "Available")
    return Expectation(exp.ref, f"APIService {name} Available", exp.judge)


def pvc_bound(name: str, namespace: str) -> Expectation:
    return Expectation(_ref("PersistentVolumeClaim", name, namespace, None), f"PVC {namespace}/{name} Bound",
                       compute)


def established(name: str) -> Expectation:
    return Expectation(_ref("CustomResourceDefinition", name, None, None), f"CRD {name} Established", compute,
                       fail_fast=True)


def status_field(kind: str, name: str, namespace: str | None, path: str, expected: Any, *,
                 api_version: str | None = None) -> Expectation:
    """A dotted field (``status.phase``) equals ``expected``."""
    def judge(obj: Obj | None) -> Status:
        if obj is None:
            return Status(NOT_FOUND, "not found")
        value: Any = obj
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return Status(CURRENT if value == expected else IN_PROGRESS, f"{path}={value!r}")
    return Expectation(_ref(kind, name, namespace, api_version), f"{kind} {name} {path}={expected!r}", judge)


def _ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def pods_ready(namespace: str, label_selector: str, *, node: str | None = None, count: int = 1,
               replacing: set[str] | frozenset[str] = frozenset(), revision: str | None = None) -> Expectation:
    """At least ``count`` pods match the selector (on ``node`` when given) and all are Ready; none of
    the pods being ``replacing`` (uids) is left; with ``revision``, every pod carries it as its
    controller-revision-hash or pod-template-generation label (a DaemonSet's new template)."""
    field_selector = f"spec.nodeName={node}" if node else None

    def judge(pods: list[Obj]) -> Status:
        old = sorted(p["metadata"]["name"] for p in pods if p["metadata"].get("uid") in replacing)
        stale = sorted(p["metadata"]["name"] for p in pods if revision and revision not in (
            (p["metadata"].get("labels") or {}).get("controller-revision-hash"),
            (p["metadata"].get("labels") or {}).get("pod-template-generation")))
        fresh = [p for p in pods if p["metadata"].get("uid") not in replacing]
        seen = ", ".join(f"{p['metadata']['name']} {(p.get('status') or {}).get('phase', 'Pending')}"
                         f"{' Ready' if _ready(p) else ''}" for p in fresh) or "no new pod yet"
        if old or stale:
            return Status(IN_PROGRESS, f"{seen}; still there: {', '.join(old + stale)}")
        done = len(fresh) >= count and all(_ready(p) for p in fresh)
        return Status(CURRENT if done else IN_PROGRESS, seen)
    where = f" on {node}" if node else ""
    sel = ",".join(x for x in (label_selector, field_selector) if x)
    return Expectation(ObjectRef("v1", "Pod", sel, namespace), f"pods {label_selector}{where} Ready"
                       + (" (replacements)" if replacing else ""), judge, label_selector=label_selector,
                       field_selector=field_selector)


def exec_exit_code(pod: str, namespace: str, command: list[str], exit_code: int = 0, *,
                   container: str | None = None, what: str = "") -> ExecExpectation:
    return ExecExpectation(pod, namespace, list(command), exit_code, container,
                           what or f"exec in {namespace}/{pod} exits {exit_code}")


# -- the wait

def _raw(kc: KubeCore, path: str, query: list[tuple[str, Any]], timeout: Any) -> Any:
    """One unrecorded GET (the wait records itself once); the urllib3 response, unread."""
    method, url, headers, _, _ = kc.api.param_serialize("GET", path, query_params=query,
                                                         header_params={"Accept": "application/json"},
                                                         auth_settings=["BearerToken"])
    if query and "?" not in url:
        url += "?" + urlencode(query)
    try:
        resp = ApiClient.call_api(kc.api, method, url, headers, None, None, _request_timeout=timeout)
    except (urllib3.exceptions.HTTPError, ApiException) as exc:
        raise TargetUnreachable(kc.target.name, f"cannot reach the API server {kc.target.server}: {exc}") from exc
    raw = resp.response
    if raw.status >= 400:
        body = raw.data or b""
        try:
            data: Any = json.loads(body)
        except ValueError:
            data = body.decode("utf-8", "replace")
        raise kc._error("GET", path, "", raw.status, data, query)
    return raw


class _Watcher:
    """List + watch one object until the expectation holds or the deadline passes."""

    def __init__(self, kc: KubeCore, exp: Expectation, timeout: float) -> None:
        self.kc, self.exp, self.timeout = kc, exp, timeout
        ref = exp.ref
        self.rt = kc.resource(ref.kind, ref.api_version or None)
        self.base = self.rt.base(ref.namespace if self.rt.namespaced else None)
        self.selector = [("fieldSelector", f"metadata.name={ref.name}")] if not exp.by_selector else [
            (k, v) for k, v in (("labelSelector", exp.label_selector), ("fieldSelector", exp.field_selector)) if v]
        self.seen: dict[str, Obj] = {}  # uid -> object, for a selector expectation
        self.events = self.requests = 0
        self.deadline = time.monotonic() + timeout
        self.rv = ""
        self._conn: Any = None
        self.last_obj: Obj | None = None

    def _list(self) -> Status:
        raw = _raw(self.kc, self.base, self.selector, self.kc.request_timeout)
        self.requests += 1
        doc = json.loads(raw.data or b"{}")
        self.rv = str((doc.get("metadata") or {}).get("resourceVersion", ""))
        items = doc.get("items") or []
        for item in items:  # list items carry no kind/apiVersion on a real server
            item.setdefault("kind", self.rt.kind)
            item.setdefault("apiVersion", self.rt.api_version)
        self.seen = {str(i["metadata"].get("uid", i["metadata"].get("name"))): i for i in items}
        self.last_obj = items[0] if items else None
        return self._judge()

    def _judge(self) -> Status:
        return self.exp.judge(list(self.seen.values()) if self.exp.by_selector else self.last_obj)

    def _event(self, etype: str, obj: Obj) -> Status:
        key = str(obj["metadata"].get("uid", obj["metadata"].get("name")))
        if etype == "DELETED":
            self.seen.pop(key, None)
        else:
            self.seen[key] = obj
        self.last_obj = None if etype == "DELETED" else obj
        return self._judge()

    def _watch_fn(self, **kw: Any) -> Any:
        query = [*self.selector, ("watch", "true"), ("allowWatchBookmarks", "true"),
                 ("resourceVersion", kw.get("resource_version") or self.rv),
                 ("timeoutSeconds", kw["timeout_seconds"])]
        self.requests += 1
        raw = _raw(self.kc, self.base, query, (10.0, max(self.deadline - time.monotonic(), 0.1) + 1.0))
        self._conn = raw.connection
        return raw

    def run(self, deadline: float) -> tuple[Status, Status]:
        self.deadline = deadline
        first = last = self._list()
        while not self._finished(last) and time.monotonic() < deadline:
            left = max(1, math.ceil(deadline - time.monotonic()))
            w = Watch()
            try:
                for event in w.stream(self._watch_fn, resource_version=self.rv, timeout_seconds=left):
                    if event["type"] == "BOOKMARK":
                        continue
                    self.events += 1
                    obj = event["raw_object"]
                    self.rv = str((obj.get("metadata") or {}).get("resourceVersion", self.rv))
                    last = self._event(event["type"], obj)
                    if self._finished(last) or time.monotonic() >= deadline:
                        w.stop()
                        break
            except ApiException as exc:
                if exc.status != 410:  # an ERROR event: 410 Gone means the resourceVersion is too old
                    raise KubeApiError(f"watch {self.rt.plural} failed: {exc.reason}", code=exc.status or 0,
                                       verb="watch", resource=self.rt.plural, name=self.exp.ref.name) from exc
                last = self._list()
            except urllib3.exceptions.ReadTimeoutError:
                continue  # the server kept the stream open past timeoutSeconds: the loop re-checks the deadline
            except urllib3.exceptions.ProtocolError:
                last = self._list()  # the stream broke (server restart, proxy): read the state again, watch on
            finally:  # a finished watch's connection is not reused (a server may close it after the last chunk)
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
        return first, last

    def _finished(self, s: Status) -> bool:
        return s.status == CURRENT or (self.exp.fail_fast and s.status == FAILED)

    def recent_events(self) -> str:
        ref = self.exp.ref
        ns = ref.namespace or "default"
        names = sorted(o["metadata"]["name"] for o in self.seen.values()) if self.exp.by_selector else [ref.name]
        if not names:
            return "no object matched"
        try:
            raw = _raw(self.kc, f"/api/v1/namespaces/{ns}/events",
                       [("fieldSelector", f"involvedObject.kind={ref.kind},involvedObject.name={names[-1]}")],
                       self.kc.request_timeout)
        except KubeError:
            return "events not readable"
        items = json.loads(raw.data or b"{}").get("items") or []
        items.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        return "; ".join(f"{e.get('type')} {e.get('reason')}: {e.get('message')}" for e in items[-5:]) or "no events"


def wait(kc: KubeCore, exp: Expectation | ExecExpectation, timeout: float = 120.0) -> VerifyResult:
    """Wait for one expectation (by watch); one evidence record; never raises for "did not happen"
    or an API error (TargetUnreachable still propagates: exit 3)."""
    if isinstance(exp, ExecExpectation):
        return _exec(kc, exp, timeout)
    started, t0 = utc_now(), time.monotonic()
    ref = exp.ref
    where = f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name
    first = last = Status(IN_PROGRESS, "not read yet")
    error = tail = ""
    failure: KubeError | None = None
    watcher: _Watcher | None = None
    try:
        watcher = _Watcher(kc, exp, timeout)
        first, last = watcher.run(t0 + timeout)
    except KubeError as exc:
        error, failure = str(exc), exc
    ok = not error and last.status == CURRENT
    if not ok and not error and watcher is not None:
        tail = watcher.recent_events()
    duration = time.monotonic() - t0
    status = "error" if error else ("pass" if ok else "fail")
    rec_status = {"pass": "ok", "fail": "timeout" if last.status != FAILED else "failed", "error": "error"}[status]
    plural = watcher.rt.plural if watcher else ref.kind.lower()
    kc.recorder.record(
        kind="api", target=kc.target.name, command=f"watch {plural} {where} until {exp.what}",
        exit_code=0 if ok else 1, stdout=f"first: {first.status}: {first.message}\nlast: {last.status}: {last.message}",
        stderr=error or (f"recent events: {tail}" if tail else ""), duration_s=duration, started_utc=started,
        status=rec_status,
        extra={"verb": "watch", "resource": plural, "namespace": ref.namespace, "name": ref.name, "what": exp.what,
               "first": first.status, "last": last.status, "timeout_s": timeout,
               "events": watcher.events if watcher else 0, "requests": watcher.requests if watcher else 0,
               "resource_version": watcher.rv if watcher else ""})
    last_text = f"error: {error}" if error else f"{last.status}: {last.message}"
    return VerifyResult(exp.what, str(ref), ok, status, f"{first.status}: {first.message}", last_text,
                        round(duration, 3), timeout, watcher.events if watcher else 0, last.message, tail,
                        watcher.last_obj if watcher else None, failure)


def _exec(kc: KubeCore, exp: ExecExpectation, timeout: float) -> VerifyResult:
    if not isinstance(kc, ExecOps):
        raise KubeError("exec expectations need a KubeClient")
    res = kc.exec(exp.pod, exp.namespace, exp.command, container=exp.container, timeout=timeout)
    ok = not res.timed_out and res.exit_code == exp.exit_code
    seen = "timed out" if res.timed_out else f"exit {res.exit_code}"
    return VerifyResult(exp.what, f"pod {exp.namespace}/{exp.pod}", ok, "pass" if ok else "fail", seen,
                        f"{seen} (wanted {exp.exit_code}): {(res.stderr or res.stdout).strip()[-200:]}",
                        res.duration_s, timeout)


def wait_all(kc: KubeCore, exps: Sequence[Expectation | ExecExpectation],
             timeout: float = 120.0) -> list[VerifyResult]:
    """Each expectation in turn, each with its own ``timeout``; one result (and record) each."""
    return [wait(kc, e, timeout) for e in exps]
