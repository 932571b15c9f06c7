#!/usr/bin/python3
"""A kubeadm test double for lab nodes, installed as /usr/local/bin/kubeadm by tests only.

kubeadm cannot be installed on these machines, so chapter 02's apply path (init, token, upload-certs,
join, reset: their order, gates, secrets and idempotence) is exercised against this program on real lab
nodes over real SSH. It is written from the kubeadm reference docs
(https://kubernetes.io/docs/reference/setup-tools/kubeadm/) and models only what the chapter relies on:
the commands' arguments, exit codes, the files init/join leave (/var/lib/kubelet/config.yaml, the
kubeconfigs, a static-pod manifest) and reset removes, the "already exists" preflight errors on a second
init/join, and the documented output lines. It runs no control plane. Every call is logged, with the
config file it was given, to /var/log/kubeadm-double.jsonl so tests can check order and secrets.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import time
from pathlib import Path

LOG = Path("/var/log/kubeadm-double.jsonl")
CONF = Path("/etc/kubeadm-double")
MARKER = Path("/var/lib/kubelet/config.yaml")
KUBE = Path("/etc/kubernetes")
FILES = [MARKER, KUBE / "admin.conf", KUBE / "super-admin.conf", KUBE / "kubelet.conf",
         KUBE / "manifests/kube-apiserver.yaml"]


def setting(name: str, default: str) -> str:
    p = CONF / name
    return p.read_text().strip() if p.exists() else default


def flag(argv: list[str], name: str) -> str | None:
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)


def kubeconfig(user: str) -> str:
    key = base64.b64encode(f"double client key of {user}".encode()).decode()
    return ("apiVersion: v1\nkind: Config\nclusters:\n- name: kubernetes\n  cluster: {server: 'https://x:6443'}\n"
            f"users:\n- name: {user}\n  user:\n    client-key-data: {key}\n")


def init(argv: list[str], config: str) -> int:
    if MARKER.exists() or (KUBE / "manifests/kube-apiserver.yaml").exists():
        print("[preflight] Running pre-flight checks")
        print("error execution phase preflight: [preflight] Some fatal errors occurred:\n\t[ERROR "
              "FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml]: /etc/kubernetes/manifests/"
              "kube-apiserver.yaml already exists", file=sys.stderr)
        return 1
    if "kind: InitConfiguration" not in config:
        print("error: no InitConfiguration in the config", file=sys.stderr)
        return 1
    token = re.search(r"token: ([a-z0-9]{6}\.[a-z0-9]{16})", config)
    key = re.search(r"certificateKey: ([0-9a-f]{64})", config)
    time.sleep(float(setting("init_sleep", "0.5")))
    write(MARKER, "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n")
    for name in ("admin.conf", "super-admin.conf", "kubelet.conf"):
        write(KUBE / name, kubeconfig(name))
    write(KUBE / "manifests/kube-apiserver.yaml", "apiVersion: v1\nkind: Pod\n")
    print("[init] Using Kubernetes version: " + setting("version", "v1.37.1"))
    print("[upload-certs] Storing the certificates in Secret \"kubeadm-certs\" in the \"kube-system\" Namespace")
    print("[upload-certs] Using certificate key:\n" + (key.group(1) if key else ""))
    print("\nYour Kubernetes control-plane has initialized successfully!\n")
    if token:
        print(f"  kubeadm join x:6443 --token {token.group(1)} \\\n\t--discovery-token-ca-cert-hash sha256:"
              + "0" * 64)
    return 0


def join(argv: list[str], config: str) -> int:
    if MARKER.exists():
        print("error execution phase preflight: [preflight] Some fatal errors occurred:\n\t[ERROR "
              "FileAvailable--etc-kubernetes-kubelet.conf]: /etc/kubernetes/kubelet.conf already exists",
              file=sys.stderr)
        return 1
    if not re.search(r"token: [a-z0-9]{6}\.[a-z0-9]{16}", config) or not re.search(r"sha256:[0-9a-f]{64}", config):
        print("error: discovery needs a token and caCertHashes", file=sys.stderr)
        return 1
    cp = "controlPlane:" in config
    if cp and not re.search(r"certificateKey: [0-9a-f]{64}", config):
        print("error: a control-plane join needs the certificate key", file=sys.stderr)
        return 1
    time.sleep(float(setting("join_sleep", "1.0")))
    write(MARKER, "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n")
    write(KUBE / "kubelet.conf", kubeconfig("kubelet"))
    if cp:
        write(KUBE / "admin.conf", kubeconfig("admin.conf"))
        write(KUBE / "manifests/kube-apiserver.yaml", "apiVersion: v1\nkind: Pod\n")
    print("This node has joined the cluster" + (" and a new control plane instance was created" if cp else ":"))
    return 0


def main(argv: list[str]) -> int:
    config = ""
    path = flag(argv, "--config")
    if path:
        config = Path(path).read_text()
    start = time.time()
    rc, words = 0, [a for a in argv if not a.startswith("-")]
    manifests_before = {p.name: p.read_text() for p in sorted((KUBE / "manifests").glob("*.yaml"))}
    if words[:1] == ["version"]:
        print(setting("version", "v1.37.1"))
    elif words[:2] == ["config", "validate"]:
        print("ok")
    elif words[:3] == ["init", "phase", "preflight"]:
        print("[preflight] Running pre-flight checks")
    elif words[:3] == ["init", "phase", "upload-certs"]:
        key = flag(argv, "--certificate-key") or os.urandom(32).hex()
        print("[upload-certs] Storing the certificates in Secret \"kubeadm-certs\" in the \"kube-system\" Namespace")
        print(f"[upload-certs] Using certificate key:\n{key}")
    elif words[:1] == ["init"]:
        rc = init(argv, config)
    elif words[:2] == ["token", "create"]:
        print(words[2] if len(words) > 2 else "abcdef.0123456789abcdef")
    elif words[:1] == ["join"]:
        rc = join(argv, config)
    elif words[:1] == ["reset"]:
        for f in [*FILES, *(KUBE / "manifests").glob("*")]:
            f.unlink(missing_ok=True)
        print("[reset] Deleting contents of directories: [/etc/kubernetes/manifests /var/lib/kubelet]")
        print("The reset process does not clean CNI configuration. To do so, you must remove /etc/cni/net.d")
    else:
        print(f"kubeadm double: unsupported {' '.join(argv)}", file=sys.stderr)
        rc = 2
    with LOG.open("a") as log:
        log.write(json.dumps({"argv": argv, "start": start, "end": time.time(), "rc": rc, "config": config,
                              "manifests_before": manifests_before}) + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
