"""Committing a sale: a stored quote (or a basket priced afresh) becomes the transaction, its
lines, ledger entries, coupons redeemed and issued, stamps and the receipt outbox row, all in
the write transaction `run_jobs` holds with the idempotency record.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pos_loyalty.coupons.service import (
    IssuedCoupon,
    coupon_error,
    issue_coupon,
    redeem_coupon,
)
from pos_loyalty.errors import InvalidInput
from pos_loyalty.ledger.models import EntryKind, LedgerEntry
from pos_loyalty.ledger.service import apply_to_customer, entry_row
from pos_loyalty.money import qty_to_milli
from pos_loyalty.rules.compiled import CompiledRule, CompiledRules
from pos_loyalty.rules.payload import BasketIn
from pos_loyalty.sales.idempotency import IdempotentJob, Outcome, request_hash
from pos_loyalty.sales.models import (
    ReceiptOutbox,
    SaleTransaction,
    TransactionLine,
    TransactionStatus,
)
from pos_loyalty.sales.pricing import LaneCustomerLookup, price
from pos_loyalty.sales.quotes import load_quote
from pos_loyalty.sales.stamps import add_stamps
from pos_loyalty.segments.service import personal_rules_with_active_coupon, scope_issued_coupon
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.storage.core import insert_into
from pos_loyalty.store import Store


@dataclass(frozen=True, slots=True)
class Payment:
    method: str
    paid: int


def _stamp_units(rules: CompiledRules, result: Mapping[str, Any]) -> list[dict[str, int]]:
    """Per line, the stamp-card units it added, by rule (so a refund can take them back)."""
    per_line: list[dict[str, int]] = [{} for _ in result["lines"]]
    by_id: dict[str, CompiledRule] = {r.id: r for r in rules.item_rules}
    for progress in result.get("stamps", []):
        rule = by_id.get(progress["rule_id"])
        if rule is None or not progress.get("advance"):
            continue
        for index, line in enumerate(result["lines"]):
            qty = line["qty"]
            if not isinstance(qty, int):
                continue
            if rule.skus is not None and line["sku"] not in rule.skus:
                continue
            if rule.categories is not None and line["category"] not in rule.categories:
                continue
            if line["sku"] in rule.exclude_skus:
                continue
            per_line[index][rule.id] = qty
    return per_line


def commit_job(
    *,
    store: Store,
    key_owner: str,
    idempotency_key: str,
    body: Any,
    quote_id: str | None,
    basket: BasketIn | None,
    payment: Payment | None,
    lane_customer: LaneCustomerLookup | None = None,
) -> IdempotentJob:
    """The commit of a stored quote (or of a basket, priced afresh inside the write
    transaction, so it sees the balance and coupons as they are at commit)."""

    def work(uow: UnitOfWork, now: datetime) -> Outcome:
        if quote_id is not None:
            stored = load_quote(uow=uow, store=store, quote_id=quote_id, now=now)
            result = dict(stored.result)
            customer_id = stored.customer_id
            lane_id = stored.lane_id
            used_quote_id: str = quote_id
        else:
            assert basket is not None
            priced = price(
                uow=uow,
                store=store,
                basket=basket,
                explain=False,
                now=now,
                lane_customer=lane_customer,
            )
            result, customer_id, lane_id = priced.result, priced.customer_id, basket.lane_id
            used_quote_id = priced.quote_id
        return _record_sale(
            uow=uow,
            store=store,
            now=now,
            result=result,
            customer_id=customer_id,
            lane_id=lane_id,
            quote_id=used_quote_id,
            payment=payment,
        )

    return IdempotentJob(
        key_owner=key_owner,
        key=idempotency_key,
        endpoint="POST /v1/transactions",
        digest=request_hash(body),
        work=work,
    )


def _record_sale(
    *,
    uow: UnitOfWork,
    store: Store,
    now: datetime,
    result: dict[str, Any],
    customer_id: str | None,
    lane_id: str | None,
    quote_id: str,
    payment: Payment | None,
) -> Outcome:
    """Write the sale with Core statements (a handful of round trips, no ORM flushes)."""
    rejected = result["coupons"]["rejected"]
    if rejected:
        first = rejected[0]
        raise coupon_error(first["code"], first["reason"], first["message"])
    total = int(result["total"])
    if payment is not None and payment.paid < total:
        raise InvalidInput(
            f"payment.paid ({payment.paid}) is less than the total ({total})",
            code="payment_insufficient",
            details={"field": "payment.paid", "total": total},
        )
    points = result["points"]
    earn, burn = int(points["earn"]), int(points["burn"])
    transaction_id = uuid.uuid4().hex
    session = uow.session
    balance_after: int | None = None
    lifetime_spend = 0
    if customer_id is not None:
        # The conditional UPDATE: checks the burn against the balance and locks the row.
        balance_after, lifetime_spend = apply_to_customer(
            uow=uow,
            customer_id=customer_id,
            points_delta=earn - burn,
            spend_delta=total,
            burn=burn,
        )
    elif earn or burn:
        raise InvalidInput("points need an identified customer", code="no_customer")
    to_issue = result["coupons"]["to_issue"]
    personal = [reward["rule_id"] for reward in to_issue if reward.get("trigger")]
    if customer_id is not None and personal:  # the customer's row is locked by now
        held = personal_rules_with_active_coupon(
            session=session, customer_id=customer_id, rule_ids=personal, now=now
        )
        to_issue = [r for r in to_issue if not (r.get("trigger") and r["rule_id"] in held)]
    for applied in result["coupons"]["applied"]:
        redeem_coupon(
            uow=uow,
            code=applied["code"],
            customer_id=customer_id,
            transaction_id=transaction_id,
            now=now,
        )
    issued: list[IssuedCoupon] = [
        issue_coupon(
            uow=uow,
            secret=store.secret,
            owner_customer_id=None if reward.get("bearer") else customer_id,
            label=reward["label"],
            amount_off=reward.get("amount_off"),
            percent_off=reward.get("percent_off"),
            min_subtotal=int(reward.get("min_subtotal", 0)),
            valid_from=datetime.fromisoformat(reward["valid_from"]),
            expires_at=datetime.fromisoformat(reward["expires_at"]),
            rule_id=reward["rule_id"],
            transaction_id=transaction_id,
            stack_group=reward.get("stack_group", "coupon"),
            now=now,
        )
        for reward in to_issue
    ]
    for reward, coupon in zip(to_issue, issued, strict=True):
        # personal offers name their goods (favourite category, replenished sku, cross-sell)
        scope_issued_coupon(
            session=uow.session,
            code=coupon.code,
            skus=reward.get("skus", []),
            categories=reward.get("categories", []),
        )
    body = dict(result)
    body["coupons"] = {**result["coupons"], "to_issue": to_issue}
    if customer_id is not None and balance_after is not None:
        body["points"] = {
            **points,
            "balance": balance_after - earn + burn,
            "balance_after": balance_after,
        }
        body["customer"] = {
            **(result.get("customer") or {}),
            "balance": balance_after,
            "lifetime_spend": lifetime_spend,
        }
    body.update(
        {
            "transaction_id": transaction_id,
            "created_at": now.isoformat(),
            "lane_id": lane_id,
            "store_id": store.settings.store.id,
            "coupons_issued": [c.to_dict() for c in issued],
            "balance_after": balance_after,
            "payment": (
                {"method": payment.method, "paid": payment.paid, "change": payment.paid - total}
                if payment
                else None
            ),
        }
    )
    conn = session.connection()
    conn.execute(
        insert_into(SaleTransaction),
        dict(
            id=transaction_id,
            store_id=store.settings.store.id,
            lane_id=lane_id,
            customer_id=customer_id,
            quote_id=quote_id,
            rules_version=result["rules_version"],
            currency=result["currency"],
            subtotal=int(result["subtotal"]),
            discount_total=int(result["discount_total"]),
            burn_value=int(points.get("burn_value", 0)),
            total=total,
            points_earned=earn,
            points_burned=burn,
            payment_method=payment.method if payment else None,
            paid=payment.paid if payment else None,
            change=(payment.paid - total) if payment else 0,
            status=TransactionStatus.COMPLETED.value,
            refunded_amount=0,
            stamps={s["rule_id"]: int(s["advance"]) for s in result.get("stamps", [])},
            result=body,
            created_at=now,
        ),
    )
    stamp_units = _stamp_units(store.rules, result)
    conn.execute(
        insert_into(TransactionLine),
        [
            {
                "transaction_id": transaction_id,
                "position": position,
                "sku": line["sku"],
                "name": line["name"],
                "category": line["category"],
                "qty_milli": qty_to_milli(line["qty"]),
                "unit_price": line["unit_price"],
                "subtotal": line["subtotal"],
                "discount": line["discount"],
                "burn": line.get("burn", 0),
                "total": line["total"],
                "stamps": stamp_units[position],
            }
            for position, line in enumerate(result["lines"])
        ],
    )
    if customer_id is not None:
        expire_days = store.rules.points.expire_days
        expires_at = now + timedelta(days=expire_days) if expire_days else None
        entries: list[dict[str, Any]] = []
        if burn:
            entries.append(
                entry_row(
                    customer_id=customer_id,
                    kind=EntryKind.BURN,
                    points=-burn,
                    now=now,
                    transaction_id=transaction_id,
                    note="оплата баллами",
                )
            )
        for earned in points.get("earned", []):
            if earned["points"]:
                entries.append(
                    entry_row(
                        customer_id=customer_id,
                        kind=EntryKind.EARN,
                        points=int(earned["points"]),
                        now=now,
                        expires_at=expires_at,
                        transaction_id=transaction_id,
                        rule_id=earned["rule_id"],
                        note=earned["label"][:200],
                    )
                )
        if entries:
            conn.execute(insert_into(LedgerEntry), entries)
        for progress in result.get("stamps", []):
            if int(progress["advance"]):
                add_stamps(uow, customer_id, progress["rule_id"], int(progress["advance"]), now)
    conn.execute(
        insert_into(ReceiptOutbox),
        dict(
            transaction_id=transaction_id,
            kind="sale",
            lane_id=lane_id,
            status="queued",
            attempts=0,
            created_at=now,
            updated_at=now,
        ),
    )
    return Outcome(201, body)
