"""The secrets apply mints and the documents that carry them (pure).

A bootstrap token (``[a-z0-9]{6}.[a-z0-9]{16}``) and a certificate key (32 random bytes, hex, as
``kubeadm certs certificate-key`` makes) are minted on the runner, so they are registered with the
redactor before any command could print them. They reach a node only on stdin, written into a private
temporary file that the same command removes: the InitConfiguration's ``bootstrapTokens`` and
``certificateKey``, and a JoinConfiguration whose discovery is pinned with ``caCertHashes``
(never ``unsafeSkipCAVerification``).

https://kubernetes.io/docs/reference/config-api/kubeadm-config.v1beta4/
https://kubernetes.io/docs/reference/setup-tools/kubeadm/kubeadm-join/#token-based-discovery-with-ca-pinning
"""

from __future__ import annotations

import copy
import re
import secrets
import string
from typing import Any

import yaml

from .config import Rendered

_TOKEN_ALPHABET = string.ascii_lowercase + string.digits
TOKEN = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
CERT_KEY = re.compile(r"^[0-9a-f]{64}$")
CA_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
TOKEN_GROUPS = ["system:bootstrappers:kubeadm:default-node-token"]
TOKEN_USAGES = ["signing", "authentication"]


def mint_token() -> str:
    """A bootstrap token as ``kubeadm token generate`` makes one."""
    def part(n: int) -> str:
        return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(n))
    return f"{part(6)}.{part(16)}"


def mint_certificate_key() -> str:
    """An AES-256 key, hex (``kubeadm certs certificate-key``)."""
    return secrets.token_hex(32)


def _dump(docs: list[dict[str, Any]]) -> str:
    return "---\n".join(yaml.safe_dump(d, sort_keys=False, default_flow_style=False) for d in docs)


def init_text(rendered: Rendered, token: str, ttl: str, certificate_key: str) -> str:
    """The rendered config with the minted token (its TTL) and certificate key in the InitConfiguration."""
    if not TOKEN.match(token) or not CERT_KEY.match(certificate_key):
        raise ValueError("token or certificate key malformed")
    docs = copy.deepcopy(rendered.documents)
    init = next(d for d in docs if d.get("kind") == "InitConfiguration")
    init["bootstrapTokens"] = [{"token": token, "ttl": ttl, "groups": TOKEN_GROUPS, "usages": TOKEN_USAGES,
                                "description": "minted by the k8s-runbooks kubeadm chapter"}]
    init["certificateKey"] = certificate_key
    return _dump(docs)


def join_text(api_version: str, endpoint: str, token: str, ca_hash: str, node: str, address: str,
              cri_socket: str, certificate_key: str | None = None, ignore_preflight: list[str] | None = None) -> str:
    """A JoinConfiguration for ``node``; with ``certificate_key`` a control-plane join advertising ``address``."""
    if not TOKEN.match(token) or not CA_HASH.match(ca_hash):
        raise ValueError("token or CA hash malformed")
    doc: dict[str, Any] = {
        "apiVersion": api_version, "kind": "JoinConfiguration",
        "discovery": {"bootstrapToken": {"apiServerEndpoint": endpoint, "token": token,
                                         "caCertHashes": [ca_hash]}},
        "nodeRegistration": {"name": node, "criSocket": cri_socket, "imagePullPolicy": "IfNotPresent",
                             **({"ignorePreflightErrors": list(ignore_preflight)} if ignore_preflight else {})},
    }
    if certificate_key is not None:
        if not CERT_KEY.match(certificate_key):
            raise ValueError("certificate key malformed")
        doc["controlPlane"] = {"localAPIEndpoint": {"advertiseAddress": address, "bindPort": 6443},
                               "certificateKey": certificate_key}
    return _dump([doc])
