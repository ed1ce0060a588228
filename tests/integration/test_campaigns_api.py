"""Coupons for a campaign through the API on both databases: bearer coupons generated from a
rule, and a reactivation campaign to the lapsed segment exported with the contacts each
customer allowed (the phone in clear only where kept and consented to SMS, the e-mail only with
consent to e-mail); a customer reachable on neither gets no coupon."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from pos_loyalty.apikeys.models import Scope
from pos_loyalty.audit.service import Operator
from pos_loyalty.coupons.campaigns import issue_to_segment, write_outreach_csv
from pos_loyalty.coupons.models import Coupon
from pos_loyalty.segments.service import compute_rfm
from pos_loyalty.storage import UnitOfWork
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


def enrol(
    client: TestClient, phone: str, name: str, consents: dict[str, bool], email: str | None = None
) -> str:
    body = {"phone": phone, "name": name, "consents": consents, "email": email}
    reply = client.post("/v1/customers", json=body)
    assert reply.status_code == 201, reply.text
    customer_id: str = reply.json()["id"]
    return customer_id


def lapsed_store(client: TestClient, store: Store) -> dict[str, str]:
    """Five customers last seen 200 days ago, one seen yesterday; RFM run tonight. Вера can be
    reached by e-mail only; Глеб gave an e-mail but consented to SMS only."""
    now = store.now()
    store.clock = lambda: now - timedelta(days=200)
    ids = {
        "ivan": enrol(client, "9161234567", "Иван Петров", {"sms": True}),
        "olga": enrol(client, "9161110000", "Ольга Ким", {"marketing": True, "sms": False}),
        "petr": enrol(client, "9162220000", "Пётр Орлов", {}),
        "vera": enrol(client, "9164440000", "Вера Ли", {"email": True}, "vera@example.ru"),
        "gleb": enrol(client, "9165550000", "Глеб Ан", {"sms": True}, "gleb@example.ru"),
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
    client: TestClient, store: Store, admin: dict[str, str], tmp_path: Path
) -> None:
    ids = lapsed_store(client, store)
    body = {"rule_id": "comeback-20", "segment": "lapsed"}
    reply = client.post("/v1/admin/campaigns/segment", json=body, headers=admin)
    assert reply.status_code == 201, reply.text
    done = reply.json()
    # Пётр gave no consent; Ольга consented to marketing but to no channel: nothing reaches her.
    assert (done["issued"], done["without_consent"], done["already_holding"]) == (3, 2, 0)
    contacts = {c["customer_id"]: c for c in done["contacts"]}
    assert set(contacts) == {ids["ivan"], ids["vera"], ids["gleb"]}  # Анна is active
    ivan, vera, gleb = contacts[ids["ivan"]], contacts[ids["vera"]], contacts[ids["gleb"]]
    assert (ivan["phone"], ivan["phone_in_clear"], ivan["email"], ivan["channels"]) == (
        "+79161234567",
        True,
        "",
        ["sms"],
    )
    assert (vera["phone"], vera["phone_in_clear"], vera["email"], vera["channels"]) == (
        "+7 *** ***-00-00",
        False,
        "vera@example.ru",
        ["email"],
    )
    assert (gleb["phone_in_clear"], gleb["email"]) == (True, "")  # no consent to e-mail
    assert ivan["name"] == "Иван П." and ivan["coupon"]["percent_off"] == 20
    assert ivan["coupon"]["bearer"] is False

    again = client.post("/v1/admin/campaigns/segment", json=body, headers=admin).json()
    assert (again["issued"], again["already_holding"]) == (0, 3)

    # The CSV for the sending service, from another rule's coupon: the e-mail only with consent.
    with store.uow(write=True) as uow:
        outreach = issue_to_segment(
            uow=uow,
            settings=store.settings,
            secret=store.secret,
            rules=store.rules,
            operator=Operator(key_id=None, name="test"),
            rule_id="spend-700-get-70",
            segment="lapsed",
            now=store.now(),
        )
    write_outreach_csv(outreach, tmp_path / "outreach.csv")
    with (tmp_path / "outreach.csv").open(encoding="utf-8", newline="") as f:
        rows = {r["customer_id"]: r for r in csv.DictReader(f)}
    assert set(rows) == {ids["ivan"], ids["vera"], ids["gleb"]}
    assert {cid: r["email"] for cid, r in rows.items()} == {
        ids["ivan"]: "",
        ids["vera"]: "vera@example.ru",
        ids["gleb"]: "",
    }

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
    details = audit.json()["entries"][-1]["details"]  # the first run; newest first
    assert (details["issued"], details["phones_in_clear"], details["emails"]) == (3, 2, 1)
    assert details["without_consent"] == 2
    # The log keeps counts, not contacts: no customer's number or e-mail, in any form. (It
    # looked for "7916", which a timestamp's microseconds can hold: 18:54:30.791697.)
    logged = str(audit.json())
    for contact in ("9161234567", "9164440000", "9165550000", "vera@example.ru", "gleb@"):
        assert contact not in logged and contact[-7:] not in logged, contact
    assert "example.ru" not in str(audit.json())


def test_phones_stay_masked_when_the_store_does_not_keep_them(
    client: TestClient, store: Store, admin: dict[str, str]
) -> None:
    ids = lapsed_store(client, store)
    reply = client.post(
        "/v1/admin/campaigns/segment",
        json={"rule_id": "comeback-20", "segment": "lapsed", "inactive_days": 190},
        headers=admin,
    )
    done = reply.json()
    # A masked phone reaches nobody: Иван and Глеб consented to SMS only, and get no coupon.
    assert (done["issued"], done["without_consent"]) == (1, 4)
    contacts = {c["customer_id"]: c for c in done["contacts"]}
    assert set(contacts) == {ids["vera"]}
    vera = contacts[ids["vera"]]
    assert (vera["phone"], vera["phone_in_clear"], vera["email"]) == (
        "+7 *** ***-00-00",
        False,
        "vera@example.ru",
    )
    with store.uow() as uow:
        assert held_by(uow, ids["ivan"]) == held_by(uow, ids["gleb"]) == 0
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


def held_by(uow: UnitOfWork, customer_id: str) -> int:
    return len(
        uow.session.exec(select(Coupon).where(col(Coupon.owner_customer_id) == customer_id)).all()
    )


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
