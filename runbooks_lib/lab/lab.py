"""Lab lifecycle: ``up``, ``down``, ``status`` (the Python API behind ``runbooks lab``).

State lives in ``<project>/.lab/<name>/``: id_ed25519 (0600) + .pub, known_hosts, inventory.yaml,
state.json, containers.conf (when this machine needs one), pki/ (the etcd CA and certs), and the
lab's cluster API — the API double (:mod:`.apidouble`): kubeconfig, apidouble.pid, apidouble.log.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import fcntl
import json
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..evidence import Recorder
from ..fleet import Fleet
from ..transport import SSHTransport
from . import apidouble, certs, etcd, keys, network
from .engine import STATE_ROOT, EngineError, Podman
from .image import ImageError, ensure_image
from .inventory import inventory_data, write_inventory
from .node import (
    CAP_BITS,
    LABEL,
    OPTIONAL_DEVICES,
    USER,
    NodeSpec,
    bounding_caps,
    create_args,
    node_names,
    read_host_keys,
    seed_files,
    wait_ssh_banner,
)

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
MAX_NODES = 32


class LabError(RuntimeError):
    """The lab could not be brought up, found or taken down; the message says why."""


@dataclass
class NodeState:
    hostname: str
    ip: str
    roles: list[str]
    container: str


@dataclass
class LabState:
    """A running lab as ``up`` left it (also written to state.json)."""

    name: str
    image: str
    network: str
    subnet: str
    nodes: list[NodeState]
    state_dir: str
    engine: str = ""
    created_utc: str = ""
    up_seconds: float = 0.0
    etcd_keys: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return Path(self.state_dir)

    @property
    def inventory(self) -> Path:
        return self.dir / "inventory.yaml"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def key(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def pki(self) -> Path:
        """Host-side copy of /etc/kubernetes/pki of the control-plane node."""
        return self.dir / "pki"

    @property
    def kubeconfig(self) -> Path:
        """The lab's cluster API (the API double started by ``up``)."""
        return self.dir / apidouble.KUBECONFIG

    @property
    def control_plane(self) -> NodeState:
        return next(n for n in self.nodes if "control-plane" in n.roles)

    def node(self, name: str) -> NodeState:
        """A node by hostname, or by its short form (``cp1``, ``w2``)."""
        for n in self.nodes:
            if name in (n.hostname, n.hostname.removeprefix(f"{self.name}-")):
                return n
        raise LabError(f"lab {self.name} has no node {name!r} (nodes: "
                       f"{', '.join(n.hostname for n in self.nodes)})")

    def transport(self, node: str, user: str = USER, recorder: Recorder | None = None,
                  connect_timeout: float = 5.0, command_timeout: float = 60.0) -> SSHTransport:
        n = self.node(node)
        return SSHTransport(n.hostname, n.ip, port=22, user=user, key=self.key, known_hosts=self.known_hosts,
                            strict_host_key=True, connect_timeout=connect_timeout,
                            command_timeout=command_timeout, recorder=recorder)

    def fleet(self, user: str = USER, recorder: Recorder | None = None, forks: int = 20,
              connect_timeout: float = 5.0, command_timeout: float = 60.0) -> Fleet:
        """SSH transports to every node (lab key, lab known_hosts, strict host keys)."""
        return Fleet([self.transport(n.hostname, user, recorder, connect_timeout, command_timeout)
                      for n in self.nodes], forks=forks)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> LabState:
        data = json.loads(text)
        data["nodes"] = [NodeState(**n) for n in data["nodes"]]
        return cls(**data)


def state_dir(name: str) -> Path:
    return STATE_ROOT / name


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise LabError(f"lab name {name!r}: use 1-20 lowercase letters, digits or '-', starting with a letter")


def _utc() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _log(msg: str) -> None:
    print(f"[lab] {msg}", flush=True)


@contextlib.contextmanager
def _locked(path: Path, timeout: float = 1800.0) -> Iterator[None]:
    """An exclusive file lock with a deadline (image builds and subnet choice are serialised)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                if time.monotonic() > deadline:
                    raise LabError(f"{path} is locked by another lab operation for {timeout:.0f}s") from exc
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load_state(name: str = "lab") -> LabState | None:
    f = state_dir(name) / "state.json"
    if not f.exists():
        return None
    return LabState.from_json(f.read_text())


def _containers(podman: Podman, name: str) -> dict[str, str]:
    """{container name: state} for the lab's containers."""
    out = podman("ps", "-a", "--filter", f"label={LABEL}={name}", "--format", "json").stdout
    return {c["Names"][0]: c.get("State", "") for c in json.loads(out or "[]")}


def _network_exists(podman: Podman, net: str) -> bool:
    return podman("network", "exists", net, check=False).returncode == 0


def _used_subnets(podman: Podman) -> list[str]:
    used: list[str] = []
    names = podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    if names:
        for net in json.loads(podman("network", "inspect", *names).stdout or "[]"):
            used += [s["subnet"] for s in net.get("subnets") or [] if s.get("subnet")]
    return used + network.host_routes()


# ----------------------------------------------------------------------------- up

def up(name: str = "lab", nodes: int = 3, image: str = "debian", *, timeout: float = 120.0,
       seed_keys: int = 320) -> LabState:
    """Bring the lab up (or finish/resume it) and return its state. Idempotent for a running lab."""
    _check_name(name)
    if not 1 <= nodes <= MAX_NODES:
        raise LabError(f"--nodes must be between 1 and {MAX_NODES}")
    t0 = time.monotonic()
    sdir = state_dir(name)
    sdir.mkdir(parents=True, exist_ok=True)
    sdir.chmod(0o700)
    podman = Podman(sdir)
    existing = _containers(podman, name)
    state = load_state(name)
    if existing and state is not None:
        if len(state.nodes) != nodes or set(existing) != {n.hostname for n in state.nodes}:
            raise LabError(f"lab {name} exists with {len(state.nodes)} node(s); `runbooks lab down --name {name}` "
                           f"first to change it")
        return _resume(podman, state, existing, t0, timeout)
    if existing or _network_exists(podman, network.network_name(name)):
        _log(f"removing the leftovers of an incomplete lab {name}")
        _remove(podman, name)
    try:
        return _create(podman, name, nodes, image, t0, timeout, seed_keys)
    except BaseException:
        _log(f"lab {name} failed to come up; removing what was created")
        with contextlib.suppress(apidouble.ApiDoubleError, OSError):
            apidouble.stop(sdir)
        with contextlib.suppress(EngineError, OSError):
            _remove(podman, name)
        shutil.rmtree(sdir, ignore_errors=True)
        raise


def _create(podman: Podman, name: str, count: int, image_kind: str, t0: float, timeout: float,
            seed_keys: int) -> LabState:
    sdir = state_dir(name)
    with _locked(STATE_ROOT / ".image.lock"):
        try:
            image = ensure_image(podman, image_kind)
        except (ImageError, EngineError) as exc:
            raise LabError(str(exc)) from exc
    pubkey = keys.ensure_keypair(sdir / "id_ed25519", f"runbooks-lab-{name}")
    net = network.network_name(name)
    with _locked(STATE_ROOT / ".network.lock", timeout=120):
        subnet = network.allocate_subnet(name, _used_subnets(podman))
        podman("network", "create", "--subnet", subnet, "--gateway", network.gateway(subnet), "--disable-dns",
               "--label", f"{LABEL}={name}", net)
    specs = [NodeSpec(h, network.node_ip(subnet, i + 1),
                      ["control-plane", "etcd"] if i == 0 else ["worker"], i + 1)
             for i, h in enumerate(node_names(name, count))]
    # the API double imports for a few seconds: start it now, wait for it at the end (_finish)
    apidouble.spawn(sdir, [(s.hostname, s.ip, s.roles) for s in specs])
    cp = specs[0]
    pki = certs.kubeadm_pki(cp.hostname, cp.ip)  # etcd's files and the rest of a kubeadm control plane's
    certs.write_pki(pki, sdir / "pki")
    hosts = {s.hostname: s.ip for s in specs}
    devices = tuple(d for d in OPTIONAL_DEVICES if Path(d).exists())

    def create(spec: NodeSpec) -> None:
        podman(*create_args(name, spec, net, image, hosts, devices))
        tar = seed_files(name, spec, pubkey, subnet, cp.ip,
                         pki if spec.is_control_plane else None,
                         etcd.unit_text(spec.hostname, spec.ip) if spec.is_control_plane else None)
        podman("cp", "--archive=false", "-", f"{spec.hostname}:/", input=tar)  # keep tar owners

    with cf.ThreadPoolExecutor(max_workers=min(8, count)) as pool:
        list(pool.map(create, specs))
    podman("start", *[s.hostname for s in specs], timeout=timeout)
    state = LabState(name=name, image=image, network=net, subnet=subnet,
                     nodes=[NodeState(s.hostname, s.ip, s.roles, s.hostname) for s in specs],
                     state_dir=str(sdir), engine=podman.cfg.describe(), created_utc=_utc())
    _finish(podman, state, t0, timeout, seed_keys)
    return state


def _resume(podman: Podman, state: LabState, existing: dict[str, str], t0: float, timeout: float) -> LabState:
    if apidouble.running_pid(state.dir) is None:
        _log("starting the API double (the lab's cluster API)")
        apidouble.spawn(state.dir, _double_nodes(state))
    stopped = [n for n, s in existing.items() if s != "running"]
    if stopped:
        _log(f"starting stopped node(s): {', '.join(stopped)}")
        podman("start", *stopped, timeout=timeout)
    _finish(podman, state, t0, timeout, 0)
    return state


def _finish(podman: Podman, state: LabState, t0: float, timeout: float, seed_keys: int) -> None:
    """Safety check, host keys, sshd, inventory, etcd health and seed, sudo over SSH; then state.json."""
    def ready(n: NodeState) -> str:
        caps = bounding_caps(podman, n.container)
        kept = [c for c, bit in CAP_BITS.items() if caps >> bit & 1]
        if kept:
            raise LabError(f"{n.hostname}: podman kept CAP_{', CAP_'.join(kept)}: refusing to run a node that "
                           "could change the host's clock or kernel modules")
        text = read_host_keys(podman, n.container, timeout=timeout)
        wait_ssh_banner(n.ip, timeout=timeout)
        return text

    with cf.ThreadPoolExecutor(max_workers=min(8, len(state.nodes))) as pool:
        host_keys = dict(zip([n.hostname for n in state.nodes], pool.map(ready, state.nodes), strict=True))
    lines: list[str] = []
    for n in state.nodes:
        parsed = keys.parse_host_pubkeys(host_keys[n.hostname])
        if not parsed:
            raise LabError(f"{n.hostname}: no SSH host keys found in the node")
        lines += keys.known_hosts_lines([n.ip, n.hostname], parsed)
    state.known_hosts.write_text("\n".join(lines) + "\n")
    write_inventory(state.inventory, inventory_data([asdict(n) for n in state.nodes], state.key))
    gw = etcd.EtcdGateway(state.control_plane.ip, state.pki)
    try:
        gw.wait_healthy(timeout=timeout)
        state.etcd_keys = etcd.seed(gw, seed_keys) if seed_keys else gw.count("/registry/")
    finally:
        gw.close()
    fleet = state.fleet(recorder=Recorder())
    try:
        results = fleet.run("true", timeout=30)
    finally:
        fleet.close()
    bad = {h: o.error or (o.value.stderr if o.value else "") for h, o in results.items()
           if not (o.ok and o.value is not None and o.value.ok)}
    if bad:
        raise LabError("sudo over SSH failed on " + "; ".join(f"{h}: {e.strip()[:200]}" for h, e in bad.items()))
    try:
        pid, server, version = apidouble.ensure(state.dir, _double_nodes(state), timeout=min(timeout, 60.0))
    except apidouble.ApiDoubleError as exc:
        raise LabError(str(exc)) from exc
    state.extra["api_double"] = {"server": server, "version": version, "kubeconfig": str(state.kubeconfig)}
    state.up_seconds = round(time.monotonic() - t0, 2)
    (state.dir / "state.json").write_text(state.to_json())
    _log(f"lab {state.name} up: {len(state.nodes)} node(s) on {state.subnet} in {state.up_seconds:.1f}s; "
         f"etcd https://{state.control_plane.ip}:2379 with {state.etcd_keys} keys under /registry/; "
         f"API double at {server} ({version}, pid {pid}), kubeconfig {state.kubeconfig}")


def _double_nodes(state: LabState) -> list[tuple[str, str, list[str]]]:
    return [(n.hostname, n.ip, n.roles) for n in state.nodes]


# ----------------------------------------------------------------------------- down / status

def _remove(podman: Podman, name: str) -> None:
    ids = podman("ps", "-a", "-q", "--filter", f"label={LABEL}={name}").stdout.split()
    if ids:
        podman("rm", "-f", "-t", "10", *ids, timeout=180)
    net = network.network_name(name)
    if _network_exists(podman, net):
        podman("network", "rm", "-f", net, timeout=60)


def down(name: str = "lab") -> dict[str, Any]:
    """Remove the lab's containers, network and state directory; what was removed."""
    _check_name(name)
    sdir = state_dir(name)
    podman = Podman(sdir) if sdir.exists() else Podman()
    containers = sorted(_containers(podman, name))
    had_net = _network_exists(podman, network.network_name(name))
    try:
        double = apidouble.stop(sdir) if sdir.exists() else "not running"
    except apidouble.ApiDoubleError as exc:
        raise LabError(str(exc)) from exc
    _remove(podman, name)
    left = _containers(podman, name)
    if left or _network_exists(podman, network.network_name(name)):
        raise LabError(f"lab {name}: still present after down: containers {sorted(left)}")
    if sdir.exists():
        shutil.rmtree(sdir)
    return {"name": name, "containers": containers, "network": had_net, "state_dir": str(sdir), "api_double": double}


@dataclass
class LabStatus:
    name: str
    up: bool
    nodes: list[dict[str, Any]]
    detail: str
    api_double: str = ""


def status(name: str = "lab") -> LabStatus:
    """Container state and sshd reachability of each node (no login)."""
    _check_name(name)
    state = load_state(name)
    sdir = state_dir(name)
    podman = Podman(sdir) if sdir.exists() else Podman()
    existing = _containers(podman, name)
    if state is None:
        detail = "not up" if not existing else f"incomplete: containers {sorted(existing)} but no state.json"
        return LabStatus(name, False, [{"node": c, "container": s} for c, s in existing.items()], detail)
    rows = []
    for n in state.nodes:
        cstate = existing.get(n.container, "absent")
        try:
            ssh = "up" if cstate == "running" and wait_ssh_banner(n.ip, timeout=2) >= 0 else "down"
        except TimeoutError:
            ssh = "down"
        rows.append({"node": n.hostname, "ip": n.ip, "roles": ",".join(n.roles), "container": cstate, "sshd": ssh})
    nodes_ok = all(r["container"] == "running" and r["sshd"] == "up" for r in rows)
    double = apidouble.info(sdir)
    detail = f"inventory {state.inventory}" if nodes_ok else "some nodes are down"
    return LabStatus(name, nodes_ok and double.running, rows, f"{detail}; {double.detail}", double.detail)


def is_up(name: str = "lab") -> bool:
    """True when the lab has a state file and every node is running with sshd answering."""
    try:
        return status(name).up
    except (LabError, EngineError):
        return False
