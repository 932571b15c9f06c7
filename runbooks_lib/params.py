"""Parameters: one schema, YAML loading, typed ``--set`` overrides, inventory, secret references.

Every error is a :class:`ParamsError` naming the file, the field and why; it is raised before
any host or cluster is contacted (the CLI exits 2).
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from .chapters.calico_ips.settings import Settings as CalicoIpsSettings
from .chapters.etcd_backup.settings import Settings as EtcdBackupSettings
from .chapters.kube_proxy_modes.settings import Settings as KubeProxyModesSettings
from .chapters.kubeadm.settings import Settings as KubeadmSettings
from .chapters.metrics_server.settings import Settings as MetricsServerSettings
from .chapters.openebs_storage.settings import Settings as OpenebsStorageSettings
from .chapters.system_init.settings import Settings as SystemInitSettings
from .inventory import InventoryError, load_ansible_inventory
from .secret_field import SECRET

PROJECT_ROOT = Path(os.environ.get("RUNBOOKS_HOME", Path(__file__).resolve().parent.parent))
DEFAULT_PARAMS = PROJECT_ROOT / "parameters" / "lab.yaml"
_RFC1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class ParamsError(ValueError):
    """Invalid parameters. ``str()`` is the message an operator sees."""

    def __init__(self, file: str, field: str, why: str) -> None:
        self.file, self.field, self.why = file, field, why
        super().__init__(f"{file}: {field}: {why}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HostSpec(_Strict):
    name: str
    address: str
    port: int = Field(22, ge=1, le=65535)
    user: str = "root"
    key: str | None = Field(None, description="path to the SSH private key")
    roles: list[Literal["control-plane", "worker", "etcd"]] = ["worker"]
    lab: bool = Field(False, description="a lab node: host-global steps are n/a")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _RFC1123.match(v.lower()):
            raise ValueError(f"{v!r} is not a valid host name")
        return v


class SSHSettings(_Strict):
    connect_timeout: float = Field(10.0, gt=0)
    command_timeout: float = Field(300.0, gt=0)
    forks: int = Field(20, ge=1, le=256)
    known_hosts: str | None = Field(None, description="known_hosts file; default ~/.ssh/known_hosts")
    strict_host_key: bool = True


class KubeSettings(_Strict):
    kubeconfig: str = "~/.kube/config"
    context: str | None = None
    request_timeout: float = Field(30.0, gt=0)


class Params(_Strict):
    """The whole parameter file."""

    cluster_name: str = Field(description="the name `confirm` must repeat for destructive steps")
    mode: Literal["plan", "apply"] = "plan"
    confirm: str = Field("", description="set to cluster_name to allow destructive steps")
    kubernetes_version: str = "1.30"
    inventory: str | None = Field(None, description="path to an Ansible inventory (INI or YAML)")
    hosts: list[HostSpec] = []
    only_hosts: list[str] = Field([], description="limit this run to these hosts")
    ssh: SSHSettings = SSHSettings()
    kube: KubeSettings = KubeSettings()
    secrets: dict[str, str] = Field(
        {}, description="named secrets: env:NAME or file:/path references", json_schema_extra=SECRET)
    system_init: SystemInitSettings = SystemInitSettings()
    kubeadm: KubeadmSettings = KubeadmSettings()
    kube_proxy_modes: KubeProxyModesSettings = KubeProxyModesSettings()
    calico_ips: CalicoIpsSettings = CalicoIpsSettings()
    metrics_server: MetricsServerSettings = MetricsServerSettings()
    openebs_storage: OpenebsStorageSettings = OpenebsStorageSettings()
    etcd_backup: EtcdBackupSettings = EtcdBackupSettings()

    # set by the loader, not by the file
    _source: str = PrivateAttr("<defaults>")

    @property
    def source(self) -> str:
        """The parameter file this came from."""
        return self._source

    @field_validator("cluster_name")
    @classmethod
    def _cluster(cls, v: str) -> str:
        if not _RFC1123.match(v):
            raise ValueError("must be lowercase letters, digits and '-' (RFC 1123)")
        return v

    @field_validator("kubernetes_version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not re.fullmatch(r"v?1\.\d{1,2}(\.\d{1,3})?", v):
            raise ValueError(f"{v!r} is not a Kubernetes version like 1.30 or 1.30.2")
        return v.lstrip("v")

    @model_validator(mode="after")
    def _hosts(self) -> Params:
        names = [h.name for h in self.hosts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate host names: {', '.join(dupes)}")
        unknown = sorted(set(self.only_hosts) - set(names))
        if unknown:
            raise ValueError(f"only_hosts names hosts not in the inventory: {', '.join(unknown)}")
        return self

    @property
    def name(self) -> str:
        """The parameter set's name (file stem), used in report file names."""
        return Path(self.source).stem if self.source != "<defaults>" else "defaults"

    @property
    def confirmed(self) -> bool:
        """Destructive steps allowed: apply mode and confirm repeats the cluster name."""
        return self.mode == "apply" and self.confirm == self.cluster_name

    @property
    def is_lab(self) -> bool:
        return bool(self.hosts) and all(h.lab for h in self.hosts)

    def selected_hosts(self) -> list[HostSpec]:
        return [h for h in self.hosts if not self.only_hosts or h.name in self.only_hosts]

    def hosts_with_role(self, role: str) -> list[HostSpec]:
        return [h for h in self.selected_hosts() if role in h.roles]


# ----------------------------------------------------------------------------- schema walking

def _unwrap(annotation: Any) -> list[Any]:
    """The member types of an annotation (Optional/Union flattened)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out.extend(_unwrap(arg))
        return out
    return [annotation]


def _model_at(path: list[str]) -> tuple[type[BaseModel] | None, Any]:
    """Follow ``path`` through the schema: (parent model, annotation of the last field)."""
    model: type[BaseModel] | None = Params
    annotation: Any = Params
    for part in path:
        if model is None:
            return None, None
        field = model.model_fields.get(part)
        if field is None:
            return model, None
        annotation = field.annotation
        nxt = [a for a in _unwrap(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        parent, model = model, (nxt[0] if nxt else None)
    return (parent if path else None), annotation


def secret_paths(model: type[BaseModel] = Params, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Dotted paths of every field the schema marks secret."""
    out: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, dict) and extra.get("secret"):
            out.append(prefix + (name,))
            continue
        for member in _unwrap(field.annotation):
            if isinstance(member, type) and issubclass(member, BaseModel):
                out.extend(secret_paths(member, prefix + (name,)))
    return out


def is_secret_path(dotted: str) -> bool:
    parts = tuple(dotted.split("."))
    return any(parts[: len(p)] == p for p in secret_paths())


def _typed_value(path: list[str], raw: str) -> Any:
    """Type a ``--set`` value by the schema: string fields stay strings (1.30 stays "1.30")."""
    _, annotation = _model_at(path)
    members = _unwrap(annotation) if annotation is not None else []
    if str in members and not any(m in (int, float, bool) for m in members):
        return raw
    if raw.lower() in ("null", "none", "~") and type(None) in members:
        return None
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def apply_override(data: dict[str, Any], spec: str, source: str = "--set") -> None:
    """Apply one ``a.b=value`` override to raw parameter data, typed by the schema."""
    key, sep, raw = spec.partition("=")
    if not sep or not key.strip():
        raise ParamsError(source, spec, "expected key=value")
    path = key.strip().split(".")
    node = data
    for part in path[:-1]:
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ParamsError(source, key, f"{part} is not a section")
        node = nxt
    node[path[-1]] = _typed_value(path, raw)


def _model_for(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model that holds the field at ``loc`` (list indexes skipped)."""
    model: type[BaseModel] = Params
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        found = None
        for member in _unwrap(field.annotation):
            for cand in [member, *(x for a in typing.get_args(member) for x in _unwrap(a))]:
                if isinstance(cand, type) and issubclass(cand, BaseModel):
                    found = found or cand
        if found is None:
            return None
        model = found
    return model


def _suggest(loc: tuple[Any, ...]) -> str:
    model = _model_for(loc[:-1])
    if model is None:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _format_error(err: ValidationError, source: str) -> ParamsError:
    first = err.errors()[0]
    loc = tuple(first["loc"])
    field = ".".join(str(p) for p in loc) or "<root>"
    if first["type"] == "extra_forbidden":
        why = "unknown key" + _suggest(loc)
    else:
        why = first["msg"]
        if first["type"] == "string_type" and isinstance(first.get("input"), (int, float)):
            why += f" (got {first['input']!r}: quote it in YAML, e.g. \"{first['input']}\")"
    more = len(err.errors()) - 1
    if more:
        why += f" (and {more} more error{'s' if more > 1 else ''})"
    return ParamsError(source, field, why)


def load_params(path: Path | str | None = None, overrides: list[str] | None = None) -> Params:
    """Load, override, resolve the inventory and validate. Touches no host."""
    file = (Path(path).expanduser() if path else DEFAULT_PARAMS).resolve()
    source = str(file)
    if not file.exists():
        raise ParamsError(source, "<file>", "parameter file not found")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ParamsError(source, "<file>", f"invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ParamsError(source, "<root>", "expected a mapping of parameters")
    for spec in overrides or []:
        apply_override(data, spec, f"{source} (--set {spec.partition('=')[0]})")
    base = file.parent
    # relative paths in the file are relative to the file
    for key in ("inventory",):
        if isinstance(data.get(key), str):
            data[key] = str((base / Path(data[key]).expanduser()).resolve())
    for section, key in (("ssh", "known_hosts"), ("kube", "kubeconfig")):
        node = data.get(section)
        if isinstance(node, dict) and isinstance(node.get(key), str):
            node[key] = str((base / Path(node[key]).expanduser()).resolve())
    if data.get("inventory"):
        if data.get("hosts"):
            raise ParamsError(source, "inventory", "give either hosts or inventory, not both")
        try:
            data["hosts"] = load_ansible_inventory(Path(data["inventory"]))
        except InventoryError as exc:
            raise ParamsError(source, "inventory", str(exc)) from exc
    for host in data.get("hosts") or []:
        if isinstance(host, dict) and isinstance(host.get("key"), str):
            host["key"] = str((base / Path(host["key"]).expanduser()).resolve())
    try:
        params = Params.model_validate(data)
    except ValidationError as exc:
        raise _format_error(exc, source) from None
    params._source = source
    return params


def resolve_secret(ref: str, field: str = "secret") -> str:
    """Read a secret from ``env:NAME`` or ``file:/path``; a bare value is returned as is."""
    if ref.startswith("env:"):
        name = ref[4:]
        value = os.environ.get(name)
        if value is None:
            raise ParamsError("<environment>", field, f"environment variable {name} is not set")
        return value
    if ref.startswith("file:"):
        p = Path(ref[5:]).expanduser()
        if not p.exists():
            raise ParamsError(str(p), field, "secret file not found")
        return p.read_text(encoding="utf-8").strip()
    return ref


def secret_values(params: Params) -> list[str]:
    """Every secret value the parameters hold or reference (for the redactor)."""
    out: list[str] = []
    dumped = params.model_dump()
    for path in secret_paths():
        node: Any = dumped
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        values = node.values() if isinstance(node, dict) else [node]
        for v in values:
            if isinstance(v, str) and v:
                out.append(v)
                try:
                    out.append(resolve_secret(v, ".".join(path)))
                except ParamsError:
                    continue
    return out


def schema_json() -> str:
    """The JSON schema of a parameter file (parameters/schema.json is this, kept current by a test)."""
    import json

    schema = Params.model_json_schema(mode="validation")
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
