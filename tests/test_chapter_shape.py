"""One shape for every chapter (issue 13 §3): the registry carries each chapter's Settings, and only a
chapter's ``chapter.py`` records checks and figures."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from runbooks_lib.chapters import CHAPTERS
from runbooks_lib.params import Params

LIB = Path(__file__).resolve().parent.parent / "runbooks_lib"
SHAPED = ["system_init", "kube_proxy_modes", "etcd_backup"]  # the chapters built before issue 13


def test_params_imports_no_chapter_module() -> None:
    tree = ast.parse((LIB / "params.py").read_text())
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    assert [m for m in imported if m.startswith(("chapters.", "runbooks_lib.chapters."))] == []


def test_every_section_is_its_registry_entrys_settings() -> None:
    for ch in CHAPTERS:
        assert Params.model_fields[ch.section].annotation is ch.settings
        assert ch.settings.__module__ == f"runbooks_lib.chapters.{ch.section}.settings"
    # the shared fields come first, then the sections in registry order
    assert list(Params.model_fields)[-len(CHAPTERS):] == [ch.section for ch in CHAPTERS]


def test_loading_parameters_imports_no_chapter_step() -> None:
    code = ("import sys, runbooks_lib.params as p; p.Params(cluster_name='x'); "
            "print(sorted(m for m in sys.modules if m.startswith('runbooks_lib.chapters.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    loaded = eval(out.stdout)  # noqa: S307 - our own subprocess's printed list
    for package in SHAPED:
        mine = sorted(m for m in loaded if m.startswith(f"runbooks_lib.chapters.{package}."))
        assert mine == [f"runbooks_lib.chapters.{package}.settings"]


@pytest.mark.parametrize("ch", CHAPTERS, ids=lambda c: c.name)
def test_section_defaults_validate(ch) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(getattr(Params(cluster_name="x"), ch.section), ch.settings)



def _records(tree: ast.AST) -> list[int]:
    """Lines calling ``.check(`` or ``.figure(`` on a run (``run``, ``self.run``, ``kube_run``...)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("check", "figure"):
            receiver = node.func.value
            name = receiver.attr if isinstance(receiver, ast.Attribute) else getattr(receiver, "id", "")
            if name == "run" or name.endswith("_run"):
                lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("package", SHAPED)
def test_only_chapter_py_records(package: str) -> None:
    root = LIB / "chapters" / package
    assert (root / "chapter.py").is_file() and (root / "settings.py").is_file()
    recording = {str(p.relative_to(root)): _records(ast.parse(p.read_text())) for p in sorted(root.rglob("*.py"))}
    assert recording.pop("chapter.py"), "chapter.py records the chapter's checks"
    assert {f: lines for f, lines in recording.items() if lines} == {}


@pytest.mark.parametrize("package", SHAPED)
def test_no_program_in_a_string(package: str) -> None:
    """Programs shipped to nodes are files (``remote/*.py``), not Python held in string literals."""
    found = []
    for path in (LIB / "chapters" / package).rglob("*.py"):
        tree = ast.parse(path.read_text())
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                and isinstance(n.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if id(node) in docs:
                continue
            lines = node.value.splitlines() if isinstance(node, ast.Constant) and isinstance(node.value, str) else []
            if len(lines) > 2 and any(line.startswith(("import ", "def ", "from ")) for line in lines):
                found.append(f"{path.name}:{node.lineno}")
    assert found == []


def test_node_program_digests_a_snapshot(tmp_path: Path) -> None:
    """remote/digest.py, read as shipped and run as a node runs it (``python3 -S -c``)."""
    import hashlib

    from runbooks_lib.chapters.etcd_backup import remote

    body = bytes(range(256)) * 64
    snap = tmp_path / "s.db"
    snap.write_bytes(body + hashlib.sha256(body).digest())
    subprocess.run([sys.executable, "-S", "-c", remote.source("digest"), str(snap), str(tmp_path)],
                   check=True, timeout=30)
    assert (tmp_path / "sha").read_text() == hashlib.sha256(snap.read_bytes()).hexdigest()
    assert (tmp_path / "body").read_text() == hashlib.sha256(body).hexdigest() == (tmp_path / "trailer").read_text()

