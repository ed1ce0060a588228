"""Referrals through the API on both databases: a code at enrolment, both rewarded once after
the newcomer's first qualifying sale, unknown codes refused, no reward twice nor to oneself."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pos_loyalty.ledger.service import verify_ledger
from pos_loyalty.store import Store
from tests.factories import basket_json, line_json, sell_json

RULES = [
    {"id": "bonus-5", "kind": "points", "label": "Бонусы 5%", "earn_percent": 5},
    {
        "id": "bring-a-friend",
        "kind": "referral",
        "label": "Приведи друга: 200 баллов тебе, 100 другу",
        "referrer_points": 200,
        "referee_points": 100,
        "min_subtotal": 30000,
    },
]


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return {"rules": RULES}


def enrol(client: TestClient, phone: str, name: str, **extra: Any) -> dict[str, Any]:
    reply = client.post("/v1/customers", json={"phone": phone, "name": name, **extra})
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


def balance(client: TestClient, customer_id: str) -> int:
    value: int = client.get(f"/v1/customers/{customer_id}").json()["balance"]
    return value


def test_both_are_rewarded_once_after_the_friends_first_sale(
    client: TestClient, store: Store
) -> None:
    ivan = enrol(client, "9161234567", "Иван Петров")
    code = ivan["referral_code"]
    assert len(code) == 8
    maria = enrol(client, "9037654321", "Мария Смирнова", referred_by=code.lower())
    assert maria["referral_code"] != code
    small = sell_json(client, basket_json(line_json("milk", 10000), customer={"id": maria["id"]}))
    assert small["points"]["earn"] == 5
    assert (balance(client, ivan["id"]), balance(client, maria["id"])) == (0, 5)  # below 300 ₽
    sell_json(client, basket_json(line_json("milk", 40000), customer={"id": maria["id"]}))
    assert balance(client, ivan["id"]) == 200
    assert balance(client, maria["id"]) == 5 + 20 + 100
    sell_json(client, basket_json(line_json("milk", 40000), customer={"id": maria["id"]}))
    assert balance(client, ivan["id"]) == 200  # once per new customer
    stats = client.get(f"/v1/customers/{ivan['id']}/referral").json()
    assert stats == {"customer_id": ivan["id"], "code": code, "referred": 1, "rewarded": 1}
    ledger = client.get(f"/v1/customers/{ivan['id']}/ledger").json()["entries"]
    assert [(e["kind"], e["points"]) for e in ledger] == [("earn", 200)]
    with store.uow() as uow:
        assert verify_ledger(uow=uow)[1] == []


def test_unknown_codes_are_refused_before_enrolling(client: TestClient) -> None:
    reply = client.post(
        "/v1/customers",
        json={"phone": "9037654321", "name": "Мария", "referred_by": "ZZZZZZZZ"},
    )
    assert reply.status_code == 422
    assert reply.json()["error"]["code"] == "referral_code_unknown"
    assert client.post("/v1/identify", json={"phone": "9037654321"}).status_code == 404


def test_a_refund_keeps_the_reward_and_a_retry_does_not_pay_twice(client: TestClient) -> None:
    ivan = enrol(client, "9161234567", "Иван Петров")
    maria = enrol(client, "9037654321", "Мария", referred_by=ivan["referral_code"])
    body = basket_json(line_json("milk", 40000), customer={"id": maria["id"]})
    key = uuid.uuid4().hex
    quote = client.post("/v1/baskets/evaluate", json=body).json()["quote_id"]
    for _ in range(2):  # the till retries the same commit
        reply = client.post(
            "/v1/transactions", json={"quote_id": quote}, headers={"Idempotency-Key": key}
        )
        assert reply.status_code == 201
    assert balance(client, ivan["id"]) == 200
    refund = client.post(
        f"/v1/transactions/{reply.json()['transaction_id']}/refund",
        json={},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert refund.status_code in {200, 201}, refund.text
    assert balance(client, ivan["id"]) == 200 and balance(client, maria["id"]) == 100


def test_self_referral_through_a_second_account_earns_nothing(
    client: TestClient, store: Store
) -> None:
    from pos_loyalty.apikeys.models import Scope
    from tests.conftest import new_key

    first = enrol(client, "9161234567", "Иван Петров")
    second = enrol(client, "9037654321", "Иван Петров", referred_by=first["referral_code"])
    admin = {"Authorization": f"Bearer {new_key(store, Scope.ADMIN)}"}
    merged = client.post(
        f"/v1/admin/customers/{first['id']}/merge", json={"into": second["id"]}, headers=admin
    )
    assert merged.status_code == 200, merged.text
    sell_json(client, basket_json(line_json("milk", 40000), customer={"id": second["id"]}))
    assert balance(client, second["id"]) == 20  # the sale's 5 %, no referral points
