"""Shared pytest configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["kube_double.fixture"]
# runner fixtures (notebooks that fail, time out or kill their kernel on purpose) are inputs to
# tests/test_runner.py, not notebooks for nbval to collect
collect_ignore_glob = ["fixtures/*"]

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("RUNBOOKS_SECRET_"):
            monkeypatch.delenv(var)
