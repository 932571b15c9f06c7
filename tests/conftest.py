"""Shared pytest configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["kube_double.fixture"]

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
