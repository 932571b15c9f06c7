"""Refusals rendered as v1 Status objects, and the server's clock format."""

from __future__ import annotations

import datetime as dt
from typing import Any

Obj = dict[str, Any]


class ApiError(Exception):
    """A request the API refuses: rendered as a v1 Status with ``code``."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> Obj:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "details": self.details, "code": self.code}


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
