"""The lab control plane's PKI, laid out like kubeadm's (/etc/kubernetes/pki, etcd/...), made with cryptography.

Private keys are written only into the lab's state directory (mode 0600) and from there into
the node; nothing here prints them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 365
# relative to /etc/kubernetes/pki, as kubeadm lays them out
ETCD_FILES = (
    "etcd/ca.crt", "etcd/ca.key", "etcd/server.crt", "etcd/server.key", "etcd/peer.crt", "etcd/peer.key",
    "etcd/healthcheck-client.crt", "etcd/healthcheck-client.key",
    "apiserver-etcd-client.crt", "apiserver-etcd-client.key",
)


@dataclass
class KeyPair:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_ca(common_name: str = "etcd-ca", days: int = CA_DAYS) -> KeyPair:
    """A self-signed CA (kubeadm's etcd CA is CN=etcd-ca)."""
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert, key)


def issue(ca: KeyPair, common_name: str, *, dns: list[str] | None = None, ips: list[str] | None = None,
          server: bool = False, client: bool = True, organization: str | None = None,
          days: int = LEAF_DAYS) -> KeyPair:
    """A leaf certificate signed by ``ca`` with the given SANs and extended key usages."""
    key = _new_key()
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + \
        ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    now = _now()
    builder = (
        x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(ca.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns or []]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips or []]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return KeyPair(builder.sign(ca.key, hashes.SHA256()), key)


def etcd_pki(hostname: str, ip: str) -> dict[str, bytes]:
    """All kubeadm-style etcd PEM files for one etcd member: {relative path: content}."""
    ca = make_ca()
    dns = [hostname, "localhost"]
    ips = [ip, "127.0.0.1", "::1"]
    server = issue(ca, hostname, dns=dns, ips=ips, server=True, client=True)
    peer = issue(ca, hostname, dns=dns, ips=ips, server=True, client=True)
    health = issue(ca, "kube-etcd-healthcheck-client")
    apiserver = issue(ca, "kube-apiserver-etcd-client")
    out: dict[str, bytes] = {}
    for stem, pair in (("etcd/ca", ca), ("etcd/server", server), ("etcd/peer", peer),
                       ("etcd/healthcheck-client", health), ("apiserver-etcd-client", apiserver)):
        out[f"{stem}.crt"] = pair.cert_pem()
        out[f"{stem}.key"] = pair.key_pem()
    return out


def write_pki(files: dict[str, bytes], root: Path) -> None:
    """Write PEM files under ``root`` (keys 0600, certs 0644, directories 0700)."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o700)
        mode = 0o600 if rel.endswith(".key") else 0o644
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        path.chmod(mode)


def read_pki(root: Path) -> dict[str, bytes]:
    return {rel: (root / rel).read_bytes() for rel in ETCD_FILES}


# relative to /etc/kubernetes/pki: the rest of a kubeadm control plane's PKI
CONTROL_PLANE_FILES = (
    "ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "apiserver-kubelet-client.crt",
    "apiserver-kubelet-client.key", "front-proxy-ca.crt", "front-proxy-ca.key", "front-proxy-client.crt",
    "front-proxy-client.key", "sa.key", "sa.pub",
)


def kubeadm_pki(hostname: str, ip: str, service_ip: str = "10.96.0.1", dns_domain: str = "cluster.local",
                extra_sans: tuple[str, ...] = ("127.0.0.1",)) -> dict[str, bytes]:
    """A complete kubeadm-layout PKI for one control plane: the etcd files, the cluster CA, the apiserver
    (with kubeadm's SANs), apiserver-kubelet-client, the front-proxy CA and client, sa.key/sa.pub."""
    out = etcd_pki(hostname, ip)
    ca = make_ca("kubernetes")
    dns = [hostname, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
           f"kubernetes.default.svc.{dns_domain}"]
    ips = [service_ip, ip, *extra_sans]
    apiserver = issue(ca, "kube-apiserver", dns=dns, ips=ips, server=True, client=False)
    kubelet_client = issue(ca, "kube-apiserver-kubelet-client", organization="kubeadm:cluster-admins")
    fp_ca = make_ca("front-proxy-ca")
    fp_client = issue(fp_ca, "front-proxy-client")
    for stem, pair in (("ca", ca), ("apiserver", apiserver), ("apiserver-kubelet-client", kubelet_client),
                       ("front-proxy-ca", fp_ca), ("front-proxy-client", fp_client)):
        out[f"{stem}.crt"] = pair.cert_pem()
        out[f"{stem}.key"] = pair.key_pem()
    sa = _new_key()
    out["sa.key"] = sa.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                     serialization.NoEncryption())
    out["sa.pub"] = sa.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    return out
