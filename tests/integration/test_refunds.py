"""Refunds reverse what the sale did, in proportion, and a full refund undoes it all."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pos_loyalty.ledger.service import adjust_points, verify_ledger
from pos_loyalty.rules.compiled import compile_rules
from pos_loyalty.rules.config import RulesConfig
from pos_loyalty.store import Store
from tests.factories import SALE_RULES, basket_json, enrol_json, line_json, sell_json

_phones = itertools.count(9_030_000_000)


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return SALE_RULES


def refund(
    client: TestClient, transaction_id: str, body: dict[str, Any], key: str | None = None
) -> Any:
    return client.post(
        f"/v1/transactions/{transaction_id}/refund",
        json=body,
        headers={"Idempotency-Key": key or uuid.uuid4().hex},
    )


def new_customer(client: TestClient, store: Store, points: int = 0) -> str:
    customer_id = enrol_json(client, phone=str(next(_phones)))
    if points:
        with store.uow(write=True) as uow:
            adjust_points(
                uow=uow,
                customer_id=customer_id,
                points=points,
                now=store.now(),
                note="t",
                expire_days=365,
            )
            uow.commit()
    return customer_id


def test_partial_then_full_refund_returns_everything(client: TestClient, store: Store) -> None:
    customer_id = new_customer(client, store, points=50)
    before = client.get(f"/v1/customers/{customer_id}").json()
    sale = sell_json(
        client,
        basket_json(
            line_json("milk", 10000, 4),
            line_json("cof", 15000, 6, category="coffee"),
            customer={"id": customer_id},
            points_to_redeem=50,
        ),
    )
    assert sale["points"]["burn"] == 50 and sale["coupons_issued"]
    partial = refund(client, sale["transaction_id"], {"lines": [{"sku": "milk", "qty": 1}]})
    assert partial.status_code == 200, partial.text
    body = partial.json()
    assert body["full"] is False and body["lines"][0]["qty"] == 1
    assert body["coupons"]["cancelled"] == []  # 1 000 ₽ still kept ≥ 700 ₽
    full = refund(client, sale["transaction_id"], {}).json()
    assert full["full"] is True and full["coupons"]["cancelled"] == [
        sale["coupons_issued"][0]["code"]
    ]
    assert body["amount"] + full["amount"] == sale["total"]
    assert (
        body["points"]["earn_reversed"] + full["points"]["earn_reversed"] == sale["points"]["earn"]
    )
    assert body["points"]["burn_returned"] + full["points"]["burn_returned"] == 50
    assert {s["rule_id"] for s in full["stamps_reversed"]} == {"coffee-6th-free"}
    after = client.get(f"/v1/customers/{customer_id}").json()
    assert (after["balance"], after["lifetime_spend"]) == (
        before["balance"],
        before["lifetime_spend"],
    )
    again = refund(client, sale["transaction_id"], {})
    assert again.status_code == 422 and again.json()["error"]["code"] == "already_refunded"
    assert client.get(f"/v1/transactions/{sale['transaction_id']}").json()["status"] == "refunded"


def test_refund_refusals(client: TestClient, store: Store) -> None:
    sale = sell_json(client, basket_json(line_json("milk", 10000, 2)))
    tid = sale["transaction_id"]
    too_many = refund(client, tid, {"lines": [{"sku": "milk", "qty": 3}]})
    assert too_many.status_code == 422 and too_many.json()["error"]["code"] == "refund_exceeds_sale"
    unknown = refund(client, tid, {"lines": [{"sku": "bread", "qty": 1}]})
    assert unknown.status_code == 422
    no_key = client.post(f"/v1/transactions/{tid}/refund", json={})
    assert no_key.status_code == 400
    assert refund(client, "nope", {}).status_code == 404
    first = refund(client, tid, {"lines": [{"sku": "milk", "qty": 1}]}, key="r")
    replay = refund(client, tid, {"lines": [{"sku": "milk", "qty": 1}]}, key="r")
    assert first.json() == replay.json()
    assert refund(client, tid, {"lines": [{"sku": "milk", "qty": 2}]}).status_code == 422


def test_coupons_come_back_only_on_a_full_refund_and_used_ones_are_reported(
    client: TestClient, store: Store
) -> None:
    customer_id = new_customer(client, store)
    token = {"id": customer_id}
    first = sell_json(client, basket_json(line_json("tv", 80000), customer=token))
    code = first["coupons_issued"][0]["code"]
    second = sell_json(
        client,
        basket_json(line_json("a", 10000), line_json("b", 10000), customer=token, coupons=[code]),
    )
    assert second["discount_total"] == 7000
    partial = refund(client, second["transaction_id"], {"lines": [{"sku": "a", "qty": 1}]}).json()
    assert partial["coupons"]["returned"] == []
    assert client.get(f"/v1/coupons/{code}").json()["status"] == "redeemed"
    full = refund(client, second["transaction_id"], {}).json()
    assert full["coupons"]["returned"] == [code]
    assert client.get(f"/v1/coupons/{code}").json()["status"] == "issued"
    third = sell_json(client, basket_json(line_json("c", 20000), customer=token, coupons=[code]))
    assert third["discount_total"] == 7000
    undo_first = refund(client, first["transaction_id"], {}).json()
    assert undo_first["coupons"] == {"cancelled": [], "already_used": [code], "returned": []}


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    qty=st.lists(st.integers(1, 5), min_size=3, max_size=3),
    prices=st.lists(st.integers(1, 50000), min_size=3, max_size=3),
    burn=st.integers(0, 40),
    steps=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 3)), max_size=4),
)
def test_refund_sequences_never_reverse_more_than_the_sale(
    client: TestClient,
    store: Store,
    qty: list[int],
    prices: list[int],
    burn: int,
    steps: list[tuple[int, int]],
) -> None:
    customer_id = new_customer(client, store, points=40)
    before = client.get(f"/v1/customers/{customer_id}").json()
    skus = ["a", "b", "c"]
    sale = sell_json(
        client,
        basket_json(
            *(line_json(s, p, q) for s, p, q in zip(skus, prices, qty, strict=True)),
            customer={"id": customer_id},
            points_to_redeem=burn,
        ),
    )
    left = dict(zip(skus, qty, strict=True))
    results = []
    for index, units in steps:
        sku = skus[index]
        reply = refund(client, sale["transaction_id"], {"lines": [{"sku": sku, "qty": units}]})
        if units > left[sku]:
            assert reply.status_code == 422
            continue
        assert reply.status_code == 200, reply.text
        left[sku] -= units
        results.append(reply.json())
        earn = sum(r["points"]["earn_reversed"] for r in results)
        returned = sum(r["points"]["burn_returned"] for r in results)
        assert earn <= sale["points"]["earn"] and returned <= sale["points"]["burn"]
        assert sum(r["amount"] for r in results) <= sale["total"]
    if any(left.values()):
        results.append(refund(client, sale["transaction_id"], {}).json())
    assert sum(r["amount"] for r in results) == sale["total"]
    assert sum(r["points"]["earn_reversed"] for r in results) == sale["points"]["earn"]
    assert sum(r["points"]["burn_returned"] for r in results) == sale["points"]["burn"]
    after = client.get(f"/v1/customers/{customer_id}").json()
    assert (after["balance"], after["lifetime_spend"]) == (
        before["balance"],
        before["lifetime_spend"],
    )
    with store.uow() as uow:
        assert verify_ledger(uow=uow)[1] == []


def test_a_partial_refund_judges_the_coupon_by_the_rules_of_its_sale(
    client: TestClient, store: Store
) -> None:
    """The 70 ₽ coupon was earned at 700 ₽; the store raises that threshold to 1 500 ₽ before
    the refund. Keeping 1 000 ₽ of the sale still deserves the coupon the sale earned, and the
    stamps the sale counted go back although the stamp card rule is gone by then."""
    customer_id = new_customer(client, store)
    sale = sell_json(
        client,
        basket_json(
            line_json("milk", 10000, 4),
            line_json("cof", 15000, 6, category="coffee"),
            customer={"id": customer_id},
        ),
    )
    [coupon] = sale["coupons_issued"]
    rules = []
    for rule in SALE_RULES["rules"]:
        if rule["kind"] == "threshold":
            rules.append({**rule, "min_subtotal": 150000})
        elif rule["kind"] != "stamps":
            rules.append(rule)
    config = RulesConfig.from_dict({**SALE_RULES, "rules": rules})
    store.rules = compile_rules(config, tz=store.settings.store.tz)

    partial = refund(client, sale["transaction_id"], {"lines": [{"sku": "milk", "qty": 4}]})
    assert partial.status_code == 200, partial.text
    assert partial.json()["coupons"]["cancelled"] == []  # 750 ₽ kept ≥ the sale's 700 ₽
    assert client.get(f"/v1/coupons/{coupon['code']}").json()["status"] == "issued"
    rest = refund(client, sale["transaction_id"], {"lines": [{"sku": "cof", "qty": 3}]}).json()
    assert rest["coupons"]["cancelled"] == [coupon["code"]]  # 375 ₽ kept < 700 ₽
    assert rest["stamps_reversed"] == [{"rule_id": "coffee-6th-free", "units": 3}]
