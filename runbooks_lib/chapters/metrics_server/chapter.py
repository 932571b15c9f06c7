"""Chapter 05 metrics-server: the steps the notebook calls. The only module that records checks and figures.

plan (read-only): compatibility and arguments of what is installed and of the operator's manifest, the
secure-mode decision, both TLS legs (each node's kubelet serving certificate and serverTLSBootstrap over
SSH, pending kubelet-serving CSRs, the APIService's TLS, the aggregation flags on control planes), the
object plan of the manifest, and verification through the API (APIService, Metrics API, top, HPAs).
apply: the objects through the objects layer (:mod:`.actions`), CSR approval (only matching ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from ... import kube
from ...kube import KubeClient, KubeError
from ...kube import plan as kplan
from ...transport.base import TargetUnreachable, Transport
from ..system_init.labproof import lab_known_hosts, missing_proof
from . import actions, compat, desired, metrics, nodes, probe, tls
from .desired import Desired
from .nodes import NodeFiles
from .settings import Settings

if TYPE_CHECKING:
    from ...run import Run

CLUSTER = "cluster"
APISERVICE = "v1beta1.metrics.k8s.io"
CSR_API = "certificates.k8s.io/v1"
LAB_METRICS = ("the lab's API server answers the Metrics API with values it seeds itself (no kubelet and no "
               "metrics-server process run in the lab): not evidence of real metrics")


@dataclass
class Cluster:
    kc: KubeClient | None
    settings: Settings
    error: str = ""
    version: str = ""
    lab: bool = False                      # the target is the lab's API server
    nodes: list[Any] = field(default_factory=list)   # raw Node objects
    deployment: dict[str, Any] | None = None
    apiservice: dict[str, Any] | None = None
    desired: Desired | None = None
    node_files: dict[str, NodeFiles] = field(default_factory=dict)  # node name -> files
    lab_nodes: set[str] = field(default_factory=set)                      # node names proven lab nodes

    def internal_ip(self, node: str) -> str | None:
        for n in self.nodes:
            if n["metadata"]["name"] == node:
                return next((a["address"] for a in (n.get("status") or {}).get("addresses") or []
                             if a.get("type") == "InternalIP"), None)
        return None

    def node_names(self) -> dict[str, list[str]]:
        """node -> its names and addresses (Node status addresses and its name)."""
        return {n["metadata"]["name"]: [n["metadata"]["name"], *(a["address"] for a in
                                                                   (n.get("status") or {}).get("addresses") or [])]
                for n in self.nodes}


def connect(run: Run) -> Cluster:
    """Read the cluster once: version, nodes, the Deployment and the APIService; errors recorded."""
    s: Settings = run.params.metrics_server
    cl = Cluster(None, s)
    try:
        kc = kube.connect(run)
    except (KubeError, TargetUnreachable, OSError) as exc:
        cl.error = str(exc)
        run.check("api.reach", CLUSTER, "unreachable", f"cluster API not reachable: {exc}")
        return cl
    cl.kc, cl.version, cl.lab = kc, kc.version.get("gitVersion", ""), kc.target.is_double
    with run.guarded("cluster.read", CLUSTER):
        cl.nodes = kc.list_objects("Node")
        cl.deployment = kc.get_or_none("Deployment", s.deployment, s.namespace)
        cl.apiservice = kc.get_or_none("APIService", APISERVICE)
    return cl


def load_desired(run: Run, cl: Cluster) -> Desired | None:
    """The operator's manifest, patched (None without one: an info check says so)."""
    s = cl.settings
    with run.guarded("manifest.load", "runner"):
        cl.desired = desired.load(s, cl.version or run.params.kubernetes_version)
        if cl.desired is None:
            run.check("manifest.load", "runner", "info", "no manifest given (metrics_server.manifest or manifest_url "
                      "+ manifest_sha256): the installed metrics-server is audited, nothing would be installed")
        else:
            d = cl.desired
            run.check("manifest.load", "runner", "pass", f"{len(d.objects)} objects from {d.origin}; image {d.image}; "
                      f"args {' '.join(d.args)}" + "".join(f"; {n}" for n in d.notes))
    return cl.desired


def compatibility(run: Run, cl: Cluster) -> pd.DataFrame:
    """Installed and desired versions against the server's (README compatibility matrix)."""
    server = compat.server_minor(cl.version)
    rows = []
    inst = desired.installed(cl.deployment)
    for what, image in (("installed", inst.image if inst else None), ("manifest", cl.desired.image if cl.desired else None)):
        if image is None:
            if what == "installed":
                run.check("compat.installed", CLUSTER, "drift" if cl.desired else "info",
                          "metrics-server is not installed" + (": apply installs it from the manifest" if cl.desired
                                                               else " and no manifest is given"))
            continue
        status, detail = compat.compatibility(compat.image_version(image), server)
        run.check(f"compat.{what}", CLUSTER, status, f"{image}: {detail}")
        rows.append({"what": what, "image": image, "kubernetes": cl.version, "status": status})
    return pd.DataFrame(rows, columns=["what", "image", "kubernetes", "status"])


def audit_args(run: Run, cl: Cluster) -> pd.DataFrame:
    """Installed arguments against the manifest's (or upstream's) defaults: missing, replaced, added."""
    inst = desired.installed(cl.deployment)
    if inst is None:
        return pd.DataFrame(columns=["arg", "state", "why"])
    defaults = cl.desired.manifest_args if cl.desired else compat.UPSTREAM_ARGS
    source = f"the manifest {cl.desired.origin}" if cl.desired else "upstream manifests/base/deployment.yaml"
    d = compat.diff_args([a for a in defaults if a != compat.INSECURE], inst.args)
    rows = [{"arg": a, "state": "missing", "why": compat.WHY_MISSING.get(a.split("=")[0], "")} for a in d.missing]
    rows += [{"arg": f"{new} (default {old})", "state": "replaced", "why": ""} for old, new in d.replaced]
    rows += [{"arg": a, "state": "added", "why": "testing only: kubelet certificates not verified"
              if a == compat.INSECURE else ""} for a in d.added]
    run.check("args.defaults", CLUSTER, "pass" if not (d.missing or d.replaced) else "warn",
              f"as in {source}" if d.same else
              f"against {source}: missing {d.missing or '-'}; replaced {d.replaced or '-'}; added {d.added or '-'}")
    if compat.INSECURE in inst.args and not cl.settings.kubelet_insecure_tls:
        run.check("args.insecure", CLUSTER, "drift" if cl.desired else "warn",
                  f"installed with {compat.INSECURE} but kubelet_insecure_tls is false" +
                  (": apply removes it (secure mode)" if cl.desired else ": secure mode is not in effect"))
    return pd.DataFrame(rows, columns=["arg", "state", "why"])


def tls_decision(run: Run) -> str:
    """Secure mode unless the parameter asks otherwise; the insecure choice is a warn on every run."""
    if run.params.metrics_server.kubelet_insecure_tls:
        text = (f"INSECURE (testing only): {compat.INSECURE} — metrics-server accepts any certificate a kubelet "
                "(or anything answering on a node's 10250) presents; set kubelet_insecure_tls: false for secure mode")
        run.check("tls.mode", CLUSTER, "warn", text)
    else:
        text = ("secure: metrics-server verifies each kubelet's serving certificate against the cluster CA (kubelets "
                "need serverTLSBootstrap and approved kubelet-serving CSRs); no --kubelet-insecure-tls")
        run.check("tls.mode", CLUSTER, "info", text)
    return text


def _host_of(run: Run, node: str, ip: str | None) -> str | None:
    for h in run.params.selected_hosts():
        if h.name == node or (ip and h.address == ip):
            return h.name
    return None


def gather_nodes(run: Run, cl: Cluster) -> None:
    """Each node's kubelet and apiserver files over SSH (one round trip per node, in parallel)."""
    by_host = {}
    for n in cl.nodes:
        name = n["metadata"]["name"]
        host = _host_of(run, name, cl.internal_ip(name))
        if host is None:
            run.check("node.ssh", name, "warn", "no inventory host for this node: its kubelet certificate is not read")
        else:
            by_host[host] = name

    def one(t: Transport) -> tuple[nodes.NodeFiles, str]:
        return nodes.gather(t), t.run("hostname", display="hostname").stdout.strip()

    for host, outcome in run.fleet().map(one, timeout=120, hosts=list(by_host)).items():
        if outcome.value is None:
            run.check("node.ssh", host, "unreachable" if outcome.unreachable else "error", outcome.error or "")
            continue
        files, hostname = outcome.value
        node = by_host[host]
        cl.node_files[node] = files
        if not missing_proof(files.lab, hostname, lab_known_hosts):
            cl.lab_nodes.add(node)


def kubelet_leg(run: Run, cl: Cluster) -> pd.DataFrame:
    """Leg A per node: the serving certificate kubelet presents and serverTLSBootstrap, from real files."""
    insecure = cl.settings.kubelet_insecure_tls
    rows = []
    for node, f in cl.node_files.items():
        ip = cl.internal_ip(node)
        cert = f.cert()
        bootstrap = tls.server_tls_bootstrap(f.files.get(tls.KUBELET_CONFIG))
        if f.kubelet is None and cert is None and node in cl.lab_nodes:
            status, detail = "n/a in lab", ("kubelet is not installed in the lab (no Kubernetes package repository "
                                            "reachable): no serving certificate or kubelet config to read")
        elif cert is None and f.kubelet is None:
            status, detail = "fail", "kubelet not installed and no serving certificate: metrics-server cannot scrape it"
        else:
            leg = tls.judge_kubelet(ip, bootstrap, cert, insecure)
            status, detail = leg.status, leg.detail
        run.check("tls.kubelet", node, status, detail)
        rows.append({"node": node, "InternalIP": ip, "certificate": cert.path if cert else None,
                     "self_signed": cert.self_signed if cert else None,
                     "ip_sans": ", ".join(cert.ip_sans) if cert else None,
                     "serverTLSBootstrap": bootstrap, "status": status})
    return pd.DataFrame(rows, columns=["node", "InternalIP", "certificate", "self_signed", "ip_sans",
                                       "serverTLSBootstrap", "status"])


def aggregation(run: Run, cl: Cluster) -> None:
    """The kube-apiserver manifest's aggregation flags, on every control plane read."""
    inst = desired.installed(cl.deployment)
    replicas = inst.replicas if inst else (cl.desired.replicas if cl.desired else 1)
    cps = {n["metadata"]["name"] for n in cl.nodes if "node-role.kubernetes.io/control-plane" in n["metadata"].get(
        "labels", {})}
    for node in sorted(cps & set(cl.node_files)):
        flags = tls.apiserver_flags(cl.node_files[node].files.get(tls.APISERVER_MANIFEST))
        if flags is None:
            lab = node in cl.lab_nodes and cl.lab
            run.check("aggregation.flags", node, "n/a in lab" if lab else "fail",
                      f"no {tls.APISERVER_MANIFEST}" + (": the lab's API server is the project's own, not a static pod"
                                                        if lab else " (not a kubeadm control plane?)"))
            continue
        for check, status, detail in tls.judge_aggregation(flags, replicas):
            run.check(check, node, status, detail)


def csr_list(cl: Cluster) -> list[dict[str, Any]]:
    assert cl.kc is not None
    return [o for o in cl.kc.list_objects("CertificateSigningRequest", api_version=CSR_API)
            if (o.get("spec") or {}).get("signerName") == tls.SIGNER and tls.pending(o)]


def pending_csrs(run: Run, cl: Cluster) -> list[tls.CsrDecision]:
    """Pending kubernetes.io/kubelet-serving CSRs, each with what apply would do (approve or list)."""
    if cl.kc is None:
        return []
    try:
        pend = csr_list(cl)
    except KubeError as exc:
        status = "n/a in lab" if cl.lab else "error"
        run.check("csr.pending", CLUSTER, status, f"CertificateSigningRequests cannot be listed: {exc}" +
                  (" (the lab's API server does not serve certificates.k8s.io)" if cl.lab else ""))
        return []
    decisions = [tls.decide_csr(o, cl.node_names()) for o in pend]
    for d in decisions:
        run.check("csr.pending", d.node, "drift" if d.approve else "warn",
                  f"{d.name}: " + ("apply approves it: " if d.approve else "never approved: ") + d.reason)
    if not decisions:
        run.check("csr.pending", CLUSTER, "pass", "no pending kubelet-serving CSR")
    return decisions


def apiservice_leg(run: Run, cl: Cluster) -> None:
    status, detail = tls.judge_apiservice(cl.apiservice)
    run.check("tls.apiservice", CLUSTER, status, detail)


def plan_objects(run: Run, cl: Cluster) -> kplan.Plan | None:
    """The manifest's objects planned by server-side dry run (one check per object)."""
    if cl.kc is None or cl.desired is None:
        return None
    p: kplan.Plan | None = None
    with run.guarded("objects.plan", CLUSTER):
        p = kplan.plan(cl.kc, cl.desired.objects)
        p.record(run)
    return p


# --- apply ------------------------------------------------------------------------------------------

def objects(run: Run, cl: Cluster) -> kplan.Plan | None:
    """Plan the manifest's objects (server-side dry run); in apply mode apply what changed, then record
    one check per object (a second apply: every object "no change")."""
    if cl.kc is None or cl.desired is None:
        run.check("objects", CLUSTER, "info", "no manifest: no objects to plan")
        return None
    p: kplan.Plan | None = None
    with run.guarded("objects", CLUSTER):
        p = kplan.plan(cl.kc, cl.desired.objects)
        if run.params.mode == "apply" and not any(c.action in ("conflict", "error") for c in p.changes):
            p = kplan.apply(cl.kc, p, confirmed=run.params.confirmed)
            cl.deployment = cl.kc.get_or_none("Deployment", cl.settings.deployment, cl.settings.namespace)
            cl.apiservice = cl.kc.get_or_none("APIService", APISERVICE)
        p.record(run)
        run.figure("objects", p.summary())
    return p


def approve_csrs(run: Run, cl: Cluster, decisions: list[tls.CsrDecision]) -> int:
    """Apply: approve the kubelet-serving CSRs whose requestor and SANs match their node; the others stay."""
    if run.params.mode != "apply" or cl.kc is None:
        return 0
    done = 0
    for d in decisions:
        if not d.approve:
            continue
        with run.guarded("csr.approve", d.node):
            actions.approve(cl.kc, d.name, d.reason)
            run.check("csr.approve", d.node, "changed", f"{d.name} approved: {d.reason}")
            done += 1
    return done


def server_tls_bootstrap(run: Run, cl: Cluster) -> None:
    """Secure mode: serverTLSBootstrap in the kubelet-config ConfigMap (apply) and in each node's config,
    kubelet restarted node by node and waited Ready (apply + confirm)."""
    s = cl.settings
    if s.kubelet_insecure_tls or not s.server_tls_bootstrap or cl.kc is None:
        return
    with run.guarded("kubelet_config.configmap", CLUSTER):
        change = actions.configmap_bootstrap(cl.kc, dry_run=run.params.mode != "apply")
        if change is None:
            run.check("kubelet_config.configmap", CLUSTER, "n/a in lab" if cl.lab else "warn",
                      "no ConfigMap kube-system/kubelet-config" + (" (the lab has no kubeadm-made kubelet config)"
                                                                   if cl.lab else " (not a kubeadm cluster?)"))
        else:
            status = "pass" if not change.changed else ("changed" if not change.dry_run else "drift")
            run.check("kubelet_config.configmap", CLUSTER, status, "serverTLSBootstrap: true " +
                      ("already set" if not change.changed else "set" if not change.dry_run else "would be set"))
    pending = [n for n, f in cl.node_files.items()
               if f.files.get(tls.KUBELET_CONFIG) and not tls.server_tls_bootstrap(f.files[tls.KUBELET_CONFIG])]
    if pending and run.params.mode == "apply" and not run.params.confirmed:
        for node in pending:
            run.check("kubelet_config.node", node, "drift", "serverTLSBootstrap would be enabled and kubelet restarted: "
                      f"needs confirm={run.params.cluster_name}")
        return
    if run.params.mode != "apply":
        return
    fleet = run.fleet()
    for node in pending:  # one node at a time: the next only after this one's kubelet is Ready again
        host = _host_of(run, node, cl.internal_ip(node))
        if host is None:
            continue
        with run.guarded("kubelet_config.node", node):
            text = actions.enable_bootstrap(fleet.transports[host], cl.node_files[node].files[tls.KUBELET_CONFIG] or "")
            cl.kc.wait_condition("Node", node, None, "Ready", timeout=s.timeout_s)
            run.check("kubelet_config.node", node, "changed", f"serverTLSBootstrap enabled ({text}); kubelet "
                      "restarted and Ready; its kubelet-serving CSR follows (approved when its SANs match)")


# --- verify -----------------------------------------------------------------------------------------

def verify_apiservice(run: Run, cl: Cluster) -> None:
    """APIService Available (waited by watch after an apply), failure reasons explained."""
    if cl.kc is None:
        return
    if cl.apiservice is None:
        run.check("verify.apiservice", CLUSTER, "drift" if cl.desired else "info",
                  f"no APIService {APISERVICE}" + (": apply creates it" if cl.desired else ""))
        return
    if run.params.mode == "apply" and cl.desired is not None:
        from ...kube import verify as kverify

        exps = [kverify.rollout_complete("Deployment", cl.settings.deployment, cl.settings.namespace),
                kverify.apiservice_available(APISERVICE)]
        for r in kverify.wait_all(cl.kc, exps, timeout=cl.settings.timeout_s):
            r.check(run)
        cl.apiservice = cl.kc.get_or_none("APIService", APISERVICE)
    ok, reason, message = metrics.available(cl.apiservice)
    run.check("verify.apiservice_available", CLUSTER, "pass" if ok else "fail",
              f"Available=True ({reason})" if ok else f"Available=False {reason}: {message} — "
              f"{metrics.explain(reason, message)}")


def verify_readyz(run: Run, cl: Cluster) -> None:
    """metrics-server's own /readyz, through the apiserver's service proxy."""
    if cl.kc is None or cl.deployment is None:
        return
    path = f"/api/v1/namespaces/{cl.settings.namespace}/services/https:metrics-server:/proxy/readyz"
    try:
        text = cl.kc.raw_get(path)
        run.check("verify.readyz", CLUSTER, "pass" if str(text).strip().endswith("ok") or "passed" in str(text)
                  else "fail", f"GET {path}: {str(text).strip()[:200]}")
    except KubeError as exc:
        run.check("verify.readyz", CLUSTER, "n/a in lab" if cl.lab else "fail",
                  f"GET {path}: {exc}" + (" (the lab's API server has no service proxy)" if cl.lab else ""))


def verify_metrics(run: Run, cl: Cluster) -> tuple[pd.DataFrame, pd.DataFrame]:
    """NodeMetrics for every node and PodMetrics; the ``kubectl top`` tables (empty in the lab)."""
    empty = metrics.top_nodes([], []), metrics.top_pods([])
    if cl.kc is None or cl.apiservice is None:
        return empty
    try:
        nm = cl.kc.raw_get("/apis/metrics.k8s.io/v1beta1/nodes").get("items") or []
        pm = cl.kc.raw_get("/apis/metrics.k8s.io/v1beta1/pods").get("items") or []
    except KubeError as exc:
        ok, reason, message = metrics.available(cl.apiservice)
        run.check("verify.metrics_api", CLUSTER, "fail", f"{exc} — {metrics.explain(reason, message or str(exc))}")
        return empty
    if cl.lab:
        run.check("verify.metrics_api", CLUSTER, "n/a in lab", f"answered ({len(nm)} NodeMetrics, {len(pm)} "
                  f"PodMetrics) but {LAB_METRICS}")
        return empty
    names = {n["metadata"]["name"] for n in cl.nodes}
    missing = sorted(names - {m["metadata"]["name"] for m in nm})
    run.check("verify.node_metrics", CLUSTER, "fail" if missing else "pass",
              f"no NodeMetrics for {missing} (kubelet scrape failing: see tls.kubelet)" if missing else
              f"NodeMetrics for all {len(names)} nodes")
    run.check("verify.pod_metrics", CLUSTER, "pass" if pm else "fail", f"{len(pm)} PodMetrics")
    nodes_t, pods_t = metrics.top_nodes(nm, cl.nodes), metrics.top_pods(pm)
    run.figure("top_nodes", nodes_t.to_dict("records"))
    return nodes_t, pods_t


def verify_hpas(run: Run, cl: Cluster) -> pd.DataFrame:
    """Every HPA: pods under its target without requests named; its ScalingActive condition."""
    cols = ["namespace", "hpa", "target", "status", "detail"]
    if cl.kc is None:
        return pd.DataFrame(columns=cols)
    rows = []
    with run.guarded("verify.hpa", CLUSTER):
        hpas = cl.kc.list_objects("HorizontalPodAutoscaler")
        for h in hpas:
            pods = actions.target_pods(cl.kc, h)
            r = metrics.hpa_readiness(h, pods, cl.lab)
            run.check("verify.hpa", f"{r.namespace}/{r.hpa}", r.status, r.detail)
            rows.append({"namespace": r.namespace, "hpa": r.hpa, "target": r.target, "status": r.status,
                         "detail": r.detail})
        if not hpas:
            run.check("verify.hpa", CLUSTER, "info", "no HorizontalPodAutoscaler in the cluster")
    return pd.DataFrame(rows, columns=cols)


def accuracy_probe(run: Run, cl: Cluster) -> pd.DataFrame:
    """Upstream e2e's accuracy check and the HPA trial (apply + confirm: it creates and deletes trial
    workloads): consumers of 50m CPU and 50 MiB read back within 60 s; the HPA on the CPU consumer
    ScalingActive. Everything it created is deleted by the run's label, also on failure."""
    cols = ["probe", "status", "detail"]
    if cl.lab and not cl.settings.probe_on_lab_api:
        run.check("verify.accuracy", CLUSTER, "n/a in lab", "needs a real kubelet and metrics-server: " + LAB_METRICS)
        run.check("verify.hpa_trial", CLUSTER, "n/a in lab", "no HPA controller and no real metrics in the lab")
        return pd.DataFrame(columns=cols)
    s = cl.settings
    image = compat.mirrored(s.probe_image, s.image_mirror)
    if cl.kc is None or not run.params.confirmed:
        run.check("verify.accuracy", CLUSTER, "info", f"not run: the probe creates and deletes trial workloads "
                  f"({image}) and needs mode=apply and confirm={run.params.cluster_name}")
        return pd.DataFrame(columns=cols)
    kc, ns, run_id = cl.kc, s.probe_namespace, kube.run_id_of(run)
    rows = []
    with run.guarded("verify.accuracy", CLUSTER):
        try:
            for obj in probe.manifests(ns, image, run_id):
                kc.create(obj)
            kc.wait_rollout("Deployment", probe.CPU, ns, timeout=s.timeout_s)
            kc.wait_pod_ready(probe.MEMORY, ns, timeout=s.timeout_s)
            cpu_pod = actions.consumer_pod(kc, ns, probe.CPU)
            pods = [p for p in (cpu_pod, probe.MEMORY) if p]
            got = actions.pod_metrics_within(kc, ns, pods, probe.DEADLINE_S)
            for name, resource in ((cpu_pod, "cpu"), (probe.MEMORY, "memory")):
                status, detail = probe.judge(got.get(name) if name else None, resource)
                run.check(f"verify.accuracy.{resource}", f"{ns}/{name}", status, detail)
                rows.append({"probe": f"{resource} ({name})", "status": status, "detail": detail})
            from ...kube import verify as kverify

            r = kverify.wait(kc, kverify.condition_true("HorizontalPodAutoscaler", probe.CPU, ns, "ScalingActive"),
                             timeout=s.timeout_s)
            r.check(run)
            rows.append({"probe": "HPA ScalingActive", "status": r.status, "detail": r.detail})
        finally:
            deleted = kc.delete_by_run_label(run_id, kinds=["HorizontalPodAutoscaler", "Deployment", "Pod"],
                                             namespace=ns)
            run.check("verify.accuracy.cleanup", CLUSTER, "pass", f"deleted {len(deleted)}: {', '.join(deleted)}")
    return pd.DataFrame(rows, columns=cols)


@dataclass
class Result:
    cluster: Cluster
    compat: pd.DataFrame
    args: pd.DataFrame
    kubelets: pd.DataFrame
    csrs: list[tls.CsrDecision]
    plan: kplan.Plan | None
    top_nodes: pd.DataFrame
    top_pods: pd.DataFrame
    hpas: pd.DataFrame
    trial: pd.DataFrame


def run_chapter(run: Run) -> Result:
    """Every step in the notebook's order (for `runbooks`-less callers and tests)."""
    cl = connect(run)
    load_desired(run, cl)
    comp, args = compatibility(run, cl), audit_args(run, cl)
    tls_decision(run)
    gather_nodes(run, cl)
    kubelets = kubelet_leg(run, cl)
    aggregation(run, cl)
    decisions = pending_csrs(run, cl)
    apiservice_leg(run, cl)
    p = objects(run, cl)
    approve_csrs(run, cl, decisions)
    server_tls_bootstrap(run, cl)
    verify_apiservice(run, cl)
    verify_readyz(run, cl)
    nodes_t, pods_t = verify_metrics(run, cl)
    hpas = verify_hpas(run, cl)
    trial = accuracy_probe(run, cl)
    return Result(cl, comp, args, kubelets, decisions, p, nodes_t, pods_t, hpas, trial)
