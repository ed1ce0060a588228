"""`POST /v1/baskets/evaluate` over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from pos_loyalty.coupons.codes import check_character
from pos_loyalty.sales.models import StoredQuote
from pos_loyalty.store import Store
from tests.conftest import from_this_machine
from tests.factories import SALE_RULES, basket_json, enrol_json, evaluate_json, line_json


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return SALE_RULES


def test_quote_for_a_customer_found_by_each_token(client: TestClient, store: Store) -> None:
    customer_id = enrol_json(client)
    profile = client.get(f"/v1/customers/{customer_id}").json()
    body = basket_json(line_json(unit_price=60000), line_json("cof", 15000, 1, category="coffee"))
    for token in (
        {"phone": "8 (916) 123-45-67"},
        {"card": profile["card_number"]},
        {"qr": profile["qr"]},
        {"id": customer_id},
    ):
        quote = evaluate_json(client, {**body, "customer": token})
        assert quote["customer"]["id"] == customer_id
        assert quote["customer"]["phone"] == "+7 *** ***-45-67"
        assert quote["subtotal"] == 75000 and quote["total"] == 75000
        assert quote["points"]["earn"] == 37  # 5 % of 750,00 ₽ at 1 ₽ a point, floored
        assert quote["coupons"]["to_issue"][0]["amount_off"] == 7000
        assert quote["stamps"] == [
            {
                "rule_id": "coffee-6th-free",
                "label": "Каждый 6-й кофе бесплатно",
                "count": 1,
                "every": 6,
                "free_units": 0,
                "advance": 1,
            }
        ]
        assert quote["tier"] == {"name": None, "next": "silver", "missing": 1_000_000}
    with store.uow() as uow:
        stored = uow.session.get(StoredQuote, quote["quote_id"])
        assert stored is not None
        assert stored.rules_version == store.rules.version == quote["rules_version"]
        assert (stored.expires_at - stored.created_at).total_seconds() == 15 * 60
        assert stored.result["total"] == 75000


def test_anonymous_basket_near_the_threshold_gets_an_upsell_hint(client: TestClient) -> None:
    quote = evaluate_json(client, basket_json(line_json(unit_price=61500)))
    assert quote["customer"] is None and quote["points"]["earn"] == 0
    assert quote["hints"][0]["rule_id"] == "spend-700-get-70"
    assert quote["hints"][0]["missing"] == 8500
    assert quote["hints"][0]["message"] == "Добавьте 85,00\xa0₽ — получите купон на 70,00\xa0₽"


def test_explain_says_why_rules_did_not_apply(client: TestClient) -> None:
    reply = client.post("/v1/baskets/evaluate?explain=true", json=basket_json(line_json()))
    reasons = {n["rule_id"]: n["code"] for n in reply.json()["not_applied"]}
    assert reasons["bonus-5"] == "no_customer"
    assert "not_applied" not in evaluate_json(client, basket_json(line_json()))


@pytest.mark.parametrize(("given", "explained"), [("yes", True), ("ON", True), ("0", False)])
def test_explain_is_read_as_fastapi_reads_a_boolean(
    client: TestClient, given: str, explained: bool
) -> None:
    reply = client.post(f"/v1/baskets/evaluate?explain={given}", json=basket_json(line_json()))
    assert reply.status_code == 200
    assert ("not_applied" in reply.json()) is explained


def test_an_explain_that_is_not_a_boolean_is_422_naming_it(client: TestClient) -> None:
    reply = client.post("/v1/baskets/evaluate?explain=maybe", json=basket_json(line_json()))
    assert reply.status_code == 422
    assert reply.json()["error"]["details"][0]["field"] == "explain"


def test_the_till_routes_are_counted_by_route_and_take_only_post(client: TestClient) -> None:
    evaluate_json(client, basket_json(line_json()))
    assert client.get("/v1/baskets/evaluate").status_code == 405
    text = from_this_machine(client).get("/metrics").text
    assert (
        'pos_loyalty_http_request_duration_seconds_count{method="POST",'
        'route="/v1/baskets/evaluate",status="200"} 1.0'
    ) in text


def test_presented_coupons_that_cannot_be_used_are_rejected_with_reasons(
    client: TestClient,
) -> None:
    unknown = "ABCDEFGHJK" + check_character("ABCDEFGHJK")
    mistyped = unknown[:-1] + ("0" if unknown[-1] != "0" else "1")
    quote = evaluate_json(
        client, basket_json(line_json(), coupons=[mistyped, unknown.lower(), "nonsense", unknown])
    )
    reasons = [c["reason"] for c in quote["coupons"]["rejected"]]
    assert sorted(reasons) == ["duplicate", "malformed", "malformed", "unknown"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"qty": 0}, "lines.0.qty"),
        ({"qty": -1}, "lines.0.qty"),
        ({"qty": -0.5}, "lines.0.qty"),
        ({"qty": 1.2345}, "lines.0.qty"),
        ({"qty": "2"}, "lines.0.qty"),
        ({"qty": True}, "lines.0.qty"),
        ({"unit_price": -1}, "lines.0.unit_price"),
        ({"unit_price": 10**12 + 1}, "lines.0.unit_price"),
        ({"unit_price": "89.90"}, "lines.0.unit_price"),
        ({"unit_price": 89.9}, "lines.0.unit_price"),
        ({"qty": 1_000_001, "unit_price": 1_000_000}, "lines.0"),  # the line beyond 10^12
        ({"sku": None}, "lines.0.sku"),
    ],
)
def test_bad_line_is_422_naming_the_field(
    client: TestClient, store: Store, change: dict[str, Any], field: str
) -> None:
    reply = client.post("/v1/baskets/evaluate", json=basket_json({**line_json(), **change}))
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == field
    assert error["message"].startswith(f"{field}: ") and "Value error" not in error["message"]
    with store.uow() as uow:
        assert uow.session.exec(select(StoredQuote)).first() is None  # nothing priced, nothing kept


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"points_to_redeem": "5"}, "points_to_redeem", "integer"),
        ({"points_to_redeem": -5}, "points_to_redeem", "greater than or equal to 0"),
        ({"points_to_redeem": 10**12 + 1}, "points_to_redeem", "less than or equal to"),
        ({"lines": "milk"}, "lines", "array"),
        ({"coupons": [5]}, "coupons.0", "string"),
        ({"customer": {"phone": 79161234567}}, "customer.phone", "string"),
        (
            {
                "lines": [
                    line_json(unit_price=600_000_000_000),
                    line_json(unit_price=500_000_000_000),
                ]
            },
            "lines",
            "more than 1000000000000 minor units",
        ),
        ({"lines": [line_json()] * 1001}, "lines", "at most 1000 items"),
        ({"store_id": None}, "store_id", "string"),
    ],
)
def test_bad_basket_is_422_naming_the_field(
    client: TestClient, change: dict[str, Any], field: str, says: str
) -> None:
    reply = client.post("/v1/baskets/evaluate", json={**basket_json(line_json()), **change})
    assert reply.status_code == 422, reply.text
    detail = reply.json()["error"]["details"][0]
    assert detail["field"] == field and says in detail["message"]


def test_too_many_lines_missing_fields_and_unknown_customers(client: TestClient) -> None:
    too_many = client.post("/v1/baskets/evaluate", json=basket_json(*[line_json()] * 1001))
    assert too_many.status_code == 422 and "lines" in too_many.json()["error"]["message"]
    body = basket_json(line_json())
    del body["store_id"]
    missing = client.post("/v1/baskets/evaluate", json=body)
    assert missing.status_code == 422 and missing.json()["error"]["details"][0]["field"] == (
        "store_id"
    )
    unknown = client.post(
        "/v1/baskets/evaluate", json=basket_json(line_json(), customer={"phone": "9031112233"})
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "customer_not_found"
    two = client.post(
        "/v1/baskets/evaluate",
        json=basket_json(line_json(), customer={"phone": "9031112233", "id": "x"}),
    )
    assert two.status_code == 422 and "customer" in two.json()["error"]["message"]


def test_evaluate_needs_a_till_key(anon_client: TestClient, store: Store) -> None:
    assert anon_client.post("/v1/baskets/evaluate", json=basket_json()).status_code == 401
    with store.uow() as uow:
        assert uow.session.exec(select(StoredQuote)).first() is None
