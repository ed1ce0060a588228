"""Coupons for a campaign through the API on both databases: bearer coupons generated from a
rule, and a reactivation campaign to the lapsed segment exported with the contacts each
customer allowed (the phone in clear only where kept and consented to SMS)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pos_loyalty.apikeys.models import Scope
from pos_loyalty.segments.service import compute_rfm
from pos_loyalty.store import Store
from tests.conftest import new_key
from tests.factories import SALE_RULES, basket_json, evaluate_json, line_json, sell_json

COMEBACK = {
    "id": "comeback-20",
    "kind": "personal",
    "trigger": "winback",
    "label": "Возвращайтесь! −20%",
    "percent_off": 20,
    "inactive_days": 180,
    "valid_days": 30,
}


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return {**SALE_RULES, "rules": [*SALE_RULES["rules"], COMEBACK]}


@pytest.fixture
def admin(store: Store) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_key(store, Scope.ADMIN)}"}


def enrol(client: TestClient, phone: str, name: str, consents: dict[str, bool]) -> str:
    reply = client.post("/v1/customers", json={"phone": phone, "name": name, "consents": consents})
    assert reply.status_code == 201, reply.text
    customer_id: str = reply.json()["id"]
    return customer_id


def lapsed_store(client: TestClient, store: Store) -> dict[str, str]:
    """Three customers last seen 200 days ago, one seen yesterday; RFM run tonight."""
    now = store.now()
    store.clock = lambda: now - timedelta(days=200)
    ids = {
        "ivan": enrol(client, "9161234567", "Иван Петров", {"sms": True}),
        "olga": enrol(client, "9161110000", "Ольга Ким", {"marketing": True, "sms": False}),
        "petr": enrol(client, "9162220000", "Пётр Орлов", {}),
    }
    for customer_id in ids.values():
        sell_json(client, basket_json(line_json("milk", 30000), customer={"id": customer_id}))
    store.clock = lambda: now - timedelta(days=1)
    ids["anna"] = enrol(client, "9163330000", "Анна Ли", {"sms": True})
    sell_json(client, basket_json(line_json("milk", 30000), customer={"id": ids["anna"]}))
    store.clock = lambda: now
    with store.uow(write=True) as uow:
        compute_rfm(uow=uow, config=store.settings.segments, now=now)
    return ids


@pytest.mark.parametrize(
    "config_extra",
    [
        {
            **SALE_RULES,
            "rules": [*SALE_RULES["rules"], COMEBACK],
            "privacy": {"store_plain_phone": True},
        }
    ],
)
def test_reactivation_coupons_to_the_lapsed_with_allowed_contacts(
    client: TestClient, store: Store, admin: dict[str, str]
) -> None:
    ids = lapsed_store(client, store)
    body = {"rule_id": "comeback-20", "segment": "lapsed"}
    reply = client.post("/v1/admin/campaigns/segment", json=body, headers=admin)
    assert reply.status_code == 201, reply.text
    done = reply.json()
    assert (done["issued"], done["without_consent"], done["already_holding"]) == (2, 1, 0)
    contacts = {c["customer_id"]: c for c in done["contacts"]}
    assert set(contacts) == {ids["ivan"], ids["olga"]}  # Пётр gave no consent, Анна is active
    ivan, olga = contacts[ids["ivan"]], contacts[ids["olga"]]
    assert (ivan["phone"], ivan["phone_in_clear"], ivan["channels"]) == (
        "+79161234567",
        True,
        ["sms"],
    )
    assert (olga["phone"], olga["phone_in_clear"]) == ("+7 *** ***-00-00", False)
    assert ivan["name"] == "Иван П." and ivan["coupon"]["percent_off"] == 20
    assert ivan["coupon"]["bearer"] is False

    again = client.post("/v1/admin/campaigns/segment", json=body, headers=admin).json()
    assert (again["issued"], again["already_holding"]) == (0, 2)

    # Иван comes back and presents it: 20 % off.
    quote = evaluate_json(
        client,
        basket_json(
            line_json("milk", 50000), customer={"id": ids["ivan"]}, coupons=[ivan["coupon"]["code"]]
        ),
    )
    assert len(quote["coupons"]["applied"]) == 1
    assert quote["discount_total"] == 10000

    audit = client.get("/v1/audit", params={"action": "coupons_issued_to_segment"}, headers=admin)
    details = audit.json()["entries"][1]["details"]
    assert details["issued"] == 2 and details["phones_in_clear"] == 1
    assert "7916" not in str(audit.json())  # the log keeps counts, not contacts


def test_phones_stay_masked_when_the_store_does_not_keep_them(
    client: TestClient, store: Store, admin: dict[str, str]
) -> None:
    ids = lapsed_store(client, store)
    reply = client.post(
        "/v1/admin/campaigns/segment",
        json={"rule_id": "comeback-20", "segment": "lapsed", "inactive_days": 190},
        headers=admin,
    )
    contacts = {c["customer_id"]: c for c in reply.json()["contacts"]}
    assert contacts[ids["ivan"]]["phone"] == "+7 *** ***-45-67"
    assert contacts[ids["ivan"]]["phone_in_clear"] is False
    later = client.post(
        "/v1/admin/campaigns/segment",
        json={"rule_id": "comeback-20", "segment": "lapsed", "inactive_days": 250},
        headers=admin,
    )
    assert later.json()["issued"] == 0  # nobody has been away 250 days
    unknown = client.post(
        "/v1/admin/campaigns/segment",
        json={"rule_id": "comeback-20", "segment": "vip"},
        headers=admin,
    )
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "segment_unknown"


def test_generate_bearer_coupons_from_a_rule(
    client: TestClient, store: Store, admin: dict[str, str]
) -> None:
    reply = client.post(
        "/v1/admin/coupons/generate",
        json={"rule_id": "spend-700-get-70", "count": 3},
        headers=admin,
    )
    assert reply.status_code == 201, reply.text
    coupons = reply.json()["coupons"]
    assert len({c["code"] for c in coupons}) == 3
    assert all(c["bearer"] and c["amount_off"] == 7000 for c in coupons)
    quote = evaluate_json(
        client, basket_json(line_json("milk", 40000), coupons=[coupons[0]["code"]])
    )
    assert quote["discount_total"] == 7000
    for rule_id, code in (("bonus-5", "rule_not_a_coupon"), ("nope", "rule_not_a_coupon")):
        bad = client.post(
            "/v1/admin/coupons/generate", json={"rule_id": rule_id, "count": 1}, headers=admin
        )
        assert bad.status_code == 422 and bad.json()["error"]["code"] == code
    till = client.post(
        "/v1/admin/coupons/generate", json={"rule_id": "spend-700-get-70", "count": 1}
    )
    assert till.status_code == 403
