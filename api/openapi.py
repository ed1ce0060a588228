"""The OpenAPI document is the contract tills code against: every `$ref` resolves, and every
refusal the API can answer is documented with the one error shape.

FastAPI leaves two gaps that this closes after it builds the document: bodies a route reads by
hand (`json_io.body_schema`) carry pydantic's `#/$defs/...` references, which mean nothing inside
an OpenAPI document (they are moved to `components/schemas`); and only 200 and 422 are listed,
the 422 with a shape the API never sends.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "stable machine code"},
                "message": {"type": "string", "description": "what to do, for a person"},
                "details": {"description": "the fields at fault, or more about the refusal"},
            },
        }
    },
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}

DESCRIPTIONS = {
    400: "bad request (e.g. a missing or malformed header)",
    401: "no API key, or a key that is not valid or was revoked",
    403: "the key's scope does not allow this",
    404: "not found",
    409: "conflict with what is stored (taken, already redeemed, in flight)",
    413: "the body is too large",
    422: "the request is invalid (or its body is not UTF-8 JSON); `details` names each field",
    429: "too many requests; see Retry-After",
    501: "not available in this service",
    503: "the database is unavailable or its disk is almost full; retry after Retry-After",
}

# Every API route can refuse a request in these ways (auth, validation, rate limit, database).
API_REFUSALS = (400, 401, 403, 404, 422, 429, 503)
BODY_REFUSALS = (413,)  # a body that is not UTF-8 JSON is a 422 naming `body`, as FastAPI's
# Writes that can collide with what is stored.
CONFLICTS = {
    ("post", "/v1/customers"),
    ("post", "/v1/customers/{customer_id}/cards"),
    ("post", "/v1/transactions"),
    ("post", "/v1/transactions/{transaction_id}/refund"),
    ("post", "/v1/receipts/{transaction_id}/print"),
    ("post", "/v1/hq/bundles"),  # not_head_office: this service holds no signing key
}


def install_openapi(app: FastAPI) -> None:
    """Replace `app.openapi` by one that returns FastAPI's document with the gaps closed."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if getattr(app.state, "openapi_complete", False) and app.openapi_schema:
            return app.openapi_schema
        schema = build()
        complete_document(schema)
        app.state.openapi_complete = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete_document(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    hoist_local_defs(schema, components)
    components["Error"] = ERROR_SCHEMA
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            document_refusals(path, method, operation)
            require_idempotency_key(operation)
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


def hoist_local_defs(node: Any, components: dict[str, Any]) -> None:
    """Move every embedded `$defs` into `components/schemas` and point its references there."""
    if isinstance(node, dict):
        for name, definition in node.pop("$defs", {}).items():
            hoist_local_defs(definition, components)
            known = components.setdefault(name, definition)
            if known != definition:
                raise ValueError(f"two different schemas are both named {name!r}")
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
        for value in node.values():
            hoist_local_defs(value, components)
    elif isinstance(node, list):
        for item in node:
            hoist_local_defs(item, components)


def require_idempotency_key(operation: dict[str, Any]) -> None:
    """The route reads `Idempotency-Key` as optional only to answer its absence with a clear 400;
    for a client it is required."""
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "header" and parameter.get("name") == "Idempotency-Key":
            parameter["required"] = True
            parameter["schema"] = {"type": "string", "minLength": 1, "maxLength": 255}


def document_refusals(path: str, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    codes: set[int] = set()
    if path.startswith("/v1/"):
        codes.update(API_REFUSALS)
        if "requestBody" in operation:
            codes.update(BODY_REFUSALS)
        if (method, path) in CONFLICTS:
            codes.add(409)
        if path.endswith(".png"):
            codes.add(501)
    codes.update(int(code) for code in responses if code.isdigit() and int(code) >= 400)
    for code in sorted(codes):
        existing = responses.get(str(code), {})
        responses[str(code)] = {
            "description": existing.get("description") or DESCRIPTIONS.get(code, "refused"),
            "content": {"application/json": {"schema": ERROR_REF}},
            **({"headers": existing["headers"]} if "headers" in existing else {}),
        }
