"""Buy N get M through the API on both databases, without a card: "2 по цене 1" on yoghurts
(skus), "3 за 2" on a category, repeating per N, the cheapest units discounted, and explain
saying why a basket short of N gets nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import basket_json, evaluate_json, line_json, sell_json

RULES = [
    {
        "id": "yoghurt-2-for-1",
        "kind": "discount",
        "label": "Йогурты: 2 по цене 1",
        "applies_to": "cheapest",
        "buy": 2,
        "percent": 100,
        "when": {"skus": ["yog-straw", "yog-peach"]},
    },
    {
        "id": "tea-3-for-2",
        "kind": "discount",
        "label": "Чай: 3 за 2",
        "applies_to": "cheapest",
        "buy": 3,
        "get": 1,
        "percent": 100,
        "when": {"categories": ["tea"]},
    },
    {
        "id": "juice-second-half",
        "kind": "discount",
        "label": "Второй сок −50%",
        "applies_to": "cheapest",
        "buy": 2,
        "percent": 50,
        "when": {"categories": ["juice"]},
    },
]


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return {"rules": RULES}


def discounts(quote: dict[str, Any]) -> dict[str, int]:
    return {a["rule_id"]: a["amount"] for a in quote["applied"]}


def test_two_for_one_repeats_per_pair_and_frees_the_cheapest(client: TestClient) -> None:
    one = evaluate_json(client, basket_json(line_json("yog-straw", 6990)))
    assert one["discount_total"] == 0  # a single yoghurt is not a pair
    three = evaluate_json(
        client, basket_json(line_json("yog-straw", 6990, 2), line_json("yog-peach", 5990))
    )
    assert discounts(three) == {"yoghurt-2-for-1": 5990}  # one pair: the cheaper unit free
    four = evaluate_json(
        client, basket_json(line_json("yog-straw", 6990, 2), line_json("yog-peach", 5990, 2))
    )
    assert discounts(four) == {"yoghurt-2-for-1": 2 * 5990}
    peach = next(ln for ln in four["lines"] if ln["sku"] == "yog-peach")
    assert peach["discount"] == 2 * 5990 and peach["total"] == 0


def test_three_for_two_on_a_category_and_percent_off(client: TestClient) -> None:
    teas = [line_json(f"tea-{i}", 10000 + i * 1000, category="tea") for i in range(7)]
    quote = evaluate_json(client, basket_json(*teas))
    assert discounts(quote) == {"tea-3-for-2": 10000 + 11000}  # 7 units: 2 sets, 2 cheapest free
    juice = evaluate_json(client, basket_json(line_json("apple", 15000, 3, category="juice")))
    assert discounts(juice) == {"juice-second-half": 7500}


def test_explain_says_how_many_units_are_missing(client: TestClient) -> None:
    reply = client.post(
        "/v1/baskets/evaluate?explain=true",
        json=basket_json(line_json("tea-1", 10000, 2, category="tea")),
    )
    why = {n["rule_id"]: n for n in reply.json()["not_applied"]}
    assert why["tea-3-for-2"]["code"] == "bundle_not_complete"
    assert why["tea-3-for-2"]["message"] == "акция от 3 шт.: в корзине 2 шт."


def test_a_sale_without_a_card_keeps_the_free_unit(client: TestClient) -> None:
    sale = sell_json(client, basket_json(line_json("yog-straw", 6990, 2)))
    assert sale["total"] == 6990 and sale["customer"] is None
