"""One error shape for every failure: `{"error": {"code", "message", "details"}}`.

Domain errors map by family to a status; validation errors name the field; a database that went
away is a 503 the till can retry; nothing a client sends can produce a bare 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from pos_loyalty.errors import DomainError

log = logging.getLogger("pos_loyalty.api")

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "unavailable",
}


# PostgreSQL's SQLSTATE for a write in a read-only transaction (a replica, read-only mode).
READ_ONLY_SQL_TRANSACTION = "25006"


class ApiError(Exception):
    """An HTTP-level refusal raised by the adapter itself (auth, headers)."""

    def __init__(
        self, status: int, code: str, message: str, *, details: Any = None, headers: Any = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.headers = details, headers


class BodyRefused(StarletteHTTPException):
    """Raised while a body streams in (too large, not UTF-8): FastAPI lets an HTTPException out of
    its body read unchanged, and the handler below gives it the one error shape."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(status, message)
        self.code, self.details = code, details


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: Any = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": jsonable_encoder(details)}}
    return JSONResponse(body, status_code=status, headers=headers)


def database_unavailable(exc: DBAPIError) -> JSONResponse:
    """The 503 the till retries: the database went away and nothing was written."""
    log.error("database unavailable, request not applied: %s", exc.orig)
    return error_response(
        503,
        "database_unavailable",
        "the database is unavailable; nothing was written, retry shortly",
        None,
        {"Retry-After": "2"},
    )


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            field = _field_path(tuple(err.get("loc", ())))
            message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
            if err.get("type") == "extra_forbidden":
                message = "unknown field"
            elif err.get("type") == "json_invalid":
                field, message = "body", "the body is not valid JSON"
            elif err.get("type") == "missing" and field == "body":
                message = "a JSON body is required"
            elif err.get("type") in {"model_attributes_type", "dict_type"} and field == "body":
                # Also what FastAPI reports for a body sent as form data or text/plain.
                message = "the body must be a JSON object sent as Content-Type: application/json"
            problems.append({"field": field, "message": message, "type": err.get("type")})
        first = problems[0] if problems else {"field": "body", "message": "invalid request"}
        return error_response(
            422, "validation_error", f"{first['field']}: {first['message']}", problems
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, BodyRefused):
            return error_response(exc.status_code, exc.code, str(exc.detail), exc.details)
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), None, exc.headers)

    @app.exception_handler(OperationalError)
    async def _db_down(_: Request, exc: DBAPIError) -> JSONResponse:
        return database_unavailable(exc)

    @app.exception_handler(DataError)
    async def _unstorable(_: Request, exc: DataError) -> JSONResponse:
        # The database refused a value the request carried (PostgreSQL: a NUL character, a number
        # out of range) that no check before it caught: the caller's input, not our fault.
        log.warning("value refused by the database, request not applied: %s", exc.orig)
        return error_response(
            422,
            "value_not_storable",
            "a value in the request cannot be stored or looked up (e.g. it contains a NUL "
            "character); nothing was written",
        )

    @app.exception_handler(DBAPIError)
    async def _db_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if getattr(exc.orig, "sqlstate", None) == READ_ONLY_SQL_TRANSACTION:
            return await _db_down(request, exc)  # a read-only database is down for writes
        log.exception("database error, request not applied")
        return error_response(500, "database_error", "database error; nothing was written")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, "internal_error", "internal error; nothing was written")
