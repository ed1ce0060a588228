"""Committing a sale: a stored quote (or a basket priced afresh) becomes the transaction, its
lines, ledger entries, coupons redeemed and issued, stamps and the receipt outbox row, all in
the write transaction `run_jobs` holds with the idempotency record.
"""

from __future__ import annotations

import uuid
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
from pos_loyalty.ledger.expiring import expiring_after_sale
from pos_loyalty.ledger.models import EntryKind
from pos_loyalty.ledger.pending import pending_points
from pos_loyalty.ledger.service import apply_to_customer, entry_row, insert_entries
from pos_loyalty.money import qty_to_milli
from pos_loyalty.rules.compiled import CompiledRules
from pos_loyalty.rules.payload import BasketIn
from pos_loyalty.rules.quote import PointsSummary
from pos_loyalty.sales.basket_origin import check_basket_origin
from pos_loyalty.sales.budgets import count_budgets  # issue 16
from pos_loyalty.sales.idempotency import IdempotentJob, Outcome, request_hash
from pos_loyalty.sales.models import OutboxStatus, TransactionStatus
from pos_loyalty.sales.pricing import LaneCustomerLookup, Priced, price
from pos_loyalty.sales.promo_codes import count_promo_uses  # issue 16
from pos_loyalty.sales.quotes import load_quote
from pos_loyalty.sales.referrals import reward_referral  # issue 16
from pos_loyalty.sales.stamps import add_stamps
from pos_loyalty.segments.service import personal_rules_with_active_coupon, scope_issued_coupon
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.storage.engine import json_dumps
from pos_loyalty.store import Store

# The sale's rows, on the driver (a commit's hot path; SQLAlchemy Core costs ~10x per statement).
_SALE = (
    "INSERT INTO transactions (id, store_id, lane_id, customer_id, quote_id, rules_version,"
    " currency, subtotal, discount_total, burn_value, total, points_earned, points_burned,"
    " payment_method, paid, change, status, refunded_amount, stamps, result, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)"
)
_LINE = (
    "INSERT INTO transaction_lines (transaction_id, position, sku, name, category, qty_milli,"
    " unit_price, subtotal, discount, burn, total, stamps)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_OUTBOX = (
    "INSERT INTO receipt_outbox (transaction_id, kind, lane_id, status, attempts, created_at,"
    " updated_at) VALUES (?, 'sale', ?, ?, 0, ?, ?)"
)


@dataclass(frozen=True, slots=True)
class Payment:
    method: str
    paid: int


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
    if basket is not None:  # refused before the job, so no idempotency record is written
        check_basket_origin(
            settings=store.settings, store_id=basket.store_id, lane_id=basket.lane_id
        )

    def work(uow: UnitOfWork, now: datetime) -> Outcome:
        # One program for the whole sale: a bundle activated meanwhile (head office's switch)
        # must not price it under one version and count its limits or expiry under another.
        rules = store.rules
        if quote_id is not None:
            stored = load_quote(uow=uow, store=store, quote_id=quote_id, now=now, rules=rules)
            return record_sale(
                uow=uow,
                store=store,
                rules=rules,
                now=now,
                priced=stored.priced,
                lane_id=stored.lane_id,
                payment=payment,
            )
        assert basket is not None
        priced = price(
            uow=uow,
            store=store,
            basket=basket,
            explain=False,
            now=now,
            lane_customer=lane_customer,
            rules=rules,
        )
        return record_sale(
            uow=uow,
            store=store,
            rules=rules,
            now=now,
            priced=priced,
            lane_id=basket.lane_id,
            payment=payment,
        )

    return IdempotentJob(
        key_owner=key_owner,
        key=idempotency_key,
        endpoint="POST /v1/transactions",
        digest=request_hash(body),
        work=work,
    )


def record_sale(
    *,
    uow: UnitOfWork,
    store: Store,
    rules: CompiledRules,
    now: datetime,
    priced: Priced,
    lane_id: str | None,
    payment: Payment | None,
) -> Outcome:
    """Write the sale the typed quote describes, with Core statements (a handful of round
    trips, no ORM flushes); the answer is the quote's with what the commit added."""
    quote, result, customer_id = priced.quote, priced.result, priced.customer_id
    if quote.coupons.rejected:
        first = quote.coupons.rejected[0]
        raise coupon_error(first.code, first.reason, first.message)
    total = quote.total
    if payment is not None and payment.paid < total:
        raise InvalidInput(
            f"payment.paid ({payment.paid}) is less than the total ({total})",
            code="payment_insufficient",
            details={"field": "payment.paid", "total": total},
        )
    points = quote.points
    earn, burn = points.earn, points.burn
    transaction_id = uuid.uuid4().hex
    session = uow.session
    balance_after: int | None = None
    lifetime_spend = 0
    # -- issue 16: a referred customer's first qualifying sale rewards both (sales/referrals.py) --
    reward_referral(
        uow=uow,
        rules=rules,
        customer_id=customer_id,
        transaction_id=transaction_id,
        paid=total,
        now=now,
    )
    if customer_id is not None:
        # The conditional UPDATE: checks the burn against the balance and locks the row. Points
        # in the return window stay out of reach even if another till sold since the quote.
        pending = (
            pending_points(
                uow=uow,
                customer_id=customer_id,
                now=now,
                pending_days=rules.points.pending_days,
            )
            if burn
            else 0
        )
        balance_after, lifetime_spend = apply_to_customer(
            uow=uow,
            customer_id=customer_id,
            points_delta=earn - burn,
            spend_delta=total,
            burn=burn,
            keep=pending,
        )
    elif earn or burn:
        raise InvalidInput("points need an identified customer", code="no_customer")
    # -- issue 16: rule limits counted in this transaction (sales/promo_codes.py, budgets.py) --
    count_promo_uses(
        uow=uow,
        rules=rules,
        uses=quote.promo_codes or (),
        customer_id=customer_id,
        transaction_id=transaction_id,
        now=now,
    )
    count_budgets(
        uow=uow,
        rules=rules,
        quote=quote,
        store_id=store.settings.store.id,
        customer_id=customer_id,
        transaction_id=transaction_id,
        now=now,
        tz=store.settings.store.tz,
    )
    # -- end issue 16 --
    to_issue = list(quote.coupons.to_issue)
    personal = [reward.rule_id for reward in to_issue if reward.trigger]
    if customer_id is not None and personal:  # the customer's row is locked by now
        held = personal_rules_with_active_coupon(
            session=session, customer_id=customer_id, rule_ids=personal, now=now
        )
        to_issue = [r for r in to_issue if not (r.trigger and r.rule_id in held)]
    for applied in quote.coupons.applied:
        redeem_coupon(
            uow=uow,
            code=applied.code,
            customer_id=customer_id,
            transaction_id=transaction_id,
            now=now,
        )
    issued: list[IssuedCoupon] = [
        issue_coupon(
            uow=uow,
            secret=store.secret,
            owner_customer_id=None if reward.bearer else customer_id,
            label=reward.label,
            amount_off=reward.amount_off,
            percent_off=reward.percent_off,
            min_subtotal=reward.min_subtotal,
            valid_from=reward.valid_from,
            expires_at=reward.expires_at,
            rule_id=reward.rule_id,
            transaction_id=transaction_id,
            stack_group=reward.stack_group,
            now=now,
        )
        for reward in to_issue
    ]
    for reward, coupon in zip(to_issue, issued, strict=True):
        # personal offers name their goods (favourite category, replenished sku, cross-sell)
        scope_issued_coupon(
            session=uow.session, code=coupon.code, skus=reward.skus, categories=reward.categories
        )
    body = dict(result)
    body["coupons"] = {**result["coupons"], "to_issue": [r.to_dict() for r in to_issue]}
    if customer_id is not None and balance_after is not None:
        body["points"] = {
            **result["points"],
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
    if customer_id is not None and balance_after is not None:  # the "Сгорят" line, at the sale
        expire_days = rules.points.expire_days
        expiring = expiring_after_sale(
            uow=uow,
            customer_id=customer_id,
            burn=burn,
            earned=[e.points for e in points.earned],
            expires_at=now + timedelta(days=expire_days) if expire_days else None,
            balance=balance_after,
            tz=store.settings.store.tz,
        )
        body["points_expiring"] = expiring.to_dict() if expiring else None
    if customer_id is not None:
        for progress in quote.stamps:
            if progress.advance:
                add_stamps(uow, customer_id, progress.rule_id, progress.advance, now)
    with uow.pipeline():  # the sale's rows: one round trip on PostgreSQL
        uow.driver(
            _SALE,
            (
                transaction_id,
                store.settings.store.id,
                lane_id,
                customer_id,
                priced.quote_id,
                quote.rules_version,
                quote.currency,
                quote.subtotal,
                quote.discount_total,
                points.burn_value,
                total,
                earn,
                burn,
                payment.method if payment else None,
                payment.paid if payment else None,
                (payment.paid - total) if payment else 0,
                TransactionStatus.COMPLETED.value,
                json_dumps({s.rule_id: s.advance for s in quote.stamps}),
                json_dumps(body),
                now,
            ),
        )
        uow.driver_many(
            _LINE,
            [
                (
                    transaction_id,
                    position,
                    line.sku,
                    line.name,
                    line.category,
                    qty_to_milli(line.qty),
                    line.unit_price,
                    line.subtotal,
                    line.discount,
                    line.burn,
                    line.total,
                    json_dumps(line.stamps),
                )
                for position, line in enumerate(quote.lines)
            ],
        )
        if customer_id is not None:
            insert_entries(
                uow=uow,
                rows=_ledger_rows(
                    customer_id=customer_id,
                    points=points,
                    now=now,
                    expire_days=rules.points.expire_days,
                    transaction_id=transaction_id,
                ),
            )
        uow.driver(_OUTBOX, (transaction_id, lane_id, OutboxStatus.QUEUED.value, now, now))
    return Outcome(201, body)


def _ledger_rows(
    *, customer_id: str, points: PointsSummary, now: datetime, expire_days: int, transaction_id: str
) -> list[dict[str, Any]]:
    """The sale's ledger entries: the burn, and each rule's earn (a lot expiring together)."""
    expires_at = now + timedelta(days=expire_days) if expire_days else None
    entries: list[dict[str, Any]] = []
    if points.burn:
        entries.append(
            entry_row(
                customer_id=customer_id,
                kind=EntryKind.BURN,
                points=-points.burn,
                now=now,
                transaction_id=transaction_id,
                note="оплата баллами",
            )
        )
    for earned in points.earned:
        if earned.points:
            entries.append(
                entry_row(
                    customer_id=customer_id,
                    kind=EntryKind.EARN,
                    points=earned.points,
                    now=now,
                    expires_at=expires_at,
                    transaction_id=transaction_id,
                    rule_id=earned.rule_id,
                    note=earned.label[:200],
                )
            )
    return entries
