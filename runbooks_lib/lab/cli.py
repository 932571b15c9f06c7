"""``runbooks lab up|down|status|ssh``: the command-line face of :mod:`runbooks_lib.lab.lab`.

Exit codes: 0 done / lab up; 1 the lab failed or is not (fully) up; 2 bad usage.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from typing import Any

from .engine import EngineError
from .lab import LabError, down, load_state, status, up


def _up(args: argparse.Namespace) -> int:
    try:
        state = up(args.name, args.nodes, args.image)
    except (LabError, EngineError) as exc:
        print(f"lab up failed: {exc}", file=sys.stderr)
        return 1
    for n in state.nodes:
        print(f"{n.hostname:<16} {n.ip:<15} {','.join(n.roles)}")
    print(f"inventory: {state.inventory}")
    print(f"known_hosts: {state.known_hosts}")
    print(f"etcd: https://{state.control_plane.ip}:2379 ({state.etcd_keys} keys), certs in {state.pki}")
    print(f"cluster API: the API double, kubeconfig {state.kubeconfig}")
    print(f"up in {state.up_seconds:.1f}s")
    return 0


def _down(args: argparse.Namespace) -> int:
    try:
        gone = down(args.name)
    except (LabError, EngineError) as exc:
        print(f"lab down failed: {exc}", file=sys.stderr)
        return 1
    what = ", ".join(gone["containers"]) or "no containers"
    print(f"lab {args.name} down: removed {what}" + ("; network removed" if gone["network"] else ""))
    return 0


def _status(args: argparse.Namespace) -> int:
    try:
        st = status(args.name)
    except EngineError as exc:
        print(f"lab status: {exc}", file=sys.stderr)
        return 1
    rows: list[dict[str, Any]] = st.nodes
    if rows:
        cols = list(rows[0])
        print("  ".join(f"{c:<16}" for c in cols))
        for r in rows:
            print("  ".join(f"{r.get(c, '')!s:<16}" for c in cols))
    print(f"lab {st.name}: {'up' if st.up else 'NOT up'} ({st.detail})")
    return 0 if st.up else 1


def split_ssh_rest(rest: list[str], name: str, user: str) -> tuple[str, str, list[str]]:
    """Options given after NODE (argparse's REMAINDER keeps them) and the command after ``--``."""
    rest = list(rest)
    while rest and rest[0] in ("--name", "--user") and len(rest) > 1:
        if rest[0] == "--name":
            name = rest[1]
        else:
            user = rest[1]
        rest = rest[2:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    return name, user, rest


def _ssh(args: argparse.Namespace) -> int:
    args.name, args.user, command = split_ssh_rest(args.command, args.name, args.user)
    state = load_state(args.name)
    if state is None:
        print(f"lab {args.name} is not up (runbooks lab up --name {args.name})", file=sys.stderr)
        return 1
    try:
        node = state.node(args.node)
    except LabError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    exe = shutil.which("ssh")
    if not exe:
        print("the OpenSSH client is not installed (apt-get install openssh-client)", file=sys.stderr)
        return 1
    argv = [exe, "-i", str(state.key), "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={state.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10", f"{args.user}@{node.ip}", *command]
    return subprocess.call(argv)


def add_lab_parser(subparsers: Any) -> None:
    """Add ``lab`` with its subcommands to the ``runbooks`` argparse subparsers."""
    lab = subparsers.add_parser("lab", help="the podman lab: real nodes on this machine")
    sub = lab.add_subparsers(dest="lab_command", required=True)

    def named(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--name", default="lab", help="lab name (default: lab)")
        return p

    p = named(sub.add_parser("up", help="start the lab (builds the node image once)"))
    p.add_argument("--nodes", type=int, default=3, help="number of nodes (node 1 is the control plane)")
    p.add_argument("--image", choices=["debian", "rocky9"], default="debian",
                   help="node image: debian (built locally) or rocky9 (needs a registry)")
    p.set_defaults(func=_up)
    named(sub.add_parser("down", help="remove the lab's containers, network and state")).set_defaults(func=_down)
    named(sub.add_parser("status", help="node states; exit 0 when the lab is up")).set_defaults(func=_status)
    p = named(sub.add_parser("ssh", help="ssh into a node (NODE: lab-cp1 or cp1, w1, ...)"))
    p.add_argument("node")
    p.add_argument("--user", default="runbooks", help="runbooks (sudo user, default) or root")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- command to run instead of a shell")
    p.set_defaults(func=_ssh)
