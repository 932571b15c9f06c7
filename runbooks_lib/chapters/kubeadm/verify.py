"""Verify through the cluster API (``kube.connect(run)``): /readyz?verbose, nodes registered, control-plane
pods, pending CSRs, NotReady nodes explained. Returns rows; chapter.py records them."""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from ...kube.errors import KubeApiError, KubeNotFound

Row = tuple[str, str, str, str]  # check, host, status, detail
NO_CNI = re.compile(r"No networks found|cni plugin not initialized|network plugin is not ready|NetworkPluginNotReady",
                    re.I)
CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


@dataclass
class Verified:
    rows: list[Row] = field(default_factory=list)
    registered: set[str] = field(default_factory=set)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    csrs: list[dict[str, Any]] = field(default_factory=list)
    target: str = ""


def parse_readyz(text: str) -> tuple[list[str], list[str]]:
    """(passed, failed) check names of ``/readyz?verbose``."""
    ok = re.findall(r"^\[\+\](\S+) ok", text, re.M)
    bad = re.findall(r"^\[-\](\S+) failed", text, re.M)
    return ok, bad


def explain_not_ready(message: str) -> str:
    if NO_CNI.search(message):
        return ("no CNI installed yet (kubelet: 'No networks found' / network plugin not ready): expected right "
                "after kubeadm init; chapter 04 installs Calico")
    return f"NotReady: {message or 'no message'}"


def serving_csr_matches(csr: dict[str, Any], nodes: dict[str, dict[str, Any]]) -> tuple[bool, str]:
    """A kubelet-serving CSR may be approved only when it comes from ``system:node:<name>`` of a registered
    node and asks for no SAN but that node's name and addresses (as chapter 05 needs)."""
    spec = csr.get("spec") or {}
    user = str(spec.get("username", ""))
    if not user.startswith("system:node:"):
        return False, f"requested by {user!r}, not a node"
    name = user.removeprefix("system:node:")
    node = nodes.get(name)
    if node is None:
        return False, f"node {name} is not registered"
    try:
        req = x509.load_pem_x509_csr(base64.b64decode(spec.get("request", "")))
        san = req.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound) as exc:
        return False, f"request unreadable or without SANs ({exc.__class__.__name__})"
    addrs = {a.get("address") for a in (node.get("status") or {}).get("addresses") or []}
    allowed_dns = {name} | {a for a in addrs if a and not _is_ip(a)}
    extra = [d for d in san.get_values_for_type(x509.DNSName) if d not in allowed_dns]
    extra += [str(i) for i in san.get_values_for_type(x509.IPAddress) if str(i) not in addrs]
    if extra:
        return False, f"asks for SANs that are not {name}'s: {', '.join(extra)}"
    return True, f"SANs are {name}'s own name and addresses"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def csr_rows(items: list[dict[str, Any]], nodes: dict[str, dict[str, Any]] | None = None) -> list[Row]:
    rows: list[Row] = []
    for c in items:
        name = (c.get("metadata") or {}).get("name", "?")
        spec, status = c.get("spec") or {}, c.get("status") or {}
        conds = {x.get("type") for x in status.get("conditions") or []}
        if conds & {"Approved", "Denied", "Failed"}:
            continue
        signer = spec.get("signerName", "")
        who = spec.get("username", "")
        hint = "kube-controller-manager approves kubelet client CSRs from bootstrap tokens"
        if signer == "kubernetes.io/kubelet-serving":
            ok, why = serving_csr_matches(c, nodes or {})
            hint = (f"kubelet serving CSR: {why}: " + ("approvable (`kubectl certificate approve`; chapter 05 "
                    "relies on it)" if ok else "never approve it"))
        rows.append(("csr.pending", name, "warn", f"{signer} from {who}: {hint}"))
    return rows


def verify(kc: Any, inventory: dict[str, str]) -> Verified:
    """Read the cluster through ``kc`` (a KubeClient) for the nodes in ``inventory`` (name -> address)."""
    out = Verified(target=kc.describe())
    text = kc.raw_get("/readyz?verbose")
    ok, bad = parse_readyz(str(text))
    out.rows.append(("api.readyz", "api", "fail" if bad or not ok else "pass",
                     f"failed: {', '.join(bad)}" if bad else f"{len(ok)} readiness checks ok"))
    nodes = kc.list_objects("Node")
    by_name = {(n.get("metadata") or {}).get("name"): n for n in nodes}
    out.registered = {str(k) for k in by_name}
    for host in inventory:
        node = by_name.get(host)
        if node is None:
            out.rows.append(("node.registered", host, "drift", "not registered: apply joins it"))
            continue
        conds = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []}
        ready = conds.get("Ready") or {}
        version = ((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "?")
        out.nodes.append({"node": host, "ready": ready.get("status"), "kubelet": version})
        if ready.get("status") == "True":
            out.rows.append(("node.ready", host, "pass", f"Ready (kubelet {version})"))
        else:
            msg = str(ready.get("message") or "")
            out.rows.append(("node.ready", host, "warn" if NO_CNI.search(msg) else "fail", explain_not_ready(msg)))
    extra = sorted(out.registered - set(inventory))
    if extra:
        out.rows.append(("node.registered", "api", "info", f"registered but not in the inventory: {', '.join(extra)}"))
    pods = kc.list_objects("Pod", "kube-system", label_selector="tier=control-plane")
    not_running = [(p.get("metadata") or {}).get("name") for p in pods
                   if (p.get("status") or {}).get("phase") != "Running"]
    if not pods and kc.target.is_double:
        out.rows.append(("pods.control_plane", "api", "n/a in lab", "the lab's API server models no static "
                         "control-plane pods (kube-apiserver, etcd, ... run as kubelet static pods on a real cluster)"))
    else:
        out.rows.append(("pods.control_plane", "api", "fail" if not_running or not pods else "pass",
                         f"not Running: {', '.join(map(str, not_running))}" if not_running else
                         (f"{len(pods)} control-plane pods Running" if pods else "no control-plane pods found")))
    try:
        doc = kc.raw_get(CSR_PATH)
        out.csrs = list(doc.get("items") or []) if isinstance(doc, dict) else []
        rows = csr_rows(out.csrs, {str(k): v for k, v in by_name.items()})
        out.rows += rows or [("csr.pending", "api", "pass", f"no pending CSRs ({len(out.csrs)} in total)")]
    except KubeNotFound:
        out.rows.append(("csr.pending", "api", "n/a in lab" if kc.target.is_double else "fail",
                         "the API server does not serve certificates.k8s.io/v1 (the lab's API server does not "
                         "model CSRs; a real kube-apiserver always does)"))
    except KubeApiError as exc:
        out.rows.append(("csr.pending", "api", "error", f"listing CSRs failed: {exc}"))
    return out
