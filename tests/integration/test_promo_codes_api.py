"""Promo codes typed at the till, through the API on both databases: a `trigger = "code"` rule
applies only with its code (any case, Cyrillic, hyphens), unknown and used-up codes are 422,
single-use codes and per-customer limits hold even for quotes priced before the other sale."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import (
    basket_json,
    commit_json,
    enrol_json,
    evaluate_json,
    line_json,
    refund_json,
)

RULES = [
    {
        "id": "summer-code",
        "kind": "discount",
        "label": "Промокод ЛЕТО25: −25 %",
        "percent": 25,
        "trigger": "code",
        "promo": {"codes": ["ЛЕТО25"], "per_customer": 1},
    },
    {
        "id": "vip-codes",
        "kind": "discount",
        "label": "Подарочный код: −100 ₽",
        "amount_off": 10000,
        "trigger": "code",
        "promo": {"codes": ["VIP-0001", "VIP-0002"], "max_uses": 1},
    },
]


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return {"rules": RULES}


def with_codes(*codes: str, customer: dict[str, str] | None = None) -> dict[str, Any]:
    body = basket_json(line_json("milk", 40000), customer=customer)
    body["promo_codes"] = list(codes)
    return body


def test_the_rule_applies_only_with_its_code_in_any_spelling(client: TestClient) -> None:
    customer = {"id": enrol_json(client)}
    explained = client.post("/v1/baskets/evaluate?explain=true", json=with_codes()).json()
    assert explained["discount_total"] == 0
    why = {n["rule_id"]: n for n in explained["not_applied"]}
    assert why["summer-code"]["code"] == "code_not_presented"
    assert why["summer-code"]["message"] == "только по промокоду"
    quote = evaluate_json(client, with_codes(" лето-25 ", customer=customer))
    assert quote["discount_total"] == 10000
    assert [a["rule_id"] for a in quote["applied"]] == ["summer-code"]
    assert quote["promo_codes"] == [{"code": "ЛЕТО25", "rule_id": "summer-code"}]


def test_unknown_code_is_a_clear_422(client: TestClient) -> None:
    reply = client.post("/v1/baskets/evaluate", json=with_codes("ЗИМА99"))
    assert reply.status_code == 422
    error = reply.json()["error"]
    assert error["code"] == "promo_code_unknown"
    assert "ЗИМА99" in error["message"] and error["details"]["field"] == "promo_codes"
    too_long = client.post("/v1/baskets/evaluate", json=with_codes("Х" * 33))
    assert too_long.status_code == 422 and too_long.json()["error"]["code"] == "validation_error"


def test_per_customer_limit(client: TestClient) -> None:
    ivan = {"id": enrol_json(client)}
    maria = {"id": enrol_json(client, "9037654321", "Мария Смирнова")}
    first = commit_json(client, with_codes("ЛЕТО25", customer=ivan))
    assert first.status_code == 201, first.text
    assert first.json()["discount_total"] == 10000
    again = client.post("/v1/baskets/evaluate", json=with_codes("лето25", customer=ivan))
    assert again.status_code == 422
    assert again.json()["error"]["code"] == "promo_code_exhausted"
    assert evaluate_json(client, with_codes("ЛЕТО25", customer=maria))["discount_total"] == 10000
    # A per-customer code needs a card: without one the rule says so and gives nothing.
    anonymous = client.post("/v1/baskets/evaluate?explain=true", json=with_codes("ЛЕТО25"))
    assert anonymous.status_code == 200
    why = {n["rule_id"]: n["code"] for n in anonymous.json()["not_applied"]}
    assert why["summer-code"] == "no_customer"


def test_single_use_code_sells_once_even_when_two_tills_priced_it(client: TestClient) -> None:
    quotes = [evaluate_json(client, with_codes("vip-0001")) for _ in range(2)]
    assert all(q["discount_total"] == 10000 for q in quotes)
    first = commit_json(client, {"quote_id": quotes[0]["quote_id"]})
    assert first.status_code == 201, first.text
    second = commit_json(client, {"quote_id": quotes[1]["quote_id"]})
    assert second.status_code == 422, second.text
    assert second.json()["error"]["code"] == "promo_code_exhausted"
    used = client.post("/v1/baskets/evaluate", json=with_codes("VIP-0001"))
    assert used.status_code == 422 and used.json()["error"]["code"] == "promo_code_exhausted"
    other = evaluate_json(client, with_codes("VIP-0002"))
    assert other["discount_total"] == 10000


def test_a_code_comes_back_only_when_the_whole_sale_does(client: TestClient) -> None:
    ivan = {"id": enrol_json(client)}
    body = with_codes("VIP-0001", "ЛЕТО25", customer=ivan)
    body["lines"].append(line_json("bread", 20000))
    sale = commit_json(client, body)
    assert sale.status_code == 201, sale.text
    transaction_id = sale.json()["transaction_id"]
    refund_json(client, transaction_id, ("bread", 1))  # the customer kept the milk
    for code in ("VIP-0001", "ЛЕТО25"):
        again = client.post("/v1/baskets/evaluate", json=with_codes(code, customer=ivan))
        assert again.json()["error"]["code"] == "promo_code_exhausted"
    refund_json(client, transaction_id)  # the rest: as if the sale had not been
    quote = evaluate_json(client, with_codes("VIP-0001", "ЛЕТО25", customer=ivan))
    assert quote["promo_codes"] == [
        {"code": "VIP0001", "rule_id": "vip-codes"},
        {"code": "ЛЕТО25", "rule_id": "summer-code"},
    ]
