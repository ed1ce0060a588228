"""Domain errors. Each has a stable machine `code`, and its family a `status`: the HTTP status
the API answers with, also what an idempotency record keeps for a refused sale.

Families: `InvalidInput` (the caller sent something unusable: 422), `NotFound` (404),
`Conflict` (409). A database or device that went away is not a domain error: the API answers
those 503 from the driver's own exceptions.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InvalidInput(DomainError):
    code = "invalid_input"
    status = 422


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    status = 409
