"""What apply would run on each node, as exact commands (pure). Secrets appear only as placeholders:
apply mints a fresh short-TTL token and, right before each control-plane join, a fresh certificate key."""

from __future__ import annotations

from dataclasses import dataclass

from .config import CONFIG_PATH

ADMIN_KUBECONFIG = ("mkdir -p $HOME/.kube && sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config && "
                    "sudo chown $(id -u):$(id -g) $HOME/.kube/config")
RESET = ("kubeadm reset -f && rm -rf /etc/cni/net.d /var/lib/cni && iptables -F && iptables -t nat -F && "
         "iptables -t mangle -F && iptables -X && (nft flush ruleset || true) && (ipvsadm --clear || true)")


@dataclass
class Action:
    step: str          # init | join-control-plane | join-worker | none
    host: str
    commands: list[str]
    why: str


def plan(hosts: list[tuple[str, str]], initialised: dict[str, bool], endpoint: str, ca_hash: str | None,
         token_ttl: str, timeout_s: int, reset: list[str] | None = None) -> list[Action]:
    """``hosts``: (name, role) with the first control plane first. A node already initialised gets none;
    a node named in ``reset`` gets only the reset."""
    pin = ca_hash or "sha256:<hash of the CA, computed after init>"
    cluster_exists = any(initialised.values())
    out: list[Action] = []
    for i, (host, role) in enumerate(hosts):
        if host in (reset or []):
            out.append(Action("reset", host, [RESET], "kubeadm.reset names it"))
            continue
        if initialised.get(host):
            out.append(Action("none", host, [], "already initialised (/var/lib/kubelet/config.yaml): nothing to do"))
            continue
        join = (f"timeout {timeout_s} kubeadm join {endpoint} --token <token> "
                f"--discovery-token-ca-cert-hash {pin}")
        if i == 0 and role == "control-plane" and not cluster_exists:
            out.append(Action("init", host, [
                f"timeout {timeout_s} kubeadm init --config {CONFIG_PATH} --upload-certs", ADMIN_KUBECONFIG],
                "first control plane"))
        elif role == "control-plane":
            out.append(Action("join-control-plane", host, [
                f"kubeadm token create --ttl {token_ttl}   # on the first control plane",
                "kubeadm init phase upload-certs --upload-certs   # right before this join: a fresh key (2 h)",
                f"{join} --control-plane --certificate-key <fresh certificate key>",
                "wait for /readyz?verbose before the next control plane"], "control planes join one at a time"))
        else:
            out.append(Action("join-worker", host, [f"kubeadm token create --ttl {token_ttl}   # once, shared",
                                                    join], "workers join in parallel (kubeadm.join_forks)"))
    return out
