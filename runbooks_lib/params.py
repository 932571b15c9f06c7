"""Parameters: one schema, YAML loading, typed ``--set`` overrides, inventory, secret references.

Every error is a :class:`ParamsError` naming the file and, for every bad field, the field and why;
it is raised before any host or cluster is contacted (the CLI exits 2). Files are untrusted input
(:mod:`.paramfile`); an error never echoes the value of a secret field.

``lab`` on a host is a *claim*, not a fact: the system-init chapter verifies it from the node's
facts at run time (container, the lab's marker file, its key in the lab's known_hosts), and a
host that claims ``lab`` but is not one is an error there, never "n/a in lab".
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .chapters import CHAPTERS
from .inventory import InventoryError, load_ansible_inventory
from .paramcheck import RFC1123_LABEL, check_host_address, check_readable_file, cross_problems, typed_part
from .paramfile import FileProblem, load_yaml, read_text
from .redact import Redactor
from .secret_field import SECRET

PROJECT_ROOT = Path(os.environ.get("RUNBOOKS_HOME", Path(__file__).resolve().parent.parent))
DEFAULT_PARAMS = PROJECT_ROOT / "parameters" / "lab.yaml"


class ParamsError(ValueError):
    """Invalid parameters. ``str()`` is the message an operator sees: one ``file: field: why`` line
    per problem. ``field``/``why`` are the first problem's, ``problems`` holds them all."""

    def __init__(self, file: str, field: str, why: str,
                 more: list[tuple[str, str]] | None = None, missing_inventory: Path | None = None) -> None:
        self.problems = [(field, why), *(more or [])]
        self.file, self.field, self.why = file, field, why
        self.missing_inventory = missing_inventory  # the inventory file named, when it does not exist
        super().__init__("\n".join(f"{file}: {f}: {w}" for f, w in self.problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HostSpec(_Strict):
    name: str
    address: str = Field(description="IP address or RFC 1123 host name")
    port: int = Field(22, ge=1, le=65535)
    user: str = "root"
    key: str | None = Field(None, description="path to the SSH private key (must exist at load time)")
    roles: list[Literal["control-plane", "worker", "etcd"]] = ["worker"]
    lab: bool = Field(False, description="claims a lab node (host-global steps n/a); a claim the system-init "
                                         "chapter verifies from the node's facts, an error when they disagree")

    @field_validator("name", "address")
    @classmethod
    def _host(cls, v: str) -> str:
        return check_host_address(v)

    @field_validator("user")
    @classmethod
    def _user(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}", v):
            raise ValueError(f"{v[:80]!r} is not a user name (letters, digits, '_', '.', '@', '-')")
        return v

    @field_validator("key")
    @classmethod
    def _key(cls, v: str | None) -> str | None:
        if v is not None and v.endswith(".pub"):
            raise ValueError(f"{v} is a public key; give the private key file")
        return v if v is None else check_readable_file(v, "SSH key file")


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


class _Core(_Strict):
    """The parameter file's fields shared by every chapter; :class:`Params` adds the chapters' sections."""

    cluster_name: str = Field(description="the name `confirm` must repeat for destructive steps")
    mode: Literal["plan", "apply"] = "plan"
    confirm: str = Field("", description="set to cluster_name to allow destructive steps (mode apply); any "
                                         "other value is an error; with mode plan it is allowed and unused")
    kubernetes_version: str = "1.30"
    inventory: str | None = Field(None, description="path to an Ansible inventory (INI or YAML)")
    hosts: list[HostSpec] = []
    only_hosts: list[str] = Field([], description="limit this run to these hosts")
    ssh: SSHSettings = SSHSettings()
    kube: KubeSettings = KubeSettings()
    secrets: dict[str, str] = Field(
        {}, description="named secrets: env:NAME or file:/path references", json_schema_extra=SECRET)

    # set by the loader, not by the file
    _source: str = PrivateAttr("<defaults>")

    @property
    def source(self) -> str:
        """The parameter file this came from."""
        return self._source

    @field_validator("cluster_name")
    @classmethod
    def _cluster(cls, v: str) -> str:
        if len(v) > 63 or not RFC1123_LABEL.fullmatch(v):
            raise ValueError("must be at most 63 lowercase letters, digits and '-' (an RFC 1123 label)")
        return v

    @field_validator("kubernetes_version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not re.fullmatch(r"v?1\.\d{1,2}(\.\d{1,3})?", v):
            raise ValueError(f"{v!r} is not a Kubernetes version like 1.30 or 1.30.2")
        return v.lstrip("v")

    @model_validator(mode="after")
    def _consistent(self) -> _Core:
        problems = cross_problems(self.model_dump(include=_CROSS_FIELDS))
        if problems:
            raise PydanticCustomError("params_cross", "{summary}", {
                "summary": "; ".join(f"{f}: {w}" for f, w in problems), "problems": tuple(problems)})
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
        """Every host *claims* to be a lab node (verified from facts by system-init, not here)."""
        return bool(self.hosts) and all(h.lab for h in self.hosts)

    def selected_hosts(self) -> list[HostSpec]:
        return [h for h in self.hosts if not self.only_hosts or h.name in self.only_hosts]

    def hosts_with_role(self, role: str) -> list[HostSpec]:
        return [h for h in self.selected_hosts() if role in h.roles]


if TYPE_CHECKING:
    class Params(_Core):
        """The whole parameter file (a section is typed where its chapter reads it:
        ``settings: Settings = params.etcd_backup``)."""

        def __getattr__(self, section: str) -> Any: ...
else:
    #: the whole parameter file: the shared fields, then one section per chapter of the registry
    #: (``chapters/<section>/settings.py``'s Settings, imported through the registry)
    Params = create_model("Params", __base__=_Core, __module__=__name__, __doc__="The whole parameter file.",
                          **{ch.section: (ch.settings, ch.settings()) for ch in CHAPTERS})

_CROSS_FIELDS: dict[str, Any] = {
    "cluster_name": True, "mode": True, "confirm": True, "hosts": {"__all__": {"name"}}, "only_hosts": True,
    "ssh": {"known_hosts", "strict_host_key"}, "etcd_backup": {"node", "copy_to_host"},
    "kube_proxy_modes": {"bench_host"}, "kubeadm": {"reset"}}



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


def _secrets_in(path: list[str], value: Any) -> list[str]:
    """Secret fields a structured ``--set`` value at ``path`` would carry (``kubeadm={token: x}``)."""
    if not isinstance(value, (dict, list)):
        return []
    found = []
    for p in secret_paths():
        if list(p) == path[: len(p)]:
            found.append(".".join(p))
        elif list(p[: len(path)]) == path:
            node: Any = value
            for part in p[len(path):]:
                node = node.get(part) if isinstance(node, dict) else None
            if node is not None:
                found.append(".".join(p))
    return found


def _typed_value(path: list[str], raw: str) -> Any:
    """Type a ``--set`` value by the schema: string fields stay strings (1.30 stays "1.30")."""
    _, annotation = _model_at(path)
    if annotation is None and len(path) > 1:  # an entry of a mapping field (secrets.NAME): its value type
        _, outer = _model_at(path[:-1])
        args = typing.get_args(outer) if typing.get_origin(outer) is dict else ()
        annotation = args[1] if len(args) == 2 else None
    members = _unwrap(annotation) if annotation is not None else []
    if str in members and not any(m in (int, float, bool) for m in members):
        return raw
    if raw.lower() in ("null", "none", "~") and type(None) in members:
        return None
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _set_key(spec: str) -> str:
    """The key of a ``--set`` spec for messages; anything not shaped like a key is not shown."""
    key = spec.partition("=")[0].strip()
    return key if re.fullmatch(r"[\w.-]{1,100}", key) else "(not shown)"


def apply_override(data: dict[str, Any], spec: str, source: str = "--set") -> None:
    """Apply one ``a.b=value`` override to raw parameter data, typed by the schema."""
    key, sep, raw = spec.partition("=")
    if not sep or not key.strip():
        raise ParamsError(source, _set_key(spec), "expected key=value")
    path = key.strip().split(".")
    node = data
    for part in path[:-1]:
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ParamsError(source, key, f"{part} is not a section")
        node = nxt
    value = _typed_value(path, raw)
    inside = _secrets_in(path, value)
    if inside:
        raise ParamsError(source, key, f"holds secret fields ({', '.join(inside)}): set each on its own, e.g. "
                          f"--set {inside[0] if inside[0] != 'secrets' else 'secrets.NAME'}=env:VAR, so the "
                          "runner can keep it out of the report")
    node[path[-1]] = value


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


_SECRETISH = re.compile(r"token|password|passwd|secret|certificate_key|credential", re.I)


def _is_secretish(parts: list[str]) -> bool:
    """Conservative: a schema-marked secret, anything under ``secrets``, or a secret-sounding name."""
    return bool(parts) and (parts[0] == "secrets" or is_secret_path(".".join(parts))
                            or any(_SECRETISH.search(p) for p in parts))


def _raw_secrets(data: dict[str, Any]) -> list[str]:
    """Scalar values found at secret paths of raw data (to mask from every message)."""
    out: list[str] = []
    for path in secret_paths():
        node: Any = data
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        for v in node.values() if isinstance(node, dict) else [node]:
            if isinstance(v, (str, int, float)) and not isinstance(v, bool) and str(v):
                out.append(str(v))
    return out


def _field_name(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    """Dotted field; a host is named by its name (``hosts.cp1.address``), not its index."""
    parts = [str(p) for p in loc]
    hosts = typed_part(data, "hosts", list)
    if len(loc) >= 2 and loc[0] == "hosts" and isinstance(loc[1], int) and loc[1] < len(hosts) \
            and isinstance(hosts[loc[1]], dict):
        try:  # named by its name only when that is a valid host name (never echo a hostile one)
            parts[1] = check_host_address(hosts[loc[1]].get("name"))
        except (ValueError, TypeError):
            pass
    return ".".join(parts) or "<root>"


def _why(e: Any, secret: bool) -> str:
    """Why one field failed. A secret field's value is never shown: pydantic's own messages do not
    quote the input, but a validator's ``value_error`` may, so those are replaced."""
    if e["type"] == "extra_forbidden":
        return "unknown key" + _suggest(tuple(e["loc"]))
    if secret and e["type"] in ("value_error", "assertion_error"):
        return "invalid value (not shown: a secret field)"
    why = str(e["msg"]).removeprefix("Value error, ")
    number = e.get("input")
    if e["type"] == "string_type" and isinstance(number, (int, float)) and not isinstance(number, bool):
        why += " (YAML read a number: quote it)" if secret else f" (got {number!r}: quote it in YAML, e.g. \"{number}\")"
    return why


def _format_error(err: ValidationError, source: str, data: dict[str, Any], inventory: str | None) -> ParamsError:
    """One (field, why) per error, every one of them; secret values never appear."""
    problems: list[tuple[str, str]] = []
    crossed = False
    for e in err.errors():
        if e["type"] == "params_cross":
            crossed = True
            problems.extend(e["ctx"]["problems"])
            continue
        loc = tuple(e["loc"])
        why = _why(e, _is_secretish([str(p) for p in loc if not isinstance(p, int)]))
        if inventory and loc[:1] == ("hosts",):
            why += f" (from inventory {inventory})"
        problems.append((_field_name(loc, data), why))
    if not crossed:  # the model validator did not run: check what spans fields on the raw data too
        problems.extend(cross_problems(data))
    redactor = Redactor(_raw_secrets(data))
    problems = [(redactor.redact(f), redactor.redact(w)) for f, w in dict.fromkeys(problems)]
    return ParamsError(source, problems[0][0], problems[0][1], problems[1:])


def _resolved(base: Path, value: str, source: str, field: str) -> str:
    try:
        return str((base / Path(value).expanduser()).resolve())
    except (ValueError, OSError, RuntimeError) as exc:
        raise ParamsError(source, field, f"not a usable path ({type(exc).__name__})") from None


def load_params(path: Path | str | None = None, overrides: list[str] | None = None) -> Params:
    """Load, override, resolve the inventory and validate. Touches no host."""
    source = str(path) if path else str(DEFAULT_PARAMS)
    try:
        file = (Path(path).expanduser() if path else DEFAULT_PARAMS).resolve()
        source = str(file)
        data = load_yaml(read_text(file, "parameter file"))
    except FileProblem as exc:
        raise ParamsError(source, "<file>", str(exc)) from None
    except (ValueError, OSError, RuntimeError) as exc:
        raise ParamsError(source, "<file>", f"not a usable path ({type(exc).__name__})") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ParamsError(source, "<root>", "expected a mapping of parameters")
    for spec in overrides or []:
        apply_override(data, spec, f"{source} (--set {_set_key(spec)})")
    base = file.parent
    # relative paths in the file are relative to the file
    if isinstance(data.get("inventory"), str) and data["inventory"]:
        data["inventory"] = _resolved(base, data["inventory"], source, "inventory")
    for section, key in (("ssh", "known_hosts"), ("kube", "kubeconfig")):
        node = data.get(section)
        if isinstance(node, dict) and isinstance(node.get(key), str):
            node[key] = _resolved(base, node[key], source, f"{section}.{key}")
    inventory = data.get("inventory") if isinstance(data.get("inventory"), str) else None
    if inventory:
        if data.get("hosts"):
            raise ParamsError(source, "inventory", "give either hosts or inventory, not both")
        try:
            data["hosts"] = load_ansible_inventory(Path(inventory))
        except InventoryError as exc:
            missing = Path(inventory) if not Path(inventory).exists() else None
            raise ParamsError(source, "inventory", exc.problems[0], [("inventory", p) for p in exc.problems[1:]],
                              missing_inventory=missing) from None
    for i, host in enumerate(typed_part(data, "hosts", list)):
        if isinstance(host, dict) and isinstance(host.get("key"), str):
            host["key"] = _resolved(base, host["key"], source, f"hosts.{i}.key")
    try:
        params = Params.model_validate(data)
    except ValidationError as exc:
        raise _format_error(exc, source, data, inventory) from None
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
        try:
            return read_text(p, "secret file").strip()
        except FileProblem as exc:
            raise ParamsError(str(p), field, str(exc)) from None
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
