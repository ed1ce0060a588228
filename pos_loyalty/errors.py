"""Domain errors. Each has a stable machine `code`; the HTTP adapter maps the family to a status.

Families: `InvalidInput` (the caller sent something unusable: 422), `NotFound` (404),
`Conflict` (409), `Unavailable` (the database or a device went away: 503).
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InvalidInput(DomainError):
    code = "invalid_input"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class Unavailable(DomainError):
    code = "unavailable"
