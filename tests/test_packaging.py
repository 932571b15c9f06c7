"""Packaging: environment.yml lists exactly pyproject.toml's pinned dependencies."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _pyproject_deps() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = data["project"]
    deps = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        deps += extra
    return {d.replace(" ", "").lower() for d in deps}


def _environment_deps() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip: list[str] = []
    for dep in env["dependencies"]:
        if isinstance(dep, dict) and "pip" in dep:
            pip += dep["pip"]
    return {d.replace(" ", "").lower() for d in pip if not d.startswith("-e")}


def test_environment_matches_pyproject() -> None:
    py, env = _pyproject_deps(), _environment_deps()
    assert py == env, f"only in pyproject: {sorted(py - env)}; only in environment.yml: {sorted(env - py)}"


def test_every_dependency_is_pinned() -> None:
    assert all("==" in d for d in _pyproject_deps())


def test_required_packages_present() -> None:
    names = {d.split("==")[0] for d in _pyproject_deps()}
    for pkg in ("jupyterlab", "papermill", "nbconvert", "fabric", "kubernetes", "pandas", "matplotlib",
                "ipywidgets", "pytest", "nbval", "pydantic", "cryptography"):
        assert pkg in names, pkg
