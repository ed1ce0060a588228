"""The OpenAPI document types what evaluate, commit, refund and the receipt answer (issue 17),
and every answer a till gets conforms to it: each real body is validated against the published
schema with unknown fields refused, so the document cannot drift from the JSON on the wire."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

from tests.conftest import from_this_machine
from tests.factories import SALE_RULES, basket_json, enrol_json, evaluate_json, line_json

ROUTES = {  # (method, path, status) -> the fields a till codes against, by name
    ("post", "/v1/baskets/evaluate", "200"): {"quote_id", "lines", "total", "points", "coupons"},
    ("post", "/v1/transactions", "201"): {"transaction_id", "coupons_issued", "balance_after"},
    ("post", "/v1/transactions/{transaction_id}/refund", "200"): {"refund_id", "amount", "kept"},
    ("get", "/v1/receipts/{transaction_id}", "200"): {"kind", "items", "totals", "copy"},
}


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return SALE_RULES


def _closed(node: Any) -> Any:
    """The schema with every object that lists its properties closed to others."""
    if isinstance(node, dict):
        node = {key: _closed(value) for key, value in node.items()}
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_closed(item) for item in node]
    return node


def _validator(document: dict[str, Any], method: str, path: str, status: str) -> Any:
    schema = document["paths"][path][method]["responses"][status]["content"]["application/json"]
    root = {**copy.deepcopy(schema["schema"]), "components": _closed(document["components"])}
    return Draft202012Validator(root)


def _conforms(document: dict[str, Any], route: tuple[str, str, str], body: Any) -> None:
    errors = sorted(_validator(document, *route).iter_errors(body), key=lambda e: e.path)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_the_document_names_each_answers_fields(client: TestClient) -> None:
    document = from_this_machine(client).get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    for (method, path, status), fields in ROUTES.items():
        content = document["paths"][path][method]["responses"][status]["content"]
        ref = content["application/json"]["schema"]["$ref"]
        named = schemas[ref.rsplit("/", 1)[1]]["properties"]
        assert fields <= set(named), (path, sorted(named))


def test_every_answer_on_the_sale_path_conforms_to_the_document(client: TestClient) -> None:
    document = from_this_machine(client).get("/openapi.json").json()
    evaluate, commit, refund, receipt = ROUTES
    enrol_json(client)
    phone = {"phone": "9161234567"}
    # A basket over the threshold with a customer: points, a coupon to issue, stamps, explained.
    body = basket_json(
        line_json(unit_price=80_000), line_json("coffee-1", 17_900, 2, category="coffee"),
        customer=phone,
    )  # fmt: skip
    explained = client.post("/v1/baskets/evaluate?explain=true", json=body)
    assert explained.status_code == 200 and "not_applied" in explained.json()
    _conforms(document, evaluate, explained.json())
    quote = evaluate_json(client, body)
    _conforms(document, evaluate, quote)
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    paid = {"quote_id": quote["quote_id"], "payment": {"method": "card", "paid": quote["total"]}}
    sale = client.post("/v1/transactions", json=paid, headers=headers)
    assert sale.status_code == 201, sale.text
    _conforms(document, commit, sale.json())
    replayed = client.post("/v1/transactions", json=paid, headers=headers)
    assert replayed.json() == sale.json()  # the replay is the same JSON, and so conforms
    coupon = sale.json()["coupons_issued"][0]["code"]
    # Next visit: the coupon presented and points burned, an anonymous basket committed whole.
    spend = basket_json(line_json(unit_price=50_000), customer=phone, coupons=[coupon])
    spend["points_to_redeem"] = 10
    second = client.post("/v1/transactions", json=spend, headers={"Idempotency-Key": "k2"})
    assert second.status_code == 201, second.text
    assert second.json()["coupons"]["applied"] and second.json()["points"]["burn"]
    _conforms(document, commit, second.json())
    anonymous = client.post(
        "/v1/transactions", json=basket_json(), headers={"Idempotency-Key": "k3"}
    )
    assert anonymous.status_code == 201 and anonymous.json()["balance_after"] is None
    _conforms(document, commit, anonymous.json())
    sold = sale.json()["transaction_id"]
    partial = client.post(
        f"/v1/transactions/{sold}/refund",
        json={"lines": [{"sku": "coffee-1", "qty": 1}]},
        headers={"Idempotency-Key": "r1"},
    )
    assert partial.status_code == 200, partial.text
    _conforms(document, refund, partial.json())
    rest = client.post(
        f"/v1/transactions/{sold}/refund", json={}, headers={"Idempotency-Key": "r2"}
    )
    assert rest.status_code == 200, rest.text
    _conforms(document, refund, rest.json())
    for transaction_id, refund_id in ((sold, None), (sold, rest.json()["refund_id"]),
                                      (anonymous.json()["transaction_id"], None)):  # fmt: skip
        query = {"refund_id": refund_id} if refund_id else {}
        document_reply = client.get(f"/v1/receipts/{transaction_id}", params=query)
        assert document_reply.status_code == 200, document_reply.text
        _conforms(document, receipt, document_reply.json())
    assert client.get(f"/v1/receipts/{sold}").json()["loyalty"]["customer_name"] == "Иван П."
