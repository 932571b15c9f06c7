"""What apply would run on each node, as exact commands (pure). Secrets appear only as placeholders:
apply mints a fresh short-TTL token and, right before each control-plane join, a fresh certificate key."""

from __future__ import annotations

from dataclasses import dataclass

from ...verdict import Check
from .config import CONFIG_PATH

#: the seed's mkdir/cp/chown, for the SSH user, as apply runs it (copied only when it differs)
ADMIN_KUBECONFIG = ('mkdir -p "$HOME/.kube" && sudo install -m 0600 -o "$(id -u)" -g "$(id -g)" '
                    '/etc/kubernetes/admin.conf "$HOME/.kube/config"')


def reset_command(timeout_s: int) -> str:
    """kubeadm reset, then what it leaves (kubeadm-reset docs): CNI config, kube-proxy's iptables rules,
    nftables tables and IPVS tables, and a copy of admin.conf in a home directory (only one identical to
    this node's admin.conf). firewalld's own nftables table is left alone."""
    return ("if [ -f /etc/kubernetes/admin.conf ]; then for h in /root /home/*; do "
            "cmp -s /etc/kubernetes/admin.conf \"$h/.kube/config\" && rm -f \"$h/.kube/config\"; done; fi; "
            f"timeout {timeout_s} kubeadm reset -f && rm -rf /etc/cni/net.d /var/lib/cni && "
            "iptables -F && iptables -t nat -F && iptables -t mangle -F && iptables -X && "
            "{ ! command -v nft >/dev/null || { nft delete table ip kube-proxy 2>/dev/null; "
            "nft delete table ip6 kube-proxy 2>/dev/null; true; }; } && "
            "{ ! command -v ipvsadm >/dev/null || ipvsadm --clear; }")


@dataclass
class Action:
    step: str          # init | join-control-plane | join-worker | none
    host: str
    commands: list[str]
    why: str


def plan(hosts: list[tuple[str, str]], initialised: dict[str, bool], endpoint: str, ca_hash: str | None,
         token_ttl: str, timeout_s: int, reset: list[str] | None = None,
         state: dict[str, bool] | None = None) -> list[Action]:
    """``hosts``: (name, role) with the first control plane first. A node already initialised gets none;
    a node named in ``reset`` gets only the reset, and only while it holds kubeadm state (``state``;
    default: initialised), so a second apply resets nothing."""
    pin = ca_hash or "sha256:<hash of the CA, computed after init>"
    cluster_exists = any(initialised.values())
    out: list[Action] = []
    for i, (host, role) in enumerate(hosts):
        if host in (reset or []):
            if (state or initialised).get(host):
                out.append(Action("reset", host, [reset_command(timeout_s)], "kubeadm.reset names it"))
            else:
                out.append(Action("none", host, [], "kubeadm.reset names it, but it holds no kubeadm state: "
                                  "nothing to reset"))
            continue
        if initialised.get(host):
            out.append(Action("none", host, [], "already initialised (/var/lib/kubelet/config.yaml): nothing to do"))
            continue
        join = (f"timeout {timeout_s} kubeadm join --config <JoinConfiguration: apiServerEndpoint {endpoint}, "
                f"the token, caCertHashes [{pin}]")
        if i == 0 and role == "control-plane" and not cluster_exists:
            out.append(Action("init", host, [
                f"install -m 0600 /dev/stdin {CONFIG_PATH}   # the rendered config above, no secret in it",
                f"timeout {timeout_s} kubeadm init --config <a private copy of {CONFIG_PATH} plus bootstrapTokens "
                f"(ttl {token_ttl}) and certificateKey, removed after> --upload-certs", ADMIN_KUBECONFIG],
                "first control plane"))
        elif role == "control-plane":
            out.append(Action("join-control-plane", host, [
                f"kubeadm token create <token> --ttl {token_ttl}   # on the first control plane, once, only when "
                "the cluster exists already (init mints it otherwise)",
                "kubeadm init phase upload-certs --upload-certs --certificate-key <key>   # on the first control "
                "plane, right before this join: a fresh key (2 h)",
                f"{join}, controlPlane.certificateKey>",
                "gate: /readyz?verbose, the node registered, its own API server; then the next control plane"],
                "control planes join one at a time"))
        else:
            out.append(Action("join-worker", host, [
                f"kubeadm token create <token> --ttl {token_ttl}   # once, shared, only when the cluster exists "
                "already", f"{join}>", "gate: the node registered"],
                "workers join in parallel (kubeadm.join_forks)"))
    return out


#: steps whose failed checks stop init/join (what the cluster API shows does not)
BLOCKING_STEPS = ("config", "survey", "preflight", "pki", "ha")


def blockers(checks: list[Check], ignored: list[str]) -> dict[str, list[str]]:
    """host ("runner": everyone) -> the failed checks that stop its init/join. A failed, unreachable or
    errored check blocks, and so does a preflight drift (a prerequisite chapter 01 installs); preflight
    names in ``ignored`` (or "all") do not, as kubeadm's --ignore-preflight-errors."""
    skip = {n.lower() for n in ignored}
    out: dict[str, list[str]] = {}
    for c in checks:
        pre = c.check.startswith("preflight.")
        if c.step not in BLOCKING_STEPS or (pre and {"all", c.check.removeprefix("preflight.").lower()} & skip):
            continue
        if c.status in ("fail", "unreachable", "error") or (pre and c.status == "drift"):
            out.setdefault(c.host, []).append(c.check)
    return out
