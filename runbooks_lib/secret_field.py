"""The schema marker for secret parameters: the runner scrubs them, the redactor masks them."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic.config import JsonDict

SECRET: JsonDict = {"secret": True}


def secret_field(default: str | None = None, description: str = "") -> Any:
    """A parameter field marked secret (give a value, or a reference env:NAME / file:/path)."""
    return Field(default, description=description, json_schema_extra=SECRET)
