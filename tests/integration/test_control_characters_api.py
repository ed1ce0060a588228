"""A control character in any free string a till sends is refused with 422 naming the field, on
SQLite (which would store a NUL) as on PostgreSQL (which would refuse it as unstorable), and
nothing is written: no quote, no sale, no receipt."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import select

from pos_loyalty.sales.models import ReceiptOutbox, SaleTransaction, StoredQuote
from pos_loyalty.store import Store
from tests.factories import SALE_RULES, basket_json, commit_json, line_json, sell_json

# The line name: ESC p opens the cash drawer, GS V 0 cuts the paper.
DRAWER_AND_CUT = "Milk\x1bp0\x19\x7f\x1dV0END"


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return SALE_RULES


def rows(store: Store) -> tuple[int, int, int]:
    with store.uow() as uow:
        count = [
            uow.session.exec(select(func.count()).select_from(table)).one()
            for table in (StoredQuote, SaleTransaction, ReceiptOutbox)
        ]
    return count[0], count[1], count[2]


BAD_BASKETS = [
    (basket_json(line_json(name=DRAWER_AND_CUT)), "lines.0.name"),
    (basket_json(line_json(), line_json("a\x00b", name="Хлеб")), "lines.1.sku"),
    (basket_json(line_json(category="dairy\x1d")), "lines.0.category"),
    (basket_json(line_json(name="Молоко\n3,2%")), "lines.0.name"),
    (basket_json(line_json(name="Молоко\u2028")), "lines.0.name"),
    (basket_json(line_json(name="Молоко\x85")), "lines.0.name"),  # C1 NEL
    (basket_json(line_json(), lane_id="lane\x00-1"), "lane_id"),
    ({**basket_json(line_json()), "store_id": "msk\x10-001"}, "store_id"),
    (basket_json(line_json(), coupons=["ABCD\x1b@"]), "coupons.0"),
    (basket_json(line_json(), customer={"phone": "916\x00"}), "customer.phone"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BASKETS)
def test_a_basket_with_control_characters_is_refused_naming_the_field(
    client: TestClient, store: Store, body: dict[str, Any], field: str
) -> None:
    for reply in (
        client.post("/v1/baskets/evaluate", json=body),
        commit_json(client, body),
    ):
        assert reply.status_code == 422, reply.text
        error = reply.json()["error"]
        assert error["code"] == "validation_error"
        assert {problem["field"] for problem in error["details"]} == {field}
        assert error["message"].startswith(f"{field}: must not contain control characters")
    assert rows(store) == (0, 0, 0)


def test_plain_unicode_is_still_welcome(client: TestClient, store: Store) -> None:
    """Cyrillic, a no-break space, an emoji and a joiner are text, not commands."""
    name = "Молоко\u00a03,2% 🥛 «Домик в деревне» — 1\u00a0л"
    sale = sell_json(client, basket_json(line_json(name=name)))
    assert sale["lines"][0]["name"] == name
    assert rows(store)[1:] == (1, 1)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quote_id": "q\x00"}, "quote_id"),
        ({"quote_id": "q1", "payment": {"method": "cash\x1bp", "paid": 100}}, "payment.method"),
    ],
)
def test_a_commit_with_control_characters_is_refused(
    client: TestClient, store: Store, body: dict[str, Any], field: str
) -> None:
    reply = commit_json(client, body)
    assert reply.status_code == 422, reply.text
    assert [p["field"] for p in reply.json()["error"]["details"]] == [field]
    assert rows(store) == (0, 0, 0)


def test_a_refund_line_with_control_characters_is_refused(client: TestClient) -> None:
    sale = sell_json(client, basket_json(line_json("milk")))
    reply = client.post(
        f"/v1/transactions/{sale['transaction_id']}/refund",
        json={"lines": [{"sku": "milk\x00", "qty": 1}]},
        headers={"Idempotency-Key": "refund-1"},
    )
    assert reply.status_code == 422, reply.text
    assert [p["field"] for p in reply.json()["error"]["details"]] == ["lines.0.sku"]
