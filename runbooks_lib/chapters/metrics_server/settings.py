"""Parameters of the metrics-server chapter (the `metrics_server:` section of a parameter file)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Settings(BaseModel):
    """Not built yet: the section exists so a parameter file can be validated."""

    model_config = ConfigDict(extra="forbid")
