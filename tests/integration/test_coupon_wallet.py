"""The coupons a customer holds, shown to the cashier, and the one last valid day every surface
(commit answer, coupon status, profile, identify, paper) agrees on; both databases."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from pos_loyalty.store import Store
from tests.factories import SALE_RULES, basket_json, enrol_json, line_json, sell_json

MOSCOW = ZoneInfo("Europe/Moscow")


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return SALE_RULES


def test_a_held_coupon_is_listed_with_the_date_the_receipt_prints(
    client: TestClient, store: Store
) -> None:
    # late evening in Moscow, when the UTC date and the local date differ
    store.clock = lambda: datetime(2026, 12, 7, 23, 40, tzinfo=MOSCOW)
    customer_id = enrol_json(client)
    sale = sell_json(
        client,
        basket_json(line_json(unit_price=80_000), customer={"id": customer_id}),
    )
    [issued] = sale["coupons_issued"]
    # 14 days from 07.12 23:40: good through the whole of 21.12, expires at local midnight
    assert issued["valid_until"] == "2026-12-21"
    text = client.get(f"/v1/receipts/{sale['transaction_id']}.txt").text
    printed = re.search(r"Действует до (\d\d)\.(\d\d)\.(\d{4})", text)
    assert printed is not None
    day, month, year = printed.groups()
    assert date(int(year), int(month), int(day)) == date.fromisoformat(issued["valid_until"])

    status = client.get(f"/v1/coupons/{issued['code']}").json()
    assert status["valid_until"] == "2026-12-21"

    profile = client.get(f"/v1/customers/{customer_id}").json()
    assert profile["coupons"] == [
        {
            "code": issued["code"],
            "label": "Купите на 700 ₽ — 70 ₽ на следующую покупку",
            "amount_off": 7000,
            "percent_off": None,
            "min_subtotal": 0,
            "valid_until": "2026-12-21",
            "expires_at": profile["coupons"][0]["expires_at"],
        }
    ]
    assert datetime.fromisoformat(profile["coupons"][0]["expires_at"]) == datetime(
        2026, 12, 22, tzinfo=MOSCOW
    )
    identified = client.post("/v1/identify", json={"phone": "9161234567"}).json()
    assert [c["code"] for c in identified["customer"]["coupons"]] == [issued["code"]]


def test_spent_and_expired_coupons_are_not_listed(client: TestClient, store: Store) -> None:
    start = datetime(2026, 12, 7, 12, 0, tzinfo=MOSCOW)
    store.clock = lambda: start
    customer_id = enrol_json(client)
    who = {"id": customer_id}
    [first] = sell_json(client, basket_json(line_json(unit_price=80_000), customer=who))[
        "coupons_issued"
    ]
    sell_json(
        client, basket_json(line_json(unit_price=10_000), customer=who, coupons=[first["code"]])
    )
    assert client.get(f"/v1/customers/{customer_id}").json()["coupons"] == []
    [second] = sell_json(client, basket_json(line_json(unit_price=80_000), customer=who))[
        "coupons_issued"
    ]
    assert [c["code"] for c in client.get(f"/v1/customers/{customer_id}").json()["coupons"]] == [
        second["code"]
    ]
    store.clock = lambda: start + timedelta(days=15)
    assert client.get(f"/v1/customers/{customer_id}").json()["coupons"] == []
