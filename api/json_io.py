"""JSON in and out on the till's hot path: bodies parsed once (by pydantic-core or orjson, with the
same 422 shapes FastAPI gives) and responses serialised by orjson, without a second validation."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, TypeAdapter, ValidationError

Model = TypeVar("Model", bound=BaseModel)

_MISSING = [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
_INVALID = [{"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error", "input": None}]


def body_schema(body_type: Any) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its body itself, so /docs still shows it."""
    schema = TypeAdapter(body_type).json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


async def read_model(request: Request, model: type[Model]) -> Model:
    """The body validated as `model` straight from bytes; errors located like FastAPI's."""
    raw = await request.body()
    if not raw.strip():
        raise RequestValidationError(_MISSING)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if any(e["type"] == "json_invalid" for e in errors):
            raise RequestValidationError(_INVALID) from None
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


async def read_json(request: Request) -> Any:
    """The body as plain JSON (for routes that pick their model by what the body holds)."""
    raw = await request.body()
    if not raw.strip():
        raise RequestValidationError(_MISSING)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestValidationError(_INVALID) from None


def json_response(
    content: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )
