"""Subresources besides ``status`` and ``exec``: ``/scale`` (Deployments, ReplicaSets, StatefulSets, as
``autoscaling/v1`` Scale), ``pods/log``, ``pods/eviction`` (``kubectl drain``) and
``certificatesigningrequests/approval``.

https://kubernetes.io/docs/reference/kubernetes-api/authentication-resources/certificate-signing-request-v1/
https://kubernetes.io/docs/tasks/run-application/scale-stateful-set/
"""

from __future__ import annotations

import copy
from typing import Any

from runbooks_lib.kube.paths import ResourceType

from .patches import json_patch, merge_patch
from .store import ApiError, Obj
from .wire import HandlerBase

SCALABLE = {"deployments", "replicasets", "statefulsets"}


def scale_doc(obj: Obj) -> Obj:
    meta = obj["metadata"]
    match = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in meta},
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in match.items())}}


class SubresourceMixin(HandlerBase):
    def _subresource(self, method: str, rt: ResourceType, parsed: Any, ctype: str, body: Any, manager: str,
                     dry: bool, params: dict[str, str]) -> int | None:
        """Answer ``scale``, ``log`` and ``approval``; None for other subresources (the caller's)."""
        st = self.double.store
        if parsed.sub == "scale" and rt.plural in SCALABLE:
            current = scale_doc(st.get(rt, parsed.namespace, parsed.name))
            if method == "GET":
                self._send(200, current)
                return 200
            if method == "PUT":
                wanted = self._require_obj(body)
            elif method == "PATCH" and "json-patch" in ctype:
                wanted = json_patch(current, body)
            elif method == "PATCH":
                wanted = merge_patch(current, self._require_obj(body))
            else:
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            replicas = (wanted.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise ApiError(422, "Invalid", f'Scale.autoscaling "{parsed.name}" is invalid: spec.replicas: Invalid '
                                               f"value: {replicas}: must be greater than or equal to 0")
            patch: Obj = {"spec": {"replicas": replicas}}
            rv = (wanted.get("metadata") or {}).get("resourceVersion")
            if rv and method == "PUT":
                patch["metadata"] = {"resourceVersion": rv}
            out = st.patch(rt, parsed.namespace, parsed.name, patch, "application/merge-patch+json", manager, dry)
            self._send(200, scale_doc(out))
            return 200
        if parsed.sub == "eviction" and rt.plural == "pods" and method == "POST":
            st.get(rt, parsed.namespace, parsed.name)  # 404 first, as for any missing pod
            st.delete(rt, parsed.namespace, parsed.name, dry)  # no PodDisruptionBudget is consulted
            self._send(201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
            return 201
        if parsed.sub == "log" and rt.plural == "pods" and method == "GET":
            return self._log(st.get(rt, parsed.namespace, parsed.name), params)
        if parsed.sub == "approval" and rt.plural == "certificatesigningrequests" and method in ("PUT", "PATCH"):
            old = st.get(rt, None, parsed.name)
            new = copy.deepcopy(old)
            conds = ((self._require_obj(body).get("status") or {}).get("conditions") or []) if method == "PUT" else \
                ((merge_patch(old, self._require_obj(body)).get("status") or {}).get("conditions") or [])
            types = {c.get("type") for c in conds}
            if {"Approved", "Denied"} <= types:
                raise ApiError(422, "Invalid", f'CertificateSigningRequest.certificates.k8s.io "{parsed.name}" is '
                                               "invalid: status.conditions: Invalid value: \"Approved\": Approved and "
                                               "Denied conditions are mutually exclusive")
            new.setdefault("status", {})["conditions"] = conds
            out = st.update(rt, None, parsed.name, new, manager, dry, status_only=True)
            self._send(200, out)
            return 200
        return None

    def _log(self, pod: Obj, params: dict[str, str]) -> int:
        """The lab's containers write nothing: 200 with an empty body for a running container (the
        errors a kubelet gives for a missing or waiting container otherwise)."""
        name = pod["metadata"]["name"]
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        want = params.get("container")
        if not want and len(containers) != 1:
            raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}, choose one of: "
                                              f"[{' '.join(str(c) for c in containers)}]")
        want = want or containers[0]
        if want not in containers:
            raise ApiError(400, "BadRequest", f"container {want} is not valid for pod {name}")
        status: Obj = next((c for c in (pod.get("status") or {}).get("containerStatuses") or [] if c.get("name") == want),
                      {})
        waiting = (status.get("state") or {}).get("waiting")
        if not (status.get("state") or {}).get("running") and not (status.get("state") or {}).get("terminated"):
            reason = (waiting or {}).get("reason", "ContainerCreating")
            raise ApiError(400, "BadRequest", f'container "{want}" in pod "{name}" is waiting to start: {reason}')
        self._send(200, b"", "text/plain")
        return 200
