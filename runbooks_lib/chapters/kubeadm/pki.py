"""kubeadm's PKI read with ``cryptography`` (pure): expiry, apiserver SANs, the CA public-key hash.

Only certificates and public keys are read (never a private key). The CA hash is what
``--discovery-token-ca-cert-hash`` / ``caCertHashes`` pin: ``sha256:`` + the SHA-256 of the CA
certificate's DER-encoded SubjectPublicKeyInfo (kubeadm's pubkeypin package).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization

PKI_DIR = "/etc/kubernetes/pki"
#: kubeadm's certificates on a control plane (relative to PKI_DIR), as `kubeadm certs check-expiration` lists
CERTS = (
    "ca.crt", "apiserver.crt", "apiserver-kubelet-client.crt", "front-proxy-ca.crt", "front-proxy-client.crt",
    "etcd/ca.crt", "etcd/server.crt", "etcd/peer.crt", "etcd/healthcheck-client.crt", "apiserver-etcd-client.crt",
)
PUBLIC_KEYS = ("sa.pub",)
CA_FILES = ("ca.crt", "front-proxy-ca.crt", "etcd/ca.crt")


@dataclass
class CertInfo:
    path: str
    subject: str
    issuer: str
    not_after: dt.datetime
    dns: list[str] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)
    is_ca: bool = False

    def days_left(self, now: dt.datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400


def load(path: str, pem: str) -> CertInfo:
    """One PEM certificate (ValueError when it is not one)."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    dns: list[str] = []
    ips: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = list(san.get_values_for_type(x509.DNSName))
        ips = [str(i) for i in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass  # no SAN extension: the lists stay empty
    try:
        is_ca = bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        is_ca = False
    return CertInfo(path, cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), cert.not_valid_after_utc,
                    dns, ips, is_ca)


def ca_cert_hash(pem: str) -> str:
    """``sha256:<hex>`` of the certificate's SubjectPublicKeyInfo (kubeadm's discovery pin)."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def public_key_ok(pem: str) -> bool:
    try:
        serialization.load_pem_public_key(pem.encode())
    except ValueError:
        return False
    return True


def expected_sans(endpoint_host: str | None, control_planes: list[tuple[str, str]], extra: list[str],
                  service_cidr: str, dns_domain: str) -> list[str]:
    """What the apiserver certificate must cover: kubeadm's defaults (kubernetes.default.svc..., the first
    service IP), every control plane's name and address, the endpoint and the extra SANs."""
    first_service_ip = str(next(ipaddress.ip_network(service_cidr).hosts()))
    names = ["kubernetes", "kubernetes.default", "kubernetes.default.svc", f"kubernetes.default.svc.{dns_domain}",
             first_service_ip]
    for name, address in control_planes:
        names += [name, address]
    names += extra
    if endpoint_host:
        names.append(endpoint_host)
    return list(dict.fromkeys(names))


def missing_sans(cert: CertInfo, wanted: list[str]) -> list[str]:
    """Entries of ``wanted`` the certificate does not cover (IPs exactly, names case-insensitively;
    a ``*.`` wildcard covers one label)."""
    have_ips = {ipaddress.ip_address(i) for i in cert.ips}
    have_dns = [d.lower() for d in cert.dns]
    out = []
    for w in wanted:
        try:
            if ipaddress.ip_address(w) not in have_ips:
                out.append(w)
            continue
        except ValueError:
            pass  # a name, not an address
        name = w.lower()
        wild = "*." + name.split(".", 1)[1] if "." in name else None
        if name not in have_dns and (wild is None or wild not in have_dns):
            out.append(w)
    return out
