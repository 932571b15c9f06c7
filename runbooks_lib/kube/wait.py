"""Waiting: conditions, phases and rollouts, by watch (``verify.wait``: one evidence record per wait),
always with a timeout and a message that says what was last seen (and the object's recent events)
when the time runs out."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import KubeTimeout
from .objects import ObjectRef
from .read import ReadOps, condition
from .status import CURRENT, IN_PROGRESS, Status
from .verify import Expectation, wait

Obj = dict[str, Any]
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


@dataclass
class RolloutResult:
    kind: str
    namespace: str
    name: str
    desired: int
    updated: int
    ready: int
    duration_s: float


def rollout_state(obj: Obj) -> tuple[bool, int, int, int, str]:
    """(done, desired, updated, ready, message) as `kubectl rollout status` judges a DaemonSet/Deployment."""
    meta, spec, st = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    gen, observed = int(meta.get("generation", 0)), int(st.get("observedGeneration", 0))
    if obj.get("kind") == "DaemonSet":
        desired = int(st.get("desiredNumberScheduled", 0))
        updated, ready = int(st.get("updatedNumberScheduled", 0)), int(st.get("numberAvailable", 0))
    else:
        desired = int(spec.get("replicas", 1))
        updated, ready = int(st.get("updatedReplicas", 0)), int(st.get("availableReplicas", 0))
        total = int(st.get("replicas", 0))
        if observed >= gen and updated == desired and total > updated:
            return False, desired, updated, ready, f"{total - updated} old replicas are pending termination"
    if observed < gen:
        return False, desired, updated, ready, "waiting for the rollout to be observed by its controller"
    if updated < desired:
        return False, desired, updated, ready, f"{updated} of {desired} updated"
    if ready < desired:
        return False, desired, updated, ready, f"{ready} of {desired} updated pods available"
    return True, desired, updated, ready, "rolled out"


class WaitOps(ReadOps):
    """wait_for / conditions / rollout restart and wait."""

    poll_interval: float = 0.25

    def wait_for(self, kind: str, name: str, namespace: str | None, check: Callable[[Obj | None], tuple[bool, str]],
                 *, what: str, timeout: float, api_version: str | None = None) -> Obj:
        """Watch until ``check(obj)`` says done (obj is None while absent): one evidence record for the
        whole wait (verify.wait). KubeTimeout after ``timeout`` s with the last state and the object's
        recent events; an API error (403, a server without watch) is raised as it came."""
        def judge(obj: Obj | None) -> Status:
            done, seen = check(obj)
            return Status(CURRENT if done and obj is not None else IN_PROGRESS, seen)

        result = wait(self, Expectation(ObjectRef(api_version or "", kind, name, namespace), what, judge), timeout)
        if result.error is not None:
            raise result.error
        if result.ok and result.object is not None:
            return result.object
        where = f"{namespace}/{name}" if namespace else name
        raise KubeTimeout(f"{kind} {where}: {what} did not happen within {timeout:g} s; last seen: "
                          f"{result.last_message}; recent events: {result.recent_events or 'no events'}")

    def wait_condition(self, kind: str, name: str, namespace: str | None, ctype: str, status: str = "True", *,
                       timeout: float = 120.0, api_version: str | None = None) -> Obj:
        def check(obj: Obj | None) -> tuple[bool, str]:
            if obj is None:
                return False, "absent"
            c = condition(obj, ctype)
            if c is None:
                return False, f"no {ctype} condition yet"
            seen = f"{ctype}={c.get('status')}" + (f" ({c.get('reason')}: {c.get('message')})"
                                                  if c.get("reason") else "")
            return c.get("status") == status, seen
        return self.wait_for(kind, name, namespace, check, what=f"condition {ctype}={status}", timeout=timeout,
                             api_version=api_version)

    def wait_pod_ready(self, name: str, namespace: str, *, timeout: float = 120.0) -> Obj:
        return self.wait_condition("Pod", name, namespace, "Ready", timeout=timeout)

    def wait_apiservice_available(self, name: str, *, timeout: float = 120.0) -> Obj:
        return self.wait_condition("APIService", name, None, "Available", timeout=timeout)

    def wait_pvc_bound(self, name: str, namespace: str, *, timeout: float = 120.0) -> Obj:
        def check(obj: Obj | None) -> tuple[bool, str]:
            phase = ((obj or {}).get("status") or {}).get("phase")
            return phase == "Bound", f"phase {phase or 'unset'}" if obj else "absent"
        return self.wait_for("PersistentVolumeClaim", name, namespace, check, what="Bound", timeout=timeout)

    def rollout_restart(self, kind: str, name: str, namespace: str, *, timeout: float = 300.0,
                        progress: bool = True) -> RolloutResult:
        """`kubectl rollout restart`: stamp the pod template, then wait for the rollout."""
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.request("PATCH", self.path_for(kind, name, namespace),
                     body={"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}},
                     content_type="application/strategic-merge-patch+json", query={"fieldManager": "runbooks"})
        return self.wait_rollout(kind, name, namespace, timeout=timeout, progress=progress)

    def wait_rollout(self, kind: str, name: str, namespace: str, *, timeout: float = 300.0,
                     progress: bool = True) -> RolloutResult:
        """Wait until a DaemonSet/Deployment is rolled out (tqdm progress: updated of desired)."""
        from tqdm.auto import tqdm

        t0 = time.monotonic()
        bar = tqdm(total=None, desc=f"{kind} {namespace}/{name}", unit="pod", disable=not progress, leave=True)
        try:
            def check(obj: Obj | None) -> tuple[bool, str]:
                if obj is None:
                    return False, "absent"
                done, desired, updated, ready, msg = rollout_state(obj)
                if bar.total != desired:
                    bar.total = desired
                bar.n = updated
                bar.set_postfix_str(msg, refresh=True)
                return done, msg
            obj = self.wait_for(kind, name, namespace, check, what="rollout", timeout=timeout)
        finally:
            bar.close()
        _, desired, updated, ready, _ = rollout_state(obj)
        return RolloutResult(kind, namespace, name, desired, updated, ready, round(time.monotonic() - t0, 2))
