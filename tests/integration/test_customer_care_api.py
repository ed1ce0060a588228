"""A customer's data under 152-FZ and the operator's tools, through the API on both databases:
edit, export, erase, merge, manual adjustment, all admin-scope and in the audit log."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from pos_loyalty.apikeys.models import Scope
from pos_loyalty.customers.models import Customer
from pos_loyalty.ledger.models import LedgerEntry
from pos_loyalty.ledger.service import verify_ledger
from pos_loyalty.segments.service import compute_rfm, contact_list
from pos_loyalty.store import Store
from tests.conftest import new_key
from tests.factories import SALE_RULES, basket_json, enrol_json, line_json, sell_json


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return SALE_RULES


@pytest.fixture
def admin(store: Store) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_key(store, Scope.ADMIN)}"}


def audit(client: TestClient, admin: dict[str, str], **query: str) -> list[dict[str, Any]]:
    reply = client.get("/v1/audit", params=query, headers=admin)
    assert reply.status_code == 200, reply.text
    entries: list[dict[str, Any]] = reply.json()["entries"]
    return entries


def buy(client: TestClient, customer_id: str, rub: int = 1000) -> dict[str, Any]:
    return sell_json(
        client, basket_json(line_json("milk", rub * 100), customer={"id": customer_id})
    )


def test_operator_routes_need_an_admin_key(client: TestClient, store: Store) -> None:
    customer_id = enrol_json(client)
    hq = {"Authorization": f"Bearer {new_key(store, Scope.HQ)}"}
    for headers in ({}, hq):  # the client's own key is a till's
        reply = client.post(
            f"/v1/admin/customers/{customer_id}/points",
            json={"points": 100, "reason": "жалоба"},
            headers=headers,
        )
        assert reply.status_code == 403, reply.text
        assert reply.json()["error"]["code"] == "forbidden"
        assert client.get("/v1/audit", headers=headers).status_code == 403
    assert client.get(f"/v1/customers/{customer_id}").json()["balance"] == 0


def test_edit_profile_and_withdraw_consent_stops_outreach_at_once(
    client: TestClient, store: Store, admin: dict[str, str]
) -> None:
    reply = client.post(
        "/v1/customers",
        json={"phone": "9161234567", "name": "Иван Петров", "consents": {"sms": True}},
    )
    customer_id = reply.json()["id"]
    buy(client, customer_id)
    with store.uow(write=True) as uow:  # the evening's RFM run
        compute_rfm(uow=uow, config=store.settings.segments, now=store.now())
    with store.uow() as uow:
        listed = contact_list(
            session=uow.session,
            config=store.settings.segments,
            segment=_segment_of(store, customer_id),
            now=store.now(),
            tz=store.settings.store.tz,
        )
    assert [c.customer_id for c in listed.contacts] == [customer_id]

    reply = client.patch(
        f"/v1/admin/customers/{customer_id}",
        json={"name": "Иван Петров-Водкин", "birthday": "1985-03-14", "consents": {"sms": False}},
        headers=admin,
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["name"] == "Иван Петров-Водкин"
    assert body["birthday"] == "1985-03-14"
    assert body["consents"] == {"sms": False}
    with store.uow() as uow:
        listed = contact_list(
            session=uow.session,
            config=store.settings.segments,
            segment=_segment_of(store, customer_id),
            now=store.now(),
            tz=store.settings.store.tz,
        )
    assert listed.contacts == () and listed.without_consent == 1

    cleared = client.patch(
        f"/v1/admin/customers/{customer_id}", json={"birthday": None}, headers=admin
    )
    assert cleared.json()["birthday"] is None
    bad = client.patch(
        f"/v1/admin/customers/{customer_id}", json={"name": "Иван\x1b@"}, headers=admin
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "name_invalid"

    entries = audit(client, admin, customer_id=customer_id, action="profile_edited")
    assert [e["details"]["fields"] for e in entries] == [
        ["birthday"],
        ["name", "birthday", "consents"],
    ]
    assert entries[1]["details"]["consents"] == {"sms": False}
    assert all(e["key_id"] is not None for e in entries)
    assert "Водкин" not in str(entries)  # the log says what changed, not to what


def test_email_at_enrolment_edit_export_and_erase(
    client: TestClient, store: Store, admin: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    ivan = {"phone": "9161234567", "name": "Иван Петров", "consents": {"email": True}}
    for typed in (
        "ivan@",
        "ivan petrov@example.ru",
        "ivan@@example.ru",
        "ivan@example",
        "a\x1b@b.ru",
    ):
        refused = client.post("/v1/customers", json={**ivan, "email": typed})
        assert refused.status_code == 422, typed
        error = refused.json()["error"]
        assert (error["code"], error["details"]["field"]) == ("email_invalid", "email")
        assert "ivan" not in error["message"]  # the refusal does not repeat the address
    with store.uow() as uow:
        assert uow.session.exec(select(Customer)).all() == []  # nothing written

    reply = client.post("/v1/customers", json={**ivan, "email": " Ivan.P@Example.RU "})
    assert reply.status_code == 201, reply.text
    customer_id = reply.json()["id"]
    assert reply.json()["email_masked"] == "I***@example.ru"
    assert client.get(f"/v1/customers/{customer_id}").json()["email_masked"] == "I***@example.ru"
    identified = client.post("/v1/identify", json={"phone": "9161234567"}).json()
    assert identified["customer"]["email_masked"] is None  # a till's look-up goes without it
    with store.uow() as uow:
        row = uow.session.get(Customer, customer_id)
        assert row is not None and row.email == "Ivan.P@example.ru"  # the domain lower-cased

    edited = client.patch(
        f"/v1/admin/customers/{customer_id}",
        json={"email": "ivan@mail.example.ru", "consents": {"email": False}},
        headers=admin,
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["email_masked"] == "i***@mail.example.ru"
    assert edited.json()["consents"] == {"email": False}
    bad = client.patch(f"/v1/admin/customers/{customer_id}", json={"email": "x@y"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "email_invalid"
    entries = audit(client, admin, customer_id=customer_id, action="profile_edited")
    assert [e["details"]["fields"] for e in entries] == [["email", "consents"]]
    assert "example" not in str(entries)  # the log says what changed, not to what

    exported = client.get(f"/v1/admin/customers/{customer_id}/export", headers=admin).json()
    assert exported["profile"]["email"] == "ivan@mail.example.ru"
    removed = client.patch(
        f"/v1/admin/customers/{customer_id}", json={"email": None}, headers=admin
    )
    assert removed.json()["email_masked"] is None
    client.patch(
        f"/v1/admin/customers/{customer_id}", json={"email": "ivan@example.ru"}, headers=admin
    )
    erased = client.post(f"/v1/admin/customers/{customer_id}/erase", headers=admin)
    assert erased.status_code == 200, erased.text
    with store.uow() as uow:
        row = uow.session.get(Customer, customer_id)
        assert row is not None and row.email is None
    assert "example.ru" not in caplog.text.lower()  # never logged


def _segment_of(store: Store, customer_id: str) -> str:
    from pos_loyalty.segments.models import CustomerSegment

    with store.uow() as uow:
        row = uow.session.get(CustomerSegment, customer_id)
        assert row is not None
        return row.segment


def test_export_holds_everything_stored_and_is_audited(
    client: TestClient, store: Store, admin: dict[str, str]
) -> None:
    customer_id = enrol_json(client)
    sale = buy(client, customer_id, rub=800)  # 5 % points and the 700 ₽ threshold coupon
    reply = client.get(f"/v1/admin/customers/{customer_id}/export", headers=admin)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["profile"]["name"] == "Иван Петров"
    assert "phone_hash" not in data["profile"]
    assert len(data["cards"]) == 1
    assert [s["id"] for s in data["sales"]] == [sale["transaction_id"]]
    assert data["sales"][0]["lines"][0]["sku"] == "milk"
    assert [e["kind"] for e in data["ledger"]] == ["earn"]
    assert data["ledger"][0]["points"] == 40
    assert len(data["coupons"]) == 1 and data["coupons"][0]["status"] == "issued"
    assert audit(client, admin, customer_id=customer_id)[0]["action"] == "data_exported"
    missing = client.get(f"/v1/admin/customers/{'0' * 32}/export", headers=admin)
    assert missing.status_code == 404


def test_export_holds_the_referrals_both_ways(
    client: TestClient, store: Store, admin: dict[str, str]
) -> None:
    ivan = client.post("/v1/customers", json={"phone": "9161234567", "name": "Иван Петров"}).json()
    maria = client.post(
        "/v1/customers",
        json={"phone": "9037654321", "name": "Мария", "referred_by": ivan["referral_code"]},
    ).json()

    def referrals(customer_id: str) -> dict[str, Any]:
        reply = client.get(f"/v1/admin/customers/{customer_id}/export", headers=admin)
        assert reply.status_code == 200, reply.text
        section: dict[str, Any] = reply.json()["referrals"]
        return section

    brought = referrals(ivan["id"])
    assert brought["code"]["code"] == ivan["referral_code"]
    assert brought["referred_by"] is None
    assert [r["new_customer_id"] for r in brought["referred"]] == [maria["id"]]
    assert brought["referred"][0]["rewarded_at"] is None
    came = referrals(maria["id"])
    assert came["code"]["code"] == maria["referral_code"]
    assert came["referred_by"]["referrer_id"] == ivan["id"]
    assert came["referred_by"]["code"] == ivan["referral_code"]
    assert came["referred"] == []
    # Erasure drops Ivan's own code (nobody can bring a friend with it); who was brought by
    # whom stays, between bare ids, as the sales and the ledger do.
    assert client.post(f"/v1/admin/customers/{ivan['id']}/erase", headers=admin).status_code == 200
    erased = referrals(ivan["id"])
    assert erased["code"] is None
    assert [r["new_customer_id"] for r in erased["referred"]] == [maria["id"]]


def test_manual_adjustment_is_a_ledger_entry_with_reason_and_key(
    client: TestClient, store: Store, admin: dict[str, str]
) -> None:
    customer_id = enrol_json(client)
    reply = client.post(
        f"/v1/admin/customers/{customer_id}/points",
        json={"points": 300, "reason": "Компенсация: просроченный товар"},
        headers=admin,
    )
    assert reply.status_code == 201, reply.text
    done = reply.json()
    assert done["balance"] == 300
    key_id = audit(client, admin)[0]["key_id"]
    assert done["note"] == f"Компенсация: просроченный товар (key {key_id})"
    ledger = client.get(f"/v1/customers/{customer_id}/ledger").json()
    assert [(e["kind"], e["points"]) for e in ledger["entries"]] == [("adjust", 300)]
    too_much = client.post(
        f"/v1/admin/customers/{customer_id}/points",
        json={"points": -301, "reason": "ошибка"},
        headers=admin,
    )
    assert too_much.status_code == 409
    assert too_much.json()["error"]["code"] == "insufficient_points"
    for body in ({"points": 0, "reason": "x"}, {"points": 5, "reason": "   "}):
        bad = client.post(f"/v1/admin/customers/{customer_id}/points", json=body, headers=admin)
        assert bad.status_code == 422, bad.text
    debit = client.post(
        f"/v1/admin/customers/{customer_id}/points",
        json={"points": -100, "reason": "ошибка кассира"},
        headers=admin,
    )
    assert debit.json()["balance"] == 200
    entries = audit(client, admin, action="points_adjusted")
    assert [e["details"]["points"] for e in entries] == [-100, 300]
    assert entries[0]["details"]["ledger_entry_id"] == debit.json()["ledger_entry_id"]


def test_erase_removes_the_person_and_keeps_the_books(
    client: TestClient, store: Store, admin: dict[str, str]
) -> None:
    reply = client.post(
        "/v1/customers",
        json={
            "phone": "9161234567",
            "name": "Иван Петров",
            "birthday": "1985-03-14",
            "consents": {"sms": True},
        },
    )
    customer_id, card = reply.json()["id"], reply.json()["card_number"]
    sale = buy(client, customer_id, rub=800)
    erased = client.post(f"/v1/admin/customers/{customer_id}/erase", headers=admin)
    assert erased.status_code == 200, erased.text
    assert erased.json() == {
        "customer_id": customer_id,
        "erased": True,
        "cards": 1,
        "coupons_cancelled": 1,
        "sales_kept": 1,
        "merged_accounts": 0,
    }
    # Nobody can be found by the phone, the card or the id any more.
    for body in ({"phone": "9161234567"}, {"card": card}):
        assert client.post("/v1/identify", json=body).status_code == 404
    assert client.get(f"/v1/customers/{customer_id}").status_code == 404
    # The phone can enrol again, as a new person.
    assert enrol_json(client) != customer_id
    # The sale and the ledger stay, detached: the receipt shows no name or phone.
    receipt = client.get(f"/v1/receipts/{sale['transaction_id']}.txt")
    assert receipt.status_code == 200
    assert "Иван" not in receipt.text and "45-67" not in receipt.text
    with store.uow() as uow:
        row = uow.session.get(Customer, customer_id)
        assert row is not None
        assert (row.name, row.phone_e164, row.phone_masked, row.birthday, row.consents) == (
            "",
            None,
            "",
            None,
            {},
        )
        entries = uow.session.exec(
            select(LedgerEntry).where(LedgerEntry.customer_id == customer_id)
        ).all()
        assert [e.points for e in entries] == [40]
        assert verify_ledger(uow=uow)[1] == []
    again = client.post(f"/v1/admin/customers/{customer_id}/erase", headers=admin)
    assert again.status_code == 409 and again.json()["error"]["code"] == "customer_closed"
    logged = audit(client, admin, customer_id=customer_id)
    assert [e["action"] for e in logged] == ["customer_erased"]
    assert "Иван" not in str(logged)


def test_merge_moves_cards_points_coupons_stamps_and_sales(
    client: TestClient, store: Store, admin: dict[str, str]
) -> None:
    stays = enrol_json(client, "9161234567", "Иван Петров")
    goes = enrol_json(client, "9037654321", "Иван Петров")
    buy(client, stays, rub=100)  # 5 points
    sale = buy(client, goes, rub=800)  # 40 points and a coupon
    sell_json(
        client,
        basket_json(line_json("latte", 15000, 2, category="coffee"), customer={"id": goes}),
    )  # 15 points, 2 stamps
    goes_card = client.get(f"/v1/admin/customers/{goes}/export", headers=admin).json()["cards"]
    reply = client.post(f"/v1/admin/customers/{goes}/merge", json={"into": stays}, headers=admin)
    assert reply.status_code == 200, reply.text
    merged = reply.json()
    assert merged["id"] == stays
    assert merged["balance"] == 5 + 40 + 15
    assert goes_card[0]["number"] in merged["card_numbers"]
    # The moved card finds the person who stays; the closed account is found by nothing.
    found = client.post("/v1/identify", json={"card": goes_card[0]["number"]})
    assert found.json()["customer"]["id"] == stays
    assert client.get(f"/v1/customers/{goes}").status_code == 404
    export = client.get(f"/v1/admin/customers/{stays}/export", headers=admin).json()
    assert len(export["coupons"]) == 1
    assert export["stamps"][0]["count"] == 2
    assert sale["transaction_id"] in [s["id"] for s in export["sales"]]
    assert export["merged_accounts"][0]["customer_id"] == goes
    assert [e["points"] for e in export["merged_accounts"][0]["ledger"]] == [40, 15, -40, -15]
    # A refund of a sale made before the merge takes the points back where they now are.
    refund = client.post(
        f"/v1/transactions/{sale['transaction_id']}/refund",
        json={},
        headers={"Idempotency-Key": "refund-after-merge"},
    )
    assert refund.status_code in {200, 201}, refund.text
    assert client.get(f"/v1/customers/{stays}").json()["balance"] == 5 + 15
    with store.uow() as uow:
        assert verify_ledger(uow=uow)[1] == []
    same = client.post(f"/v1/admin/customers/{stays}/merge", json={"into": stays}, headers=admin)
    assert same.status_code == 422
    closed = client.post(f"/v1/admin/customers/{goes}/merge", json={"into": stays}, headers=admin)
    assert closed.status_code == 409
    logged = audit(client, admin, action="customers_merged")
    assert {e["customer_id"] for e in logged} == {stays, goes}
    assert logged[0]["details"]["points"] == 55
