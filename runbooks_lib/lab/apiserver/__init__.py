"""The lab's Kubernetes API server (for the lab and tests only; production code never imports it).

    from runbooks_lib.lab.apiserver import ApiDouble
    with ApiDouble() as api:            # seeded kubeadm v1.30 cluster, HTTPS on 127.0.0.1
        api.write_kubeconfig(path)
"""

from .server import CLUSTER_NAME, ApiDouble, free_port
from .wire import ADMIN_USER, VIEWER_USER, RequestLog

__all__ = ["ADMIN_USER", "CLUSTER_NAME", "VIEWER_USER", "ApiDouble", "RequestLog", "free_port"]
