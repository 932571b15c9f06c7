"""Apply where kubeadm is installed: init, joins and resets over SSH, each join behind a gate (step module).

Order (kubeadm's HA guide; Kubespray does the same): init the first control plane with a minted
short-TTL token and certificate key; copy admin.conf for the SSH user (the seed's mkdir/cp/chown); pin
discovery to the hash of the real ``ca.crt``; then one control plane at a time: a fresh certificate key
uploaded right before its join (``kubeadm init phase upload-certs``: the key and the Secret expire after
2 hours), the join, and its gate; then the workers in parallel, at most ``join_forks`` at once, each gated
on its registration. A failed step or gate stops everything that depends on it ("not attempted").

Secrets are minted on the runner and registered with the redactor before any command could print them,
and travel on stdin only: never in a recorded command line. The module decides no check itself; it
hands :class:`Outcome` rows to the caller's ``emit`` (chapter.py records them).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...fleet import Fleet
from ...kube.errors import KubeError
from ...transport.base import TargetUnreachable, Transport
from . import bootstrap, ha, nodes, parse, pki
from .actions import Action, reset_command
from .config import CONFIG_PATH, Rendered, endpoint_host
from .settings import Settings
from .verify import parse_readyz

if TYPE_CHECKING:
    from ...run import Run

ADMIN_CONF = "/etc/kubernetes/admin.conf"
KUBE_VIP = "/etc/kubernetes/manifests/kube-vip.yaml"
CA_CRT = f"{pki.PKI_DIR}/ca.crt"
#: a private file for a document carrying secrets, removed when the command ends however it ends
PRIVATE = "umask 077; d=$(mktemp -d) || exit 3; trap 'rm -rf \"$d\"' EXIT; cat > \"$d/kubeadm.yaml\"; "
#: the seed's "mkdir -p $HOME/.kube; cp -i admin.conf; chown", for the SSH user, idempotent
KUBECONFIG = ('S=; [ "$(id -u)" = 0 ] || S="sudo -n"; mkdir -p "$HOME/.kube" && '
              f'if $S cmp -s {ADMIN_CONF} "$HOME/.kube/config"; then echo unchanged; '
              f'else $S install -m 0600 -o "$(id -u)" -g "$(id -g)" {ADMIN_CONF} "$HOME/.kube/config" '
              '&& echo copied; fi')


@dataclass
class Outcome:
    check: str
    host: str
    status: str
    detail: str


@dataclass
class Member:
    name: str
    address: str
    role: str
    lab: bool = False


Emit = Callable[[Outcome], object]


class Gate:
    """Waits, with a deadline, for /readyz?verbose and a node's registration: through the cluster API when
    the run's kubeconfig reaches it, else with kubectl and admin.conf on the first control plane; a joined
    control plane's own API server from the node (CA-pinned curl; n/a on a lab node, where none runs)."""

    def __init__(self, run: Run, first: Transport, timeout_s: float) -> None:
        self.run, self.first, self.timeout_s = run, first, timeout_s
        self._kc: Any = None
        self._channel = ""

    def channel(self) -> str:
        if not self._channel:
            from ... import kube

            try:
                self._kc = kube.connect(self.run)
                self._kc.raw_get("/version")
                self._channel = f"the cluster API ({self._kc.describe()})"
            except (KubeError, TargetUnreachable, OSError) as exc:
                self._kc = None
                self._channel = f"kubectl on {self.first.name} (the run's kubeconfig: {exc})"
        return self._channel

    def _readyz(self) -> tuple[bool, str]:
        self.channel()
        if self._kc is not None:
            try:
                text = str(self._kc.raw_get("/readyz?verbose"))
            except (KubeError, OSError) as exc:
                return False, f"/readyz?verbose: {exc}"
        else:
            res = self.first.run(f"timeout 10 kubectl --kubeconfig={ADMIN_CONF} get --raw='/readyz?verbose'",
                                 timeout=20)
            text = res.stdout
        ok, bad = parse_readyz(text)
        return bool(ok) and not bad, f"/readyz?verbose: {len(ok)} ok" + (f", failed: {', '.join(bad)}" if bad else "")

    def _registered(self, node: str) -> bool:
        if self._kc is not None:
            try:
                return self._kc.get_or_none("Node", node) is not None
            except (KubeError, OSError):
                return False
        res = self.first.run(f"timeout 10 kubectl --kubeconfig={ADMIN_CONF} get node {shlex.quote(node)} -o name",
                             timeout=20)
        return res.ok and res.stdout.strip() == f"node/{node}"

    @staticmethod
    def _own_apiserver(t: Transport, address: str) -> tuple[bool, str]:
        res = t.run(f"curl -s --max-time 5 --cacert {CA_CRT} https://{address}:6443/readyz", timeout=15)
        return res.stdout.strip() == "ok", f"its API server https://{address}:6443/readyz: " \
                                          f"{res.stdout.strip()[:80] or f'exit {res.exit_code}'}"

    def wait(self, m: Member, t: Transport | None = None) -> tuple[bool, str, float]:
        """(passed, what was seen, seconds) for ``m``; a control plane also needs its own API server ready."""
        t0 = time.monotonic()
        deadline, pause, seen = t0 + self.timeout_s, 1.0, ""
        while True:
            ready, seen = self._readyz()
            registered = self._registered(m.name)
            seen += f"; node {m.name} {'registered' if registered else 'not registered'}"
            if registered and m.lab:
                seen += " (a lab node: the lab's API server lists it from the start; no kubelet registers it)"
            own = True
            if m.role == "control-plane" and t is not None:
                if m.lab:
                    seen += "; its own API server: n/a in lab (no kube-apiserver runs on a lab node)"
                else:
                    own, what = self._own_apiserver(t, m.address)
                    seen += f"; {what}"
            if ready and registered and own:
                return True, f"via {self.channel()}: {seen}", round(time.monotonic() - t0, 2)
            if time.monotonic() + pause > deadline:
                return False, f"not ready after {self.timeout_s:.0f} s, via {self.channel()}: {seen}", \
                    round(time.monotonic() - t0, 2)
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


class Conductor:
    """Runs the planned actions in kubeadm's order; every result goes to ``emit``."""

    def __init__(self, run: Run, s: Settings, rendered: Rendered, endpoint: str, members: list[Member],
                 first: str | None, emit: Emit) -> None:
        self.run, self.s, self.rendered, self.endpoint, self.emit = run, s, rendered, endpoint, emit
        self.members = {m.name: m for m in members}
        self.first = first
        self.timings: dict[str, float] = {}

    def _secret(self, value: str) -> str:
        self.run.redactor.add_secret(value)
        return value

    def _skip(self, acts: list[Action], why: str) -> None:
        for a in acts:
            self.emit(Outcome(f"apply.{a.step}", a.host, "fail", f"not attempted: {why}"))

    def _private(self, t: Transport, command: str, text: str, timeout: float) -> Any:
        return t.run(PRIVATE + command, stdin=text, timeout=timeout + 30)

    def conduct(self, acts: list[Action]) -> None:
        for a in (a for a in acts if a.step == "reset"):
            self.reset(a)
        init = [a for a in acts if a.step == "init"]
        cps = [a for a in acts if a.step == "join-control-plane"]
        workers = [a for a in acts if a.step == "join-worker"]
        if not (init or cps or workers):
            return
        if self.first is None:
            self._skip(cps + workers, "no initialised control plane to join (the first control plane has no "
                       "kubeadm, or is being reset)")
            return
        t = self.run.transport(self.first)
        token = self._secret(self.s.token or bootstrap.mint_token())
        if init and not self.init(t, token):
            self._skip(cps + workers, f"kubeadm init failed on {self.first}")
            return
        if not init and not self.token(t, token):
            self._skip(cps + workers, f"no bootstrap token could be created on {self.first}")
            return
        pem = t.read_file(CA_CRT)
        if not pem:
            self._skip(cps + workers, f"{CA_CRT} is missing on {self.first}: discovery cannot be pinned")
            return
        ca_hash = pki.ca_cert_hash(pem)
        self.emit(Outcome("apply.ca_hash", self.first, "info", f"discovery pinned to {ca_hash} (from {CA_CRT})"))
        gate = Gate(self.run, t, self.s.gate_timeout_s)
        for i, a in enumerate(cps):
            if not self.join_control_plane(t, a, token, ca_hash, gate):
                self._skip(cps[i + 1:] + workers, f"{a.host} did not join and pass its gate; control planes "
                           "join one at a time")
                return
        if workers:
            self.join_workers(workers, token, ca_hash, gate)

    def _kube_vip(self, t: Transport, first: bool, when: str) -> str | None:
        """Place kube-vip's static pod (kubeadm.ha: kube-vip); ``first``: the init-time variant. The
        kubeconfig it mounts, or None when it could not be written."""
        text = ha.kube_vip(self.endpoint, self.s.vip_interface, self.rendered.version, first)
        res = t.run(f"install -D -m 0600 /dev/stdin {KUBE_VIP}", stdin=text, timeout=30)
        mounts = "super-admin.conf" if "super-admin.conf" in text else "admin.conf"
        self.emit(Outcome("apply.kube-vip", t.name, "pass" if res.ok else "fail",
                          f"{KUBE_VIP} {when}, mounting {mounts}" if res.ok else
                          f"{KUBE_VIP} could not be written: {res.stderr.strip()[-200:]}"))
        return mounts if res.ok else None

    def _endpoint_answers(self, t: Transport) -> tuple[bool, str]:
        host, port = endpoint_host(self.endpoint) or "", self.endpoint.rsplit(":", 1)[1]
        ok = nodes.tcp_open(t, host, port)
        return ok, f"{host}:{port} {'answers' if ok else 'does not answer'}"

    def init(self, t: Transport, token: str) -> bool:
        vip = self._kube_vip(t, True, "before init") if self.s.ha == "kube-vip" else None
        if self.s.ha == "kube-vip" and vip is None:
            self.emit(Outcome("apply.init", t.name, "fail", "not attempted: kube-vip could not be placed"))
            return False
        if self.s.ha == "keepalived-haproxy":
            ok, seen = self._endpoint_answers(t)
            if not ok:
                self.emit(Outcome("apply.init", t.name, "fail", f"not attempted: the endpoint {seen} (from "
                                  f"{t.name}); deploy keepalived and HAProxy with the configs of the HA step first"))
                return False
        key = self._secret(self.s.certificate_key or bootstrap.mint_certificate_key())
        t.run(f"install -D -m 0600 /dev/stdin {CONFIG_PATH}", stdin=self.rendered.text, timeout=30, check=True)
        t0 = time.monotonic()
        res = self._private(t, f'timeout {self.s.init_timeout_s} kubeadm init --config "$d/kubeadm.yaml" '
                               "--upload-certs", bootstrap.init_text(self.rendered, token, self.s.token_ttl, key),
                            self.s.init_timeout_s)
        self.timings["init_s"] = round(time.monotonic() - t0, 2)
        out = parse.parse_init(res.stdout + "\n" + res.stderr)
        if res.exit_code != 0 or not out.succeeded:
            why = "timed out" if res.exit_code == 124 else f"exit {res.exit_code}"
            self.emit(Outcome("apply.init", t.name, "fail", f"kubeadm init {why}; "
                              + ("; ".join(out.errors[:5]) or res.stderr.strip()[-400:])))
            return False
        self.emit(Outcome("apply.init", t.name, "pass", f"control plane initialised in {self.timings['init_s']} s "
                          f"(token TTL {self.s.token_ttl}, certificate key uploaded; config kept in {CONFIG_PATH})"))
        if vip == "super-admin.conf":
            self._kube_vip(t, False, "after init (back to admin.conf: super-admin.conf stays break-glass)")
        cp = self.run.transport(t.name)
        res = cp.run(KUBECONFIG, sudo=False, timeout=30)
        self.emit(Outcome("apply.kubeconfig", t.name, "pass" if res.ok else "fail",
                          f"$HOME/.kube/config for {cp.user}: {res.stdout.strip() or res.stderr.strip()[-200:]}"))
        return True

    def token(self, t: Transport, token: str) -> bool:
        res = t.run(f'read -r tok; timeout 60 kubeadm token create "$tok" --ttl {shlex.quote(self.s.token_ttl)}',
                    stdin=token + "\n", timeout=90)
        ok = res.ok and parse.parse_token_create(res.stdout) == token
        self.emit(Outcome("apply.token", t.name, "pass" if ok else "fail",
                          f"bootstrap token created, TTL {self.s.token_ttl}" if ok else
                          f"kubeadm token create: exit {res.exit_code}; {res.stderr.strip()[-300:]}"))
        return ok

    def upload_certs(self, t: Transport, key: str) -> bool:
        res = t.run('read -r k; timeout 120 kubeadm init phase upload-certs --upload-certs --certificate-key "$k"',
                    stdin=key + "\n", timeout=150)
        ok = res.ok and parse.parse_upload_certs(res.stdout) in (key, None)
        self.emit(Outcome("apply.upload-certs", t.name, "pass" if ok else "fail",
                          "a fresh certificate key: control-plane certificates re-uploaded to the kubeadm-certs "
                          "Secret (valid 2 h)" if ok else f"upload-certs: exit {res.exit_code}; "
                          f"{res.stderr.strip()[-300:]}"))
        return ok

    def _join(self, m: Member, token: str, ca_hash: str, key: str | None) -> tuple[bool, str, float]:
        t = self.run.transport(m.name)
        text = bootstrap.join_text(self.rendered.api_version, self.endpoint, token, ca_hash, m.name, m.address,
                                   self.s.cri_socket, key, self.s.ignore_preflight_errors)
        t0 = time.monotonic()
        res = self._private(t, f'timeout {self.s.init_timeout_s} kubeadm join --config "$d/kubeadm.yaml"', text,
                            self.s.init_timeout_s)
        took = round(time.monotonic() - t0, 2)
        if res.ok:
            return True, f"joined {self.endpoint} in {took} s", took
        why = "timed out" if res.exit_code == 124 else f"exit {res.exit_code}"
        errs = parse.error_lines(res.stdout + "\n" + res.stderr)
        return False, f"kubeadm join {why}; {'; '.join(errs[:5]) or res.stderr.strip()[-400:]}", took

    def join_control_plane(self, first: Transport, a: Action, token: str, ca_hash: str, gate: Gate) -> bool:
        m = self.members[a.host]
        key = self._secret(bootstrap.mint_certificate_key())
        if not self.upload_certs(first, key):
            self.emit(Outcome(f"apply.{a.step}", a.host, "fail", "not attempted: no fresh certificate key"))
            return False
        if self.s.ha == "kube-vip" and self._kube_vip(self.run.transport(m.name), False, "before its join") is None:
            self.emit(Outcome(f"apply.{a.step}", a.host, "fail", "not attempted: kube-vip could not be placed"))
            return False
        ok, detail, took = self._join(m, token, ca_hash, key)
        self.timings[f"join_{m.name}_s"] = took
        self.emit(Outcome(f"apply.{a.step}", m.name, "pass" if ok else "fail", detail))
        if not ok:
            return False
        passed, seen, waited = gate.wait(m, self.run.transport(m.name))
        self.emit(Outcome("apply.gate", m.name, "pass" if passed else "fail", f"{seen} (after {waited} s)"))
        return passed

    def join_workers(self, acts: list[Action], token: str, ca_hash: str, gate: Gate) -> None:
        names = [a.host for a in acts]
        fleet = Fleet([self.run.transport(n) for n in names], forks=self.s.join_forks)

        def one(t: Transport) -> tuple[bool, str, float]:
            ok, detail, took = self._join(self.members[t.name], token, ca_hash, None)
            if not ok:
                return ok, detail, took
            passed, seen, _ = gate.wait(self.members[t.name])
            return passed, f"{detail}; gate: {seen}", took

        budget = (self.s.init_timeout_s + self.s.gate_timeout_s + 60) * -(-len(names) // self.s.join_forks)
        for host, outcome in fleet.map(one, timeout=budget).items():
            if outcome.value is None:
                self.emit(Outcome("apply.join-worker", host, "unreachable" if outcome.unreachable else "error",
                                  outcome.error or ""))
                continue
            ok, detail, took = outcome.value
            self.timings[f"join_{host}_s"] = took
            self.emit(Outcome("apply.join-worker", host, "pass" if ok else "fail", detail))

    def reset(self, a: Action) -> None:
        t = self.run.transport(a.host)
        res = t.run(reset_command(self.s.init_timeout_s), timeout=self.s.init_timeout_s + 60)
        self.emit(Outcome("apply.reset", a.host, "pass" if res.ok else "fail",
                          "kubeadm reset -f; CNI config and kube-proxy's iptables/nftables/IPVS state removed, and "
                          "~/.kube/config wherever it was a copy of admin.conf" if res.ok else
                          f"reset: exit {res.exit_code}; {res.stderr.strip()[-400:]}"))
