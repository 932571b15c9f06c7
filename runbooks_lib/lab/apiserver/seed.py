"""Realistic objects for the API double: a kubeadm cluster (by default 3 nodes: cp1, w1, w2) with
kube-proxy, Calico, CoreDNS and metrics-server, as `kubectl get -o yaml` shows them on a v1.30 cluster.

The node set is a parameter (``seed_objects(version, nodes=[(name, ip, role), ...])``): DaemonSet
pods get one per node, their name suffixes derived from a hash of the node name (as stable as
kubeadm's random ones look); CoreDNS and metrics-server pods go to the workers present (the
control plane when there is none)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from .seed_files import CALICO_CNI_CONFIG, KUBE_PROXY_CONFIG, KUBE_PROXY_KUBECONFIG

Obj = dict[str, Any]

__all__ = ["BOOTSTRAP_TOKEN_SECRET", "CALICO_CNI_CONFIG", "KUBE_PROXY_CONFIG", "KUBE_PROXY_KUBECONFIG",
           "SECRET_PASSWORD", "seed_objects"]

#: the Secret values the double holds, so tests can prove they never reach evidence
SECRET_PASSWORD = "double-s3cr3t-Pa55word-7f3a"
BOOTSTRAP_TOKEN_SECRET = "0123456789abcdef"

#: (name, address, role): role "control-plane" or "worker"
NodeSpec = tuple[str, str, str]

DEFAULT_NODES: list[NodeSpec] = [("cp1", "192.0.2.11", "control-plane"), ("w1", "192.0.2.21", "worker"),
                                 ("w2", "192.0.2.22", "worker")]
ROLES = ("control-plane", "worker")

#: kernel and OS image the default nodes report (a mixed Rocky 9 / Debian 12 cluster); any other node
#: reports Debian 12's (the lab's image; chapters read the real kernel over SSH where they can)
NODE_OS = {"cp1": ("5.14.0-427.13.1.el9_4.x86_64", "Rocky Linux 9.4 (Blue Onyx)"),
           "w1": ("5.14.0-427.13.1.el9_4.x86_64", "Rocky Linux 9.4 (Blue Onyx)")}
DEFAULT_OS = ("6.1.0-18-amd64", "Debian GNU/Linux 12 (bookworm)")

#: Kubernetes' alphabet for generated name suffixes (no vowels, no 0/1/3)
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def check_nodes(nodes: list[NodeSpec]) -> list[NodeSpec]:
    """The node list, validated: unique names, IPv4 addresses, known roles, at least one node."""
    import ipaddress

    if not nodes:
        raise ValueError("the double needs at least one node")
    seen: set[str] = set()
    out: list[NodeSpec] = []
    for name, ip, role in nodes:
        if not name or name in seen:
            raise ValueError(f"node names must be unique and non-empty: {name!r}")
        if role not in ROLES:
            raise ValueError(f"node {name}: role {role!r} is not one of {', '.join(ROLES)}")
        ipaddress.IPv4Address(ip)
        seen.add(name)
        out.append((name, ip, role))
    return out


def parse_node_arg(text: str) -> NodeSpec:
    """``NAME=IP:ROLE`` (the CLI's ``--node``) -> (name, ip, role)."""
    name, sep, rest = text.partition("=")
    ip, sep2, role = rest.partition(":")
    if not (sep and sep2 and name and ip and role):
        raise ValueError(f"--node {text!r}: expected NAME=IP:ROLE, e.g. cp1=10.77.3.11:control-plane")
    return check_nodes([(name, ip, role)])[0]


def name_suffix(node_name: str, what: str, n: int = 5) -> str:
    """A stable, kubernetes-looking suffix for ``what``'s pod on ``node_name`` (hash of both)."""
    digest = hashlib.sha256(f"{what}/{node_name}".encode()).digest()
    return "".join(_SUFFIX_ALPHABET[b % len(_SUFFIX_ALPHABET)] for b in digest[:n])


def pod_cidr(index: int) -> str:
    return f"10.244.{index}.0/24"


def control_plane_ip(nodes: list[NodeSpec]) -> str:
    return next((ip for _n, ip, role in nodes if role == "control-plane"), nodes[0][1])


TS = "2024-09-02T08:14:31Z"


def node(name: str, address: str, role: str, cidr: str, version: str) -> Obj:
    default = (name, address, role) in DEFAULT_NODES
    kernel, os_image = NODE_OS.get(name, DEFAULT_OS) if default else DEFAULT_OS
    labels = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    taints = []
    if role == "control-plane":
        labels["node-role.kubernetes.io/control-plane"] = ""
        labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
        taints = [{"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"}]
    cond = [
        ("NetworkUnavailable", "False", "CalicoIsUp", "Calico is running on this node"),
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": {
            "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///var/run/containerd/containerd.sock",
            "node.alpha.kubernetes.io/ttl": "0",
            "projectcalico.org/IPv4Address": f"{address}/24",
            "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr], "taints": taints} if taints else
                {"podCIDR": cidr, "podCIDRs": [cidr]},
        "status": {
            "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}],
            "allocatable": {"cpu": "4", "ephemeral-storage": "47233297124", "hugepages-2Mi": "0",
                            "memory": "7890140Ki", "pods": "110"},
            "capacity": {"cpu": "4", "ephemeral-storage": "51251180Ki", "hugepages-2Mi": "0",
                         "memory": "7992540Ki", "pods": "110"},
            "conditions": [{"type": t, "status": s, "reason": r, "message": m, "lastHeartbeatTime": TS,
                            "lastTransitionTime": TS} for t, s, r, m in cond],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"architecture": "amd64", "bootID": f"3f0c{name}-9b1e-4c55-8a57-5e1d2b7c9a10",
                         "containerRuntimeVersion": "containerd://1.7.20", "kernelVersion": kernel,
                         "kubeProxyVersion": version, "kubeletVersion": version,
                         "machineID": f"8d2e6c1f4b9a4e47a1c2{name:0>12}", "operatingSystem": "linux",
                         "osImage": os_image, "systemUUID": f"4c4c4544-0032-5a10-8047-{name:0>12}"},
        },
    }


def daemonset(name: str, app: str, image: str, containers_extra: Obj, volumes: list[Obj]) -> Obj:
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": "kube-system", "labels": {"k8s-app": app},
                     "annotations": {"deprecated.daemonset.template.generation": "1"}},
        "spec": {
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"k8s-app": app}},
            "template": {
                "metadata": {"labels": {"k8s-app": app}},
                "spec": {
                    "containers": [{"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
                                    **containers_extra}],
                    "hostNetwork": True, "nodeSelector": {"kubernetes.io/os": "linux"},
                    "priorityClassName": "system-node-critical",
                    "serviceAccountName": name, "tolerations": [{"operator": "Exists"}],
                    "volumes": volumes,
                },
            },
            "updateStrategy": {"type": "RollingUpdate",
                               "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
        },
        "status": {"currentNumberScheduled": 3, "desiredNumberScheduled": 3, "numberAvailable": 3,
                   "numberMisscheduled": 0, "numberReady": 3, "observedGeneration": 1,
                   "updatedNumberScheduled": 3},
    }


def deployment(name: str, app: str, image: str, replicas: int, ports: list[Obj],
               tolerations: list[Obj] | None = None) -> Obj:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "kube-system", "labels": {"k8s-app": app},
                     "annotations": {"deployment.kubernetes.io/revision": "1"}},
        "spec": {
            "replicas": replicas, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"k8s-app": app}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {"metadata": {"labels": {"k8s-app": app}},
                         "spec": {"containers": [{"name": name, "image": image, "ports": ports}],
                                  "priorityClassName": "system-cluster-critical",
                                  "serviceAccountName": name,
                                  **({"tolerations": tolerations} if tolerations else {})}},
        },
        "status": {"availableReplicas": replicas, "observedGeneration": 1, "readyReplicas": replicas,
                   "replicas": replicas, "updatedReplicas": replicas,
                   "conditions": [
                       {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                        "message": "Deployment has minimum availability.", "lastTransitionTime": TS,
                        "lastUpdateTime": TS},
                       {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                        "message": f'ReplicaSet "{name}-7db6d8ff4d" has successfully progressed.',
                        "lastTransitionTime": TS, "lastUpdateTime": TS}]},
    }


def pod(name: str, app: str, node_name: str, host_ip: str, image: str, ip: str, owner_kind: str, owner: str,
        host_network: bool) -> Obj:
    labels = {"k8s-app": app}
    if owner_kind == "DaemonSet":
        labels.update({"controller-revision-hash": "6d5f8b7c9d", "pod-template-generation": "1"})
    else:
        labels["pod-template-hash"] = owner.rsplit("-", 1)[-1]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "kube-system", "labels": labels,
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind, "name": owner,
                                          "uid": "00000000-0000-0000-0000-000000000000",
                                          "controller": True, "blockOwnerDeletion": True}]},
        "spec": {"containers": [{"name": app if app != "kube-dns" else "coredns", "image": image}],
                 "nodeName": node_name, "hostNetwork": host_network, "restartPolicy": "Always",
                 "tolerations": [{"operator": "Exists"}]},
        "status": {"phase": "Running", "hostIP": host_ip, "podIP": ip, "podIPs": [{"ip": ip}],
                   "startTime": TS, "qosClass": "Burstable",
                   "conditions": [{"type": t, "status": "True", "lastTransitionTime": TS}
                                  for t in ("PodReadyToStartContainers", "Initialized", "Ready",
                                            "ContainersReady", "PodScheduled")],
                   "containerStatuses": [{"name": app if app != "kube-dns" else "coredns", "ready": True,
                                          "started": True, "restartCount": 0, "image": image,
                                          "imageID": image.split(":")[0] + "@sha256:" + _hex(image, 64),
                                          "containerID": "containerd://" + _hex(name, 64),
                                          "state": {"running": {"startedAt": TS}}}]},
    }


def _hex(seed: str, n: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:n]


def service(name: str, namespace: str, ip: str, ports: list[Obj], app: str | None) -> Obj:
    spec: Obj = {"clusterIP": ip, "clusterIPs": [ip], "ports": ports, "type": "ClusterIP",
                 "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None",
                 "internalTrafficPolicy": "Cluster"}
    if app:
        spec["selector"] = {"k8s-app": app}
    labels = {"component": "apiserver", "provider": "kubernetes"} if name == "kubernetes" else {"k8s-app": app}
    if name == "kube-dns":  # as kubeadm's CoreDNS Service (``kubectl cluster-info`` lists it by these)
        labels.update({"kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"})
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace,
                                                                 "labels": labels},
            "spec": spec, "status": {"loadBalancer": {}}}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def seed_objects(version: str, nodes: list[NodeSpec] | None = None) -> list[Obj]:
    """Every seeded object, in creation order, for ``nodes`` (default: cp1, w1, w2)."""
    nodes = check_nodes(list(nodes) if nodes is not None else DEFAULT_NODES)
    objs: list[Obj] = []
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        objs.append({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                     "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
    for i, (name, addr, role) in enumerate(nodes):
        objs.append(node(name, addr, role, pod_cidr(i), version=version))
    proxy_image = f"registry.k8s.io/kube-proxy:{version}"
    objs.append(daemonset(
        "kube-proxy", "kube-proxy", proxy_image,
        {"command": ["/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf",
                     "--hostname-override=$(NODE_NAME)"],
         "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}}],
         "securityContext": {"privileged": True},
         "volumeMounts": [{"mountPath": "/var/lib/kube-proxy", "name": "kube-proxy"},
                          {"mountPath": "/run/xtables.lock", "name": "xtables-lock"},
                          {"mountPath": "/lib/modules", "name": "lib-modules", "readOnly": True}]},
        [{"name": "kube-proxy", "configMap": {"name": "kube-proxy", "defaultMode": 420}},
         {"name": "xtables-lock", "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}},
         {"name": "lib-modules", "hostPath": {"path": "/lib/modules", "type": ""}}]))
    calico_image = "docker.io/calico/node:v3.28.1"
    objs.append(daemonset(
        "calico-node", "calico-node", calico_image,
        {"env": [{"name": "DATASTORE_TYPE", "value": "kubernetes"},
                 {"name": "CALICO_NETWORKING_BACKEND",
                  "valueFrom": {"configMapKeyRef": {"name": "calico-config", "key": "calico_backend"}}},
                 {"name": "CALICO_IPV4POOL_IPIP", "value": "Always"}],
         "securityContext": {"privileged": True}},
        [{"name": "cni-net-dir", "hostPath": {"path": "/etc/cni/net.d", "type": ""}}]))
    objs.append(deployment("coredns", "kube-dns", "registry.k8s.io/coredns/coredns:v1.11.1", 2,
                           [{"containerPort": 53, "name": "dns", "protocol": "UDP"},
                            {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                            {"containerPort": 9153, "name": "metrics", "protocol": "TCP"}],
                           # as kubeadm's CoreDNS manifest: it may run on the control plane
                           [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]))
    objs.append(deployment("metrics-server", "metrics-server", "registry.k8s.io/metrics-server/metrics-server:v0.7.2",
                           1, [{"containerPort": 10250, "name": "https", "protocol": "TCP"}]))
    for name, addr, _role in nodes:
        objs.append(pod(f"kube-proxy-{name_suffix(name, 'kube-proxy')}", "kube-proxy", name, addr, proxy_image,
                        addr, "DaemonSet", "kube-proxy", True))
        objs.append(pod(f"calico-node-{name_suffix(name, 'calico-node')}", "calico-node", name, addr,
                        calico_image, addr, "DaemonSet", "calico-node", True))
    workers = [(i, n) for i, n in enumerate(nodes) if n[2] == "worker"] or [(0, nodes[0])]
    next_ip = {i: 3 for i, _ in workers}

    def placed(k: int) -> tuple[str, str, str]:
        """(node, host IP, pod IP) of the k-th Deployment pod: round robin over the workers."""
        i, (name, addr, _role) = workers[k % len(workers)]
        ip = pod_cidr(i).rsplit(".", 1)[0] + f".{next_ip[i]}"
        next_ip[i] += 1
        return name, addr, ip

    dns_image = "registry.k8s.io/coredns/coredns:v1.11.1"
    for k in range(2):
        on, host_ip, ip = placed(k)
        objs.append(pod(f"coredns-7db6d8ff4d-{name_suffix(on, f'coredns-{k}')}", "kube-dns", on, host_ip,
                        dns_image, ip, "ReplicaSet", "coredns-7db6d8ff4d", False))
    on, host_ip, ip = placed(len(workers) - 1 if len(workers) > 1 else 0)
    objs.append(pod(f"metrics-server-6d94bc8694-{name_suffix(on, 'metrics-server')}", "metrics-server", on,
                    host_ip, "registry.k8s.io/metrics-server/metrics-server:v0.7.2", ip, "ReplicaSet",
                    "metrics-server-6d94bc8694", False))
    objs.append(service("kubernetes", "default", "10.96.0.1",
                        [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}], None))
    objs.append(service("kube-dns", "kube-system", "10.96.0.10",
                        [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                         {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                         {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}], "kube-dns"))
    objs.append(service("metrics-server", "kube-system", "10.96.120.15",
                        [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https"}],
                        "metrics-server"))
    objs.append({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "kube-proxy", "namespace": "kube-system",
                              "labels": {"app": "kube-proxy"},
                              "annotations": {"kubeadm.kubernetes.io/component-config.hash":
                                              "sha256:1b0f6b5b2a1f0a6f7f4b0c0e1f2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5"}},
                 "data": {"config.conf": KUBE_PROXY_CONFIG,
                          "kubeconfig.conf": KUBE_PROXY_KUBECONFIG.replace("__CONTROL_PLANE__",
                                                                           control_plane_ip(nodes))}})
    objs.append({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "calico-config", "namespace": "kube-system"},
                 "data": {"calico_backend": "bird", "cni_network_config": CALICO_CNI_CONFIG,
                          "typha_service_name": "none", "veth_mtu": "0"}})
    objs.append({"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"},
                 "type": "bootstrap.kubernetes.io/token",
                 "data": {"auth-extra-groups": b64("system:bootstrappers:kubeadm:default-node-token"),
                          "token-id": b64("abcdef"), "token-secret": b64(BOOTSTRAP_TOKEN_SECRET),
                          "usage-bootstrap-authentication": b64("true"), "usage-bootstrap-signing": b64("true")}})
    objs.append({"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": "registry-credentials", "namespace": "default"},
                 "type": "Opaque", "data": {"username": b64("ops"), "password": b64(SECRET_PASSWORD)}})
    for group, ver, prio in (("", "v1", 18000), ("apps", "v1", 17800)):
        name = f"{ver}.{group}" if group else ver + "."
        objs.append({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                     "metadata": {"name": name, "labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"}},
                     "spec": {"group": group, "version": ver, "groupPriorityMinimum": prio, "versionPriority": 15},
                     "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local",
                                                "message": "Local APIServices are always available",
                                                "lastTransitionTime": TS}]}})
    objs.append({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                 "metadata": {"name": "v1beta1.metrics.k8s.io", "labels": {"k8s-app": "metrics-server"}},
                 "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100,
                          "versionPriority": 100, "insecureSkipTLSVerify": True,
                          "service": {"name": "metrics-server", "namespace": "kube-system", "port": 443}},
                 "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Passed",
                                            "message": "all checks passed", "lastTransitionTime": TS}]}})
    objs.append({"apiVersion": "v1", "kind": "Event",
                 "metadata": {"name": "kube-proxy.17f0a1b2c3d4e5f6", "namespace": "kube-system"},
                 "involvedObject": {"kind": "DaemonSet", "namespace": "kube-system", "name": "kube-proxy",
                                    "apiVersion": "apps/v1"},
                 "reason": "SuccessfulCreate", "type": "Normal",
                 "message": f"Created pod: kube-proxy-{name_suffix(nodes[0][0], 'kube-proxy')}",
                 "source": {"component": "daemonset-controller"}, "count": 1, "firstTimestamp": TS,
                 "lastTimestamp": TS, "reportingComponent": "daemonset-controller"})
    return objs
