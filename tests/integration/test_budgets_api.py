"""Rule budgets through the API on both databases: a day's money cap, a per-customer cap on a
points rule, explain naming the cap, and eight tills committing at once never overspending by
more than the last sale's reward."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from pos_loyalty.sales.counters import RuleCounter
from pos_loyalty.store import Store
from tests.factories import (
    basket_json,
    enrol_json,
    evaluate_json,
    line_json,
    refund_json,
    sell_json,
)

RULES = [
    {
        "id": "ten-off",
        "kind": "discount",
        "label": "−10% (бюджет 30 ₽ в день)",
        "percent": 10,
        "budget": {"period": "day", "max_amount": 3000},
    },
    {
        "id": "welcome-points",
        "kind": "points",
        "label": "Бонусы 5% (один раз на покупателя)",
        "earn_percent": 5,
        "budget": {"per_customer": 1},
    },
]


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return {"rules": RULES}


def explained(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    reply = client.post("/v1/baskets/evaluate?explain=true", json=body)
    assert reply.status_code == 200, reply.text
    return {n["rule_id"]: n for n in reply.json()["not_applied"]}


def test_a_day_budget_stops_the_rule_until_the_next_day(client: TestClient, store: Store) -> None:
    body = basket_json(line_json("milk", 10000))
    for _ in range(3):
        assert sell_json(client, body)["discount_total"] == 1000
    assert evaluate_json(client, body)["discount_total"] == 0
    why = explained(client, body)["ten-off"]
    assert why["code"] == "budget_reached"
    assert why["message"] == "лимит акции исчерпан: 30,00\xa0₽ в день"
    today = store.now()
    store.clock = lambda: today + timedelta(days=1)
    assert evaluate_json(client, body)["discount_total"] == 1000


def test_a_refund_gives_the_budget_back_its_share(client: TestClient) -> None:
    """The day's 30 ₽ is spent by three sales; returning the bread of one (half its goods) gives
    back 5 ₽, the rest of it the other 5 ₽, a whole sale refunded its 10 ₽."""
    milk, bread = line_json("milk", 5000), line_json("bread", 5000)
    sales = [sell_json(client, basket_json(milk, bread)) for _ in range(3)]
    assert [sale["discount_total"] for sale in sales] == [1000, 1000, 1000]
    spent = basket_json(line_json("milk", 10000))
    assert evaluate_json(client, spent)["discount_total"] == 0  # the day's budget is spent
    refund_json(client, sales[0]["transaction_id"], ("bread", 1))
    assert evaluate_json(client, basket_json(line_json("milk", 5000)))["discount_total"] == 500
    assert evaluate_json(client, spent)["discount_total"] == 1000  # 5 ₽ left: the cap is not hit
    refund_json(client, sales[0]["transaction_id"])  # the milk too
    refund_json(client, sales[1]["transaction_id"])  # a whole sale at once
    for _ in range(2):
        assert sell_json(client, spent)["discount_total"] == 1000
    assert evaluate_json(client, spent)["discount_total"] == 0  # spent again, not more


def test_a_refunded_sale_gives_back_a_customers_one_use(client: TestClient) -> None:
    ivan = {"id": enrol_json(client)}
    body = basket_json(line_json("milk", 20000), line_json("bread", 20000), customer=ivan)
    sale = sell_json(client, body)
    assert sale["points"]["earn"] == 18
    refund_json(client, sale["transaction_id"], ("bread", 1))
    assert evaluate_json(client, body)["points"]["earn"] == 0  # part of the sale still stands
    refund_json(client, sale["transaction_id"])
    assert evaluate_json(client, body)["points"]["earn"] == 18


def test_per_customer_cap_on_points(client: TestClient) -> None:
    ivan = {"id": enrol_json(client)}
    body = basket_json(line_json("milk", 20000), customer=ivan)
    assert sell_json(client, body)["points"]["earn"] == 9  # 5 % of 180,00 ₽ (after −10 %)
    assert evaluate_json(client, body)["points"]["earn"] == 0
    assert explained(client, body)["welcome-points"]["code"] == "budget_reached"
    maria = {"id": enrol_json(client, "9037654321", "Мария")}
    other = basket_json(line_json("milk", 20000), customer=maria)
    assert evaluate_json(client, other)["points"]["earn"] == 9


@pytest.mark.parametrize(
    "config_extra",
    [
        {
            "rules": [
                {
                    "id": "ten-off",
                    "kind": "discount",
                    "label": "−10% (бюджет 45 ₽)",
                    "percent": 10,
                    "budget": {"max_amount": 4500},
                }
            ]
        }
    ],
)
def test_eight_tills_at_once_overspend_at_most_the_last_sale(
    client: TestClient, store: Store
) -> None:
    body = basket_json(line_json("milk", 10000))
    quotes = [evaluate_json(client, body)["quote_id"] for _ in range(8)]
    barrier = threading.Barrier(8)
    replies: list[Any] = []
    lock = threading.Lock()

    def till(quote_id: str) -> None:
        barrier.wait(timeout=30)
        reply = client.post(
            "/v1/transactions",
            json={"quote_id": quote_id},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        with lock:
            replies.append(reply)

    threads = [threading.Thread(target=till, args=(q,)) for q in quotes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(replies) == 8
    sold = [r.json() for r in replies if r.status_code == 201]
    refused = [r.json()["error"]["code"] for r in replies if r.status_code != 201]
    assert refused == ["budget_reached"] * 3, refused
    given = sum(sale["discount_total"] for sale in sold)
    assert given == 5000  # 4 sales leave 40 ₽ < 45 ₽, the 5th takes it to 50 ₽: then no more
    with store.uow() as uow:
        counter = uow.session.exec(select(RuleCounter)).one()
        assert (counter.key, counter.value) == ("budget:campaign:amount", given)
    assert evaluate_json(client, body)["discount_total"] == 0


@pytest.mark.parametrize(
    "config_extra",
    [
        {
            "rules": [
                {
                    "id": "opening-day",
                    "kind": "discount",
                    "label": "Открытие: −10% первому покупателю магазина",
                    "percent": 10,
                    "budget": {"max_uses": 1, "per_store": True},
                }
            ]
        }
    ],
)
def test_a_per_store_budget_is_each_stores_own(
    client: TestClient, store: Store, tmp_path: Any, config_extra: dict[str, Any]
) -> None:
    from pos_loyalty.rules.payload import BasketIn
    from pos_loyalty.sales.pricing import price_basket
    from tests.conftest import make_settings

    body = basket_json(line_json("milk", 10000))
    assert sell_json(client, body)["discount_total"] == 1000
    assert evaluate_json(client, body)["discount_total"] == 0  # this store's one use is spent
    other_dir = tmp_path / "msk-002"
    other_dir.mkdir()
    other = Store.open(
        make_settings(
            other_dir, store.settings.database_url, {**config_extra, "store": {"id": "msk-002"}}
        )
    )
    try:
        priced = price_basket(
            store=other, basket=BasketIn.model_validate({**body, "store_id": "msk-002"})
        )
    finally:
        other.close()
    assert priced.result["discount_total"] == 1000  # another store of the chain: its own cap
