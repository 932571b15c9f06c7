"""The two TLS legs, judged from real files and objects (pure functions).

Leg A, metrics-server -> kubelet: the kubelet's serving certificate. By default kubelet writes a
self-signed one (``/var/lib/kubelet/pki/kubelet.crt``, its own CA, the hostname as SAN, no IP SAN:
kubernetes/kubeadm#2028); with ``serverTLSBootstrap: true`` it asks the cluster CA through a
``kubernetes.io/kubelet-serving`` CSR and uses ``kubelet-server-current.pem``. metrics-server
verifies it against the cluster CA and connects by InternalIP, so secure mode needs a CA-issued
certificate whose IP SANs include the node's InternalIP (metrics-server#196).

Leg B, kube-apiserver -> metrics-server: the APIService's ``insecureSkipTLSVerify`` / ``caBundle``, and
the aggregation flags in the kube-apiserver manifest.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from typing import Any

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

KUBELET_CONFIG = "/var/lib/kubelet/config.yaml"
SELF_SIGNED = "/var/lib/kubelet/pki/kubelet.crt"
BOOTSTRAPPED = "/var/lib/kubelet/pki/kubelet-server-current.pem"
CLUSTER_CA = "/etc/kubernetes/pki/ca.crt"
APISERVER_MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
#: kube-apiserver flags the aggregation layer needs (kubernetes.io "Configure the Aggregation Layer")
AGGREGATION_FLAGS = ("--requestheader-client-ca-file", "--proxy-client-cert-file", "--proxy-client-key-file",
                     "--requestheader-allowed-names", "--requestheader-username-headers")


@dataclass
class ServingCert:
    path: str
    subject: str
    issuer: str
    self_signed: bool
    dns_sans: list[str]
    ip_sans: list[str]
    not_after: dt.datetime
    by_cluster_ca: bool | None = None  # None: no cluster CA to check against


def load_cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def serving_cert(path: str, pem: str, ca_pem: str | None) -> ServingCert:
    """Parse the first certificate of ``pem`` (kubelet-server-current.pem holds key and cert)."""
    start = pem.find("-----BEGIN CERTIFICATE-----")
    cert = load_cert(pem[start:] if start >= 0 else pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns, ips = san.get_values_for_type(x509.DNSName), [str(i) for i in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        dns, ips = [], []
    by_ca: bool | None = None
    if ca_pem:
        try:
            cert.verify_directly_issued_by(load_cert(ca_pem))
            by_ca = True
        except (ValueError, TypeError, InvalidSignature):
            by_ca = False
    return ServingCert(path, cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(),
                       cert.issuer == cert.subject, dns, ips, cert.not_valid_after_utc, by_ca)


def server_tls_bootstrap(config_text: str | None) -> bool | None:
    """``serverTLSBootstrap`` of a KubeletConfiguration (False when absent: kubelet's default); None
    when there is no config or it is not YAML."""
    if not config_text:
        return None
    try:
        doc = yaml.safe_load(config_text)
    except yaml.YAMLError:
        return None
    return bool(doc.get("serverTLSBootstrap", False)) if isinstance(doc, dict) else None


@dataclass
class KubeletLeg:
    status: str
    detail: str
    cert: ServingCert | None = None


def judge_kubelet(node_ip: str | None, bootstrap: bool | None, cert: ServingCert | None, insecure: bool,
                  now: dt.datetime | None = None) -> KubeletLeg:
    """Leg A on one node. Secure mode: pass only for a cluster-CA-issued, unexpired certificate with the
    InternalIP among its IP SANs; otherwise drift (apply enables serverTLSBootstrap and approves the
    node's CSR). With --kubelet-insecure-tls the certificate is not verified at all: warn."""
    now = now or dt.datetime.now(dt.UTC)
    if cert is None:
        return KubeletLeg("fail", "no kubelet serving certificate found "
                          f"({BOOTSTRAPPED} / {SELF_SIGNED})", None)
    what = (f"{cert.path}: {'self-signed' if cert.self_signed else 'issued by ' + cert.issuer}, "
            f"SANs DNS {cert.dns_sans or '-'} IP {cert.ip_sans or '-'}, expires {cert.not_after:%Y-%m-%d}; "
            f"serverTLSBootstrap {bootstrap}")
    if cert.not_after <= now:
        return KubeletLeg("fail", f"{what}: EXPIRED", cert)
    if insecure:
        return KubeletLeg("warn", f"{what}: not verified (--kubelet-insecure-tls)", cert)
    problems = []
    if cert.self_signed or cert.by_cluster_ca is False:
        problems.append("not issued by the cluster CA (metrics-server: x509: certificate signed by unknown authority)")
    if node_ip and node_ip not in cert.ip_sans:
        problems.append(f"InternalIP {node_ip} not among the IP SANs (x509: cannot validate certificate for "
                        f"{node_ip} because it doesn't contain any IP SANs)")
    if not bootstrap:
        problems.append("serverTLSBootstrap is off")
    if problems:
        return KubeletLeg("drift", f"{what}. Secure mode needs serverTLSBootstrap: " + "; ".join(problems), cert)
    return KubeletLeg("pass", f"{what}: verifiable by the cluster CA at {node_ip}", cert)


def apiserver_flags(manifest_text: str | None) -> dict[str, str] | None:
    """``--flag`` -> value of the kube-apiserver container's command in a static pod manifest."""
    if not manifest_text:
        return None
    try:
        doc = yaml.safe_load(manifest_text)
        containers = doc["spec"]["containers"]
    except (yaml.YAMLError, KeyError, TypeError):
        return None
    words = [w for c in containers for w in (c.get("command") or []) + (c.get("args") or [])]
    return {w.split("=", 1)[0]: (w.split("=", 1)[1] if "=" in w else "") for w in words if w.startswith("--")}


def judge_aggregation(flags: dict[str, str], replicas: int) -> list[tuple[str, str, str]]:
    """(check, status, detail) for the aggregation flags; --enable-aggregator-routing with >1 replica."""
    missing = [f for f in AGGREGATION_FLAGS if not flags.get(f)]
    out = [("aggregation.flags", "fail" if missing else "pass",
            f"missing {', '.join(missing)}: the apiserver cannot authenticate to metrics-server "
            "(403 / x509: certificate signed by unknown authority)" if missing else
            f"front-proxy: --requestheader-client-ca-file={flags['--requestheader-client-ca-file']}, "
            f"--proxy-client-cert-file={flags['--proxy-client-cert-file']}")]
    routing = flags.get("--enable-aggregator-routing", "false").lower() == "true"
    if replicas > 1 and not routing:
        out.append(("aggregation.routing", "warn", f"{replicas} metrics-server replicas without "
                    "--enable-aggregator-routing=true: the apiserver goes through the Service's ClusterIP "
                    "(README: recommended for HA)"))
    else:
        out.append(("aggregation.routing", "pass" if routing else "info",
                    f"--enable-aggregator-routing={str(routing).lower()} ({replicas} replica(s))"))
    return out


def judge_apiservice(apiservice: dict[str, Any] | None) -> tuple[str, str]:
    """Leg B: warn for insecureSkipTLSVerify (upstream's default), pass with a caBundle."""
    if apiservice is None:
        return "info", "no APIService v1beta1.metrics.k8s.io"
    spec = apiservice.get("spec") or {}
    if spec.get("insecureSkipTLSVerify"):
        return "warn", ("insecureSkipTLSVerify: true — kube-apiserver does not verify metrics-server's serving "
                        "certificate (upstream manifest default); give the APIService a caBundle to verify it")
    if spec.get("caBundle"):
        return "pass", "caBundle set: kube-apiserver verifies metrics-server's serving certificate"
    return "warn", "neither caBundle nor insecureSkipTLSVerify: verified against the apiserver's own trust only"


# --- CSRs -----------------------------------------------------------------------------------------

SIGNER = "kubernetes.io/kubelet-serving"


@dataclass
class CsrDecision:
    name: str
    node: str
    approve: bool
    reason: str
    sans: list[str] = field(default_factory=list)


def _csr_request(obj: dict[str, Any]) -> x509.CertificateSigningRequest:
    import base64

    return x509.load_pem_x509_csr(base64.b64decode(obj["spec"]["request"]))


def pending(obj: dict[str, Any]) -> bool:
    conds = (obj.get("status") or {}).get("conditions") or []
    return not any(c.get("type") in ("Approved", "Denied", "Failed") for c in conds)


def decide_csr(obj: dict[str, Any], nodes: dict[str, list[str]]) -> CsrDecision:
    """Approve a kubelet-serving CSR only when its requestor is ``system:node:<n>`` of a known node, the
    request's subject is that node (O=system:nodes), its usages are serving ones, and every SAN is one of
    that node's own names/addresses (``nodes``: node name -> names and addresses from its Node status).
    Everything else is listed with the reason and never approved (kubernetes.io: kubelet serving
    certificates are not approved automatically because the SANs cannot be checked by kube-controller-manager)."""
    name, spec = obj["metadata"]["name"], obj.get("spec") or {}
    user = spec.get("username", "")
    node = user.removeprefix("system:node:") if user.startswith("system:node:") else ""

    def no(reason: str, sans: list[str] | None = None) -> CsrDecision:
        return CsrDecision(name, node or user, False, reason, sans or [])

    if spec.get("signerName") != SIGNER:
        return no(f"signer {spec.get('signerName')} is not {SIGNER}")
    if not node or "system:nodes" not in (spec.get("groups") or []):
        return no(f"requestor {user!r} is not a node")
    if node not in nodes:
        return no(f"node {node} is not in the cluster")
    try:
        req = _csr_request(obj)
    except (ValueError, KeyError, TypeError) as exc:
        return no(f"request not readable: {exc}")
    cn = [a.value for a in req.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    org = [a.value for a in req.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    try:
        ext = req.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [*ext.get_values_for_type(x509.DNSName), *(str(i) for i in ext.get_values_for_type(x509.IPAddress))]
        others = [g for g in ext if not isinstance(g, (x509.DNSName, x509.IPAddress))]
    except x509.ExtensionNotFound:
        sans, others = [], []
    if cn != [f"system:node:{node}"] or org != ["system:nodes"]:
        return no(f"subject CN={cn} O={org} is not system:node:{node} / system:nodes", sans)
    if set(spec.get("usages") or []) - {"digital signature", "key encipherment", "server auth"} \
            or "server auth" not in (spec.get("usages") or []):
        return no(f"usages {spec.get('usages')} are not serving usages", sans)
    if others or not sans:
        return no("SANs other than DNS names and IP addresses, or none", sans)
    allowed = set(nodes[node])
    foreign = [s for s in sans if _norm(s) not in {_norm(a) for a in allowed}]
    if foreign:
        return no(f"SANs {foreign} are not node {node}'s names/addresses {sorted(allowed)}", sans)
    return CsrDecision(name, node, True, f"requestor and SANs {sans} match node {node}", sans)


def _norm(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value.lower()

