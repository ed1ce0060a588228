"""The receipt's "Сгорят" line: every point expiring on the nearest date, from the ledger as the
sale left it, and the same on every reprint; both databases."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from pos_loyalty.store import Store
from tests.factories import SALE_RULES, basket_json, enrol_json, line_json, sell_json

MOSCOW = ZoneInfo("Europe/Moscow")
NBSP = "\u00a0"


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return SALE_RULES


def expiring_line(client: TestClient, transaction_id: str) -> str:
    text = client.get(f"/v1/receipts/{transaction_id}.txt").text.replace(NBSP, " ")
    found = re.search(r"Сгорят \d\d\.\d\d\.\d{4} +\d+ балл\w*", text)
    assert found is not None, text
    return re.sub(r" +", " ", found.group(0))


def test_all_points_of_the_nearest_day_are_counted_and_reprints_say_the_same(
    client: TestClient, store: Store
) -> None:
    start = datetime(2026, 5, 4, 10, 0, tzinfo=MOSCOW)
    store.clock = lambda: start
    who = {"id": enrol_json(client)}
    first = sell_json(client, basket_json(line_json("cheese", 100_000), customer=who))
    store.clock = lambda: start + timedelta(hours=2)
    second = sell_json(client, basket_json(line_json("cheese", 40_000), customer=who))
    assert (first["points"]["earn"], second["points"]["earn"]) == (50, 20)
    # both lots run out on 04.05.2027: 70 points, not the 50 of the first lot alone
    line = expiring_line(client, second["transaction_id"])
    assert line == "Сгорят 04.05.2027 70 баллов"
    assert second["points_expiring"]["points"] == 70

    store.clock = lambda: start + timedelta(hours=3)
    third = sell_json(
        client, basket_json(line_json("bread", 20_000), customer=who, points_to_redeem=30)
    )
    assert third["points"]["burn"] == 30
    assert expiring_line(client, second["transaction_id"]) == line  # the reprint: unchanged
    left = 70 - 30 + third["points"]["earn"]
    assert expiring_line(client, third["transaction_id"]) == f"Сгорят 04.05.2027 {left} баллов"
    profile = client.get(f"/v1/customers/{who['id']}").json()
    assert profile["points_expiring"]["points"] == left
