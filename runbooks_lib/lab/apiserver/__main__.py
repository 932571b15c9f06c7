"""``python -m runbooks_lib.lab.apiserver --kubeconfig PATH ...``: serve until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .seed import DEFAULT_NODES, check_nodes, parse_node_arg
from .server import CLUSTER_NAME, ApiDouble


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m runbooks_lib.lab.apiserver",
                                 description="The lab's Kubernetes API server (writes a kubeconfig, serves until killed).")
    ap.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig pointing at the double")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: any free port")
    ap.add_argument("--forbid", nargs="*", default=[], metavar="VERB:RESOURCE",
                    help='refuse with 403, e.g. "patch:configmaps", "delete:pods", "*:secrets"')
    ap.add_argument("--version", default="v1.30.4", help="Kubernetes version the double reports")
    ap.add_argument("--no-tls", action="store_true", help="plain HTTP with bearer tokens")
    ap.add_argument("--node", action="append", default=[], metavar="NAME=IP:ROLE",
                    help="a seeded node (repeatable; ROLE control-plane or worker); default cp1, w1, w2")
    ap.add_argument("--image", action="append", default=[], metavar="REF",
                    help="an image the lab's catalogue lists (repeatable); pods with others get ErrImagePull")
    args = ap.parse_args(argv)
    try:
        nodes = [parse_node_arg(n) for n in args.node] or list(DEFAULT_NODES)
        check_nodes(nodes)
    except ValueError as exc:
        ap.error(str(exc))
    double = ApiDouble(version=args.version, forbid=args.forbid, tls=not args.no_tls, nodes=nodes,
                        images=args.image)
    url = double.start(args.host, args.port)
    path = double.write_kubeconfig(args.kubeconfig)
    print(f"API double serving at {url}; kubeconfig {path} (cluster {CLUSTER_NAME})", flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(1.0):
        pass
    double.stop()
    return 0



if __name__ == "__main__":
    sys.exit(main())
