"""Read parameter and inventory files as untrusted input.

A file that is missing, a directory, unreadable, too large, binary or not UTF-8 is a
:class:`FileProblem` with a one-line reason. YAML errors keep the line, the column and the key
on that line, never the text around them (that line may hold a token). A key given twice in one
mapping is an error: YAML would silently keep the last one, so a ``mode: plan`` at the top could
be overridden by a ``mode: apply`` further down.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1 << 20  # no parameter file or inventory is a megabyte
_QUOTED = re.compile(r"'[^']{2,}'|\"[^\"]{2,}\"")
_KEY_ON_LINE = re.compile(r"^\s*-?\s*([A-Za-z_][A-Za-z0-9_-]{0,63})\s*:")


class FileProblem(ValueError):
    """A file that cannot be read as text or YAML; ``str()`` never quotes the file's content."""


def read_text(path: Path, what: str = "file") -> str:
    """The file's text, or :class:`FileProblem` saying why it is not a readable ``what``."""
    try:
        if path.is_dir():
            raise FileProblem(f"is a directory, not a {what}")
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise FileProblem(f"{what} not found") from None
    except PermissionError:
        raise FileProblem(f"cannot read the {what}: permission denied") from None
    except OSError as exc:
        raise FileProblem(f"cannot read the {what}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > MAX_BYTES:
        raise FileProblem(f"larger than {MAX_BYTES // 1024} KiB: not a {what}")
    if b"\x00" in data:
        raise FileProblem(f"binary data (NUL bytes), not a {what}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise FileProblem(f"not UTF-8 text (invalid byte at line {line}, column {column}); "
                          "save it as UTF-8") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = key_node.value
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {_safe_name(key)} (first given at line {seen[key]})",
                key_node.start_mark)
        seen[key] = key_node.start_mark.line + 1
    loader.flatten_mapping(node)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _safe_name(key: str) -> str:
    """A key is shown only when it looks like a name (a misplaced value is not echoed)."""
    return f"'{key}'" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,63}", key) else "(not shown)"


def load_yaml(text: str) -> Any:
    """Parse untrusted YAML (safe tags only, unique keys); errors are :class:`FileProblem`."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise FileProblem(describe_yaml_error(exc, text)) from None
    except RecursionError:
        raise FileProblem("invalid YAML: nested too deeply") from None


def describe_yaml_error(exc: yaml.YAMLError, text: str) -> str:
    """Line, column, the key on that line and what PyYAML found, with quoted document text removed."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return "invalid YAML"
    mark = exc.problem_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}"
    lines = text.splitlines()
    if mark.line < len(lines):
        key = _KEY_ON_LINE.match(lines[mark.line])
        if key:
            where += f" (key '{key.group(1)}')"
    what = " ".join(part for part in (exc.context, exc.problem) if part)
    if not what.startswith("duplicate key"):
        what = _QUOTED.sub("(not shown)", what)
    return f"invalid YAML at {where}: {what}" if what else f"invalid YAML at {where}"
