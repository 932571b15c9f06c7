"""Offline validation of a kubeadm config file with JSON Schemas of the kubeadm kinds (pure).

Written from the published API references: kubeadm v1beta3
(https://kubernetes.io/docs/reference/config-api/kubeadm-config.v1beta3/), v1beta4
(https://kubernetes.io/docs/reference/config-api/kubeadm-config.v1beta4/), KubeletConfiguration v1beta1
(https://kubernetes.io/docs/reference/config-api/kubelet-config.v1beta1/) and KubeProxyConfiguration
v1alpha1 (https://kubernetes.io/docs/reference/config-api/kube-proxy-config.v1alpha1/). Unknown fields,
wrong types and malformed CIDRs are errors, as ``kubeadm config validate`` makes them; on a node where
kubeadm exists the chapter runs that too.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import jsonschema
import yaml

Schema = dict[str, Any]

_STR: Schema = {"type": "string"}
_BOOL: Schema = {"type": "boolean"}
_INT: Schema = {"type": "integer"}
_STRS: Schema = {"type": "array", "items": _STR}
_DURATION: Schema = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"}
_MAP: Schema = {"type": "object", "additionalProperties": _STR}
_ARGS_LIST: Schema = {"type": "array", "items": {"type": "object", "additionalProperties": False,
                                                 "required": ["name", "value"],
                                                 "properties": {"name": _STR, "value": _STR}}}
_ENVS: Schema = {"type": "array", "items": {"type": "object", "required": ["name"]}}
_TAINT: Schema = {"type": "object", "additionalProperties": False, "required": ["key", "effect"],
                  "properties": {"key": _STR, "value": _STR, "timeAdded": _STR,
                                 "effect": {"enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]}}}
_VOLUME: Schema = {"type": "object", "additionalProperties": False, "required": ["name", "hostPath", "mountPath"],
                   "properties": {"name": _STR, "hostPath": _STR, "mountPath": _STR, "readOnly": _BOOL,
                                  "pathType": _STR}}
_CIDRS: Schema = {"type": "string", "format": "cidr-list"}
_ENDPOINT: Schema = {"type": "object", "additionalProperties": False,
                     "properties": {"advertiseAddress": {"type": "string", "format": "ip"},
                                    "bindPort": {"type": "integer", "minimum": 1, "maximum": 65535}}}
_TOKEN: Schema = {"type": "object", "additionalProperties": False, "required": ["token"],
                  "properties": {"token": {"type": "string", "pattern": r"^[a-z0-9]{6}\.[a-z0-9]{16}$"},
                                 "description": _STR, "ttl": _DURATION, "expires": _STR,
                                 "usages": _STRS, "groups": _STRS}}


def _obj(props: Schema, required: tuple[str, ...] = ()) -> Schema:
    return {"type": "object", "additionalProperties": False, "properties": props, "required": list(required)}


def _kubeadm(v4: bool) -> dict[str, Schema]:
    args = _ARGS_LIST if v4 else _MAP
    extra_v4: Schema = {"extraEnvs": _ENVS} if v4 else {}
    component = _obj({"extraArgs": args, "extraVolumes": {"type": "array", "items": _VOLUME}, **extra_v4})
    node_reg = _obj({"name": _STR, "criSocket": _STR, "taints": {"type": ["array", "null"], "items": _TAINT},
                     "kubeletExtraArgs": args, "ignorePreflightErrors": _STRS,
                     "imagePullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
                     **({"imagePullSerial": _BOOL} if v4 else {})})
    timeouts = _obj({k: _DURATION for k in ("controlPlaneComponentHealthCheck", "kubeletHealthCheck",
                                             "kubernetesAPICall", "etcdAPICall", "tlsBootstrap", "discovery",
                                             "upgradeManifests")})
    head = {"apiVersion": {"const": f"kubeadm.k8s.io/{'v1beta4' if v4 else 'v1beta3'}"}, "kind": _STR}
    init = _obj({**head, "bootstrapTokens": {"type": "array", "items": _TOKEN}, "nodeRegistration": node_reg,
                 "localAPIEndpoint": _ENDPOINT, "certificateKey": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                 "skipPhases": _STRS, "patches": _obj({"directory": _STR}),
                 **({"timeouts": timeouts, "dryRun": _BOOL} if v4 else {})}, ("apiVersion", "kind"))
    api_server = _obj({**component["properties"], "certSANs": _STRS,
                       **({} if v4 else {"timeoutForControlPlane": _DURATION})})
    local_etcd = _obj({"imageRepository": _STR, "imageTag": _STR, "dataDir": _STR, "extraArgs": args,
                       "serverCertSANs": _STRS, "peerCertSANs": _STRS, **extra_v4})
    external_etcd = _obj({"endpoints": _STRS, "caFile": _STR, "certFile": _STR, "keyFile": _STR}, ("endpoints",))
    cluster = _obj({
        **head,
        "etcd": _obj({"local": local_etcd, "external": external_etcd}),
        "networking": _obj({"serviceSubnet": _CIDRS, "podSubnet": _CIDRS, "dnsDomain": _STR}),
        "kubernetesVersion": {"type": "string", "pattern": r"^(v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?|stable(-\d+(\.\d+)?)?|latest(-\d+\.\d+)?)$"},
        "controlPlaneEndpoint": _STR, "apiServer": api_server, "controllerManager": component,
        "scheduler": component,
        "dns": _obj({"imageRepository": _STR, "imageTag": _STR, **({"disabled": _BOOL} if v4 else {})}),
        "certificatesDir": _STR, "imageRepository": _STR, "featureGates": {"type": "object",
                                                                             "additionalProperties": _BOOL},
        "clusterName": _STR,
        **({"proxy": _obj({"disabled": _BOOL}),
            "encryptionAlgorithm": {"enum": ["RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256", "ECDSA-P384"]},
            "certificateValidityPeriod": _DURATION, "caCertificateValidityPeriod": _DURATION} if v4 else {}),
    }, ("apiVersion", "kind"))
    hash_ = {"type": "string", "pattern": r"^sha256:[0-9a-f]{64}$"}
    discovery = _obj({
        "bootstrapToken": _obj({"token": _TOKEN["properties"]["token"], "apiServerEndpoint": _STR,
                                "caCertHashes": {"type": "array", "items": hash_},
                                "unsafeSkipCAVerification": _BOOL}, ("token",)),
        "file": _obj({"kubeConfigPath": _STR}), "tlsBootstrapToken": _STR,
        **({} if v4 else {"timeout": _DURATION})})
    join = _obj({**head, "nodeRegistration": node_reg, "caCertPath": _STR, "discovery": discovery,
                 "controlPlane": _obj({"localAPIEndpoint": _ENDPOINT, "certificateKey": init["properties"][
                     "certificateKey"]}),
                 "skipPhases": _STRS, "patches": _obj({"directory": _STR}),
                 **({"timeouts": timeouts, "dryRun": _BOOL} if v4 else {})}, ("apiVersion", "kind", "discovery"))
    return {"InitConfiguration": init, "ClusterConfiguration": cluster, "JoinConfiguration": join}


#: KubeletConfiguration v1beta1 fields (kubelet-config.v1beta1 reference)
KUBELET_FIELDS = (
    "enableServer staticPodPath podLogsDir syncFrequency fileCheckFrequency httpCheckFrequency staticPodURL "
    "staticPodURLHeader address port readOnlyPort tlsCertFile tlsPrivateKeyFile tlsCipherSuites tlsMinVersion "
    "rotateCertificates serverTLSBootstrap authentication authorization registryPullQPS registryBurst "
    "imagePullCredentialsVerificationPolicy preloadedImagesVerificationAllowlist eventRecordQPS eventBurst "
    "enableDebuggingHandlers enableContentionProfiling healthzPort healthzBindAddress oomScoreAdj clusterDomain "
    "clusterDNS streamingConnectionIdleTimeout nodeStatusUpdateFrequency nodeStatusReportFrequency "
    "nodeLeaseDurationSeconds imageMinimumGCAge imageMaximumGCAge imageGCHighThresholdPercent "
    "imageGCLowThresholdPercent volumeStatsAggPeriod kubeletCgroups systemCgroups cgroupRoot cgroupsPerQOS "
    "cgroupDriver cpuManagerPolicy singleProcessOOMKill cpuManagerPolicyOptions cpuManagerReconcilePeriod "
    "memoryManagerPolicy topologyManagerPolicy topologyManagerScope topologyManagerPolicyOptions qosReserved "
    "runtimeRequestTimeout hairpinMode maxPods podCIDR podPidsLimit resolvConf runOnce cpuCFSQuota "
    "cpuCFSQuotaPeriod nodeStatusMaxImages maxOpenFiles contentType kubeAPIQPS kubeAPIBurst serializeImagePulls "
    "maxParallelImagePulls evictionHard evictionSoft evictionSoftGracePeriod evictionPressureTransitionPeriod "
    "evictionMaxPodGracePeriod evictionMinimumReclaim mergeDefaultEvictionSettings podsPerCore "
    "enableControllerAttachDetach protectKernelDefaults makeIPTablesUtilChains iptablesMasqueradeBit "
    "iptablesDropBit featureGates failSwapOn memorySwap containerLogMaxSize containerLogMaxFiles "
    "containerLogMaxWorkers containerLogMonitorInterval configMapAndSecretChangeDetectionStrategy systemReserved "
    "kubeReserved reservedSystemCPUs showHiddenMetricsForVersion systemReservedCgroup kubeReservedCgroup "
    "enforceNodeAllocatable allowedUnsafeSysctls volumePluginDir providerID kernelMemcgNotification logging "
    "enableSystemLogHandler enableSystemLogQuery shutdownGracePeriod shutdownGracePeriodCriticalPods "
    "shutdownGracePeriodByPodPriority crashLoopBackOff reservedMemory enableProfilingHandler "
    "enableDebugFlagsHandler seccompDefault memoryThrottlingFactor registerWithTaints registerNode tracing "
    "localStorageCapacityIsolation containerRuntimeEndpoint imageServiceEndpoint failCgroupV1 userNamespaces"
).split()
#: KubeProxyConfiguration v1alpha1 fields (kube-proxy-config.v1alpha1 reference)
PROXY_FIELDS = (
    "featureGates clientConnection logging hostnameOverride bindAddress healthzBindAddress metricsBindAddress "
    "bindAddressHardFail enableProfiling showHiddenMetricsForVersion mode iptables ipvs nftables winkernel "
    "detectLocalMode detectLocal clusterCIDR nodePortAddresses oomScoreAdj conntrack configSyncPeriod "
    "portRange windowsRunAsService linux"
).split()


def _loose(fields: list[str], api_version: str, typed: Schema) -> Schema:
    props: Schema = {f: {} for f in fields}
    props.update(typed)
    props.update({"apiVersion": {"const": api_version}, "kind": _STR})
    return {"type": "object", "additionalProperties": False, "properties": props}


KUBELET: Schema = _loose(KUBELET_FIELDS, "kubelet.config.k8s.io/v1beta1", {
    "cgroupDriver": {"enum": ["systemd", "cgroupfs"]}, "serverTLSBootstrap": _BOOL, "rotateCertificates": _BOOL,
    "failSwapOn": _BOOL, "containerRuntimeEndpoint": _STR, "clusterDNS": _STRS, "maxPods": _INT,
    "podCIDR": _CIDRS})
PROXY: Schema = _loose(PROXY_FIELDS, "kubeproxy.config.k8s.io/v1alpha1", {
    "mode": {"enum": ["", "iptables", "ipvs", "nftables", "kernelspace"]}, "clusterCIDR": _CIDRS})

_CHECKER = jsonschema.FormatChecker()


@_CHECKER.checks("cidr-list", raises=ValueError)
def _cidr_list(value: object) -> bool:
    """podSubnet/serviceSubnet: one CIDR, or an IPv4,IPv6 pair (dual stack)."""
    if not isinstance(value, str):
        return True
    parts = value.split(",")
    if len(parts) > 2:
        raise ValueError("at most two CIDRs (one IPv4, one IPv6)")
    for p in parts:
        ipaddress.ip_network(p.strip(), strict=True)
    return True


def schema_for(api_version: str, kind: str) -> Schema | None:
    """The schema of one document kind (None: a kind kubeadm does not read)."""
    if api_version.startswith("kubeadm.k8s.io/"):
        v4 = api_version.endswith("/v1beta4")
        if api_version not in ("kubeadm.k8s.io/v1beta3", "kubeadm.k8s.io/v1beta4"):
            return None
        return _kubeadm(v4).get(kind)
    if kind == "KubeletConfiguration":
        return KUBELET
    if kind == "KubeProxyConfiguration":
        return PROXY
    return None


def validate(text: str) -> list[str]:
    """Every problem of a multi-document kubeadm config ("doc N Kind: path: message"); [] when valid."""
    problems: list[str] = []
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        return [f"not YAML: {exc}"]
    seen: set[str] = set()
    for i, doc in enumerate(docs, 1):
        if not isinstance(doc, dict):
            problems.append(f"doc {i}: not a mapping")
            continue
        api, kind = str(doc.get("apiVersion", "")), str(doc.get("kind", ""))
        schema = schema_for(api, kind)
        if schema is None:
            problems.append(f"doc {i}: unknown kind {kind!r} in {api!r} (kubeadm reads InitConfiguration, "
                            "ClusterConfiguration, JoinConfiguration, KubeletConfiguration, KubeProxyConfiguration)")
            continue
        if kind in seen:
            problems.append(f"doc {i} {kind}: given twice")
        seen.add(kind)
        validator = jsonschema.Draft202012Validator(schema, format_checker=_CHECKER)
        for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
            where = ".".join(str(p) for p in err.absolute_path) or "(top)"
            problems.append(f"doc {i} {kind}: {where}: {err.message}")
    apis = {str(d.get("apiVersion")) for d in docs if isinstance(d, dict)
            and str(d.get("apiVersion", "")).startswith("kubeadm.k8s.io/")}
    if len(apis) > 1:
        problems.append(f"kubeadm documents mix API versions: {', '.join(sorted(apis))}")
    return problems
