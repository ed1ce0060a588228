"""Coupons issued by a sale and spent by the next: exactly once, whoever tries at the same time."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from pos_loyalty.coupons.codes import coupon_qr, normalise_code
from pos_loyalty.coupons.models import Coupon
from pos_loyalty.ledger.models import LedgerEntry
from pos_loyalty.rules.compiled import compile_rules
from pos_loyalty.rules.config import RulesConfig
from pos_loyalty.sales.commit import commit_job
from pos_loyalty.sales.idempotency import Outcome, run_idempotent
from pos_loyalty.sales.models import ReceiptOutbox, SaleTransaction
from pos_loyalty.security import StoreSecret
from pos_loyalty.store import Store
from tests.factories import (
    SALE_RULES,
    basket_json,
    commit_json,
    enrol_json,
    evaluate_json,
    line_json,
    sell_json,
)


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return SALE_RULES


def written(store: Store) -> tuple[int, ...]:
    """How many sales, ledger entries, coupons and receipts the database holds."""
    with store.uow() as uow:
        return tuple(
            int(uow.session.exec(select(func.count()).select_from(model)).one())
            for model in (SaleTransaction, LedgerEntry, Coupon, ReceiptOutbox)
        )


def coupon_for(client: TestClient, customer_id: str | None) -> dict[str, Any]:
    """A 70 ₽ coupon earned by a 800 ₽ sale."""
    token = {"id": customer_id} if customer_id else None
    sale = sell_json(client, basket_json(line_json(unit_price=80000), customer=token))
    issued: dict[str, Any] = sale["coupons_issued"][0]
    return issued


def test_issued_coupon_is_spent_once_with_code_or_qr(client: TestClient, store: Store) -> None:
    customer_id = enrol_json(client)
    coupon = coupon_for(client, customer_id)
    assert coupon["amount_off"] == 7000 and not coupon["bearer"]
    status = client.get(f"/v1/coupons/{coupon['code'].replace('-', '').lower()}").json()
    assert status["status"] == "issued" and status["owner_customer_id"] == customer_id
    body = basket_json(
        line_json(unit_price=20000), customer={"id": customer_id}, coupons=[coupon["qr"]]
    )
    quote = evaluate_json(client, body)
    assert quote["discount_total"] == 7000 and quote["total"] == 13000
    sale = commit_json(client, {"quote_id": quote["quote_id"]})
    assert sale.status_code == 201
    status = client.get(f"/v1/coupons/{coupon['qr']}").json()
    assert status["status"] == "redeemed"
    assert status["redeemed_by_transaction_id"] == sale.json()["transaction_id"]
    again = evaluate_json(client, {**body, "coupons": [coupon["code"]]})
    assert again["coupons"]["rejected"][0]["reason"] == "redeemed"
    before = written(store)
    refused = commit_json(client, {"quote_id": again["quote_id"]})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "coupon_already_redeemed"
    assert written(store) == before


def test_coupon_refusals_fail_the_whole_commit_with_their_codes(
    client: TestClient, store: Store
) -> None:
    owner = enrol_json(client)
    other = enrol_json(client, phone="9035556677", name="Пётр Сидоров")
    coupon = coupon_for(client, owner)
    before = client.get(f"/v1/customers/{other}").json()["balance"]
    rows = written(store)

    def commit_with(text: str, customer: str | None = other) -> Any:
        body = basket_json(
            line_json(unit_price=20000),
            customer={"id": customer} if customer else None,
            coupons=[text],
        )
        return commit_json(client, body)

    forged = coupon_qr(StoreSecret(b"f" * 32), normalise_code(coupon["code"]))
    mistyped = coupon["code"][:-1] + ("0" if coupon["code"][-1] != "0" else "1")
    cases = [
        (coupon["code"], 422, "coupon_not_owned"),
        (forged, 422, "coupon_invalid"),
        (mistyped, 422, "coupon_invalid"),
    ]
    for text, status, code in cases:
        reply = commit_with(text)
        assert (reply.status_code, reply.json()["error"]["code"]) == (status, code), text
    start = store.now()
    store.clock = lambda: start + timedelta(days=15)
    expired = commit_with(coupon["code"], owner)
    assert (expired.status_code, expired.json()["error"]["code"]) == (422, "coupon_expired")
    assert client.get(f"/v1/coupons/{coupon['code']}").json()["status"] == "expired"
    store.clock = lambda: start
    assert client.get(f"/v1/customers/{other}").json()["balance"] == before
    assert written(store) == rows  # no sale, entry, coupon or receipt from any refusal
    assert client.get(f"/v1/coupons/{coupon['code']}").json()["status"] == "issued"
    assert client.get("/v1/coupons/0000-0000-000").status_code == 404
    assert client.get("/v1/coupons/nonsense").json()["error"]["code"] == "coupon_invalid"


def test_eight_tills_presenting_one_coupon_at_once_exactly_one_wins(
    client: TestClient, store: Store
) -> None:
    coupon = coupon_for(client, None)  # a bearer coupon: anyone may present it
    assert coupon["bearer"]
    body = basket_json(line_json(unit_price=20000), coupons=[coupon["code"]])
    quotes = [evaluate_json(client, body)["quote_id"] for _ in range(8)]
    barrier = threading.Barrier(8)
    outcomes: list[Outcome | Exception] = []

    def till(n: int) -> None:
        barrier.wait(timeout=10)
        try:
            outcomes.append(
                run_idempotent(
                    store,
                    commit_job(
                        store=store,
                        key_owner=f"till-{n}",
                        idempotency_key="sale",
                        body={"quote_id": quotes[n]},
                        quote_id=quotes[n],
                        basket=None,
                        payment=None,
                    ),
                )
            )
        except Exception as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=till, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    won = [o for o in outcomes if isinstance(o, Outcome)]
    lost = [o for o in outcomes if not isinstance(o, Outcome)]
    assert len(won) == 1 and len(lost) == 7
    assert {getattr(e, "code", repr(e)) for e in lost} == {"coupon_already_redeemed"}
    assert written(store)[0] == 2  # the sale that earned the coupon and the one that spent it
    status = client.get(f"/v1/coupons/{coupon['code']}").json()
    assert status["redeemed_by_transaction_id"] == won[0].body["transaction_id"]


def test_a_rule_may_issue_bearer_coupons_that_anyone_presents(
    client: TestClient, store: Store
) -> None:
    """`reward.coupon.bearer = true`: the coupon is a gift to pass on, whoever earned it."""
    rules = [dict(r) for r in SALE_RULES["rules"]]
    for rule in rules:
        if rule["kind"] == "threshold":
            rule["reward"] = {"coupon": {**rule["reward"]["coupon"], "bearer": True}}
    config = RulesConfig.from_dict({**SALE_RULES, "rules": rules})
    store.rules = compile_rules(config, tz=store.settings.store.tz)
    earner = enrol_json(client)
    friend = enrol_json(client, phone="9035556677", name="Пётр Сидоров")
    quote = evaluate_json(client, basket_json(line_json(unit_price=80000), customer={"id": earner}))
    assert quote["coupons"]["to_issue"][0]["bearer"] is True  # the till sees it before the sale
    coupon = coupon_for(client, earner)
    assert coupon["bearer"] is True
    status = client.get(f"/v1/coupons/{coupon['code']}").json()
    assert status["bearer"] is True and status["owner_customer_id"] is None
    gift = sell_json(
        client,
        basket_json(line_json(unit_price=20000), customer={"id": friend}, coupons=[coupon["code"]]),
    )
    assert gift["discount_total"] == 7000
    assert client.get(f"/v1/coupons/{coupon['code']}").json()["status"] == "redeemed"


def test_a_coupon_keeps_the_stack_group_its_rule_gave_it(client: TestClient, store: Store) -> None:
    """Coupons compete in the group "coupon" unless their rule says otherwise: a gift coupon
    with `stack_group = ""` stacks with the 70 ₽ coupon, where two plain coupons would not."""
    gift = {
        "id": "gift-50",
        "kind": "threshold",
        "label": "Подарок 50 ₽",
        "min_subtotal": 70000,
        "reward": {"coupon": {"amount_off": 5000, "valid_days": 14, "stack_group": ""}},
    }
    config = RulesConfig.from_dict({**SALE_RULES, "rules": [*SALE_RULES["rules"], gift]})
    store.rules = compile_rules(config, tz=store.settings.store.tz)
    customer_id = enrol_json(client)
    first = basket_json(line_json(unit_price=80000), customer={"id": customer_id})
    to_issue = {c["rule_id"]: c for c in evaluate_json(client, first)["coupons"]["to_issue"]}
    assert to_issue["gift-50"]["stack_group"] is None  # the quote says so
    assert "stack_group" not in to_issue["spend-700-get-70"]  # the default, left out
    issued = {c["rule_id"]: c["code"] for c in sell_json(client, first)["coupons_issued"]}
    issued_again = {c["rule_id"]: c["code"] for c in sell_json(client, first)["coupons_issued"]}
    with store.uow() as uow:
        groups = {c.rule_id: c.stack_group for c in uow.session.exec(select(Coupon)).all()}
    assert groups == {"spend-700-get-70": "coupon", "gift-50": None}

    both = basket_json(
        line_json(unit_price=30000),
        customer={"id": customer_id},
        coupons=[issued["spend-700-get-70"], issued["gift-50"]],
    )
    quote = evaluate_json(client, both)
    assert quote["discount_total"] == 7000 + 5000 and not quote["coupons"]["rejected"]
    plain = evaluate_json(
        client,
        {**both, "coupons": [issued["spend-700-get-70"], issued_again["spend-700-get-70"]]},
    )
    assert plain["discount_total"] == 7000
    assert [r["reason"] for r in plain["coupons"]["rejected"]] == ["lost_stack_group"]
