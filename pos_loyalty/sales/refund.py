"""Refunding some lines of a sale, or all that is left: money, points, stamps and coupons go
back in proportion, cumulatively, so a series of partial refunds ends where a full one would.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import col, select

from pos_loyalty.coupons.models import Coupon
from pos_loyalty.coupons.service import cancel_unused, return_redeemed
from pos_loyalty.errors import InvalidInput, NotFound
from pos_loyalty.ledger.models import EntryKind, LedgerEntry
from pos_loyalty.ledger.service import apply_to_customer, entry_row, insert_entries
from pos_loyalty.money import cumulative_slice, milli_to_json, qty_to_milli, share_of
from pos_loyalty.rules.config import ThresholdRule
from pos_loyalty.rules.quote import CouponToIssue
from pos_loyalty.sales.counters import give_back
from pos_loyalty.sales.idempotency import IdempotentJob, Outcome, request_hash, run_idempotent
from pos_loyalty.sales.models import (
    ReceiptOutbox,
    Refund,
    RefundLine,
    SaleTransaction,
    TransactionLine,
    TransactionStatus,
)
from pos_loyalty.sales.refund_policy import (
    NO_SETTLEMENT,
    charge_used_coupons,
    describe_settlement,
    recorded_condition_lost,
    recorded_conditions,
    settle_points_shortfall,
)
from pos_loyalty.sales.stamps import add_stamps
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.store import Store


def refund_sale(
    *,
    store: Store,
    key_owner: str,
    idempotency_key: str,
    body: Any,
    transaction_id: str,
    lines: Sequence[tuple[str, int | Decimal]] | None,
) -> Outcome:
    """Refund some lines (sku, qty) or everything that is left, exactly once per key."""

    def work(uow: UnitOfWork, now: datetime) -> Outcome:
        return _record_refund(
            uow=uow, store=store, now=now, transaction_id=transaction_id, requested=lines
        )

    job = IdempotentJob(
        key_owner=key_owner,
        key=idempotency_key,
        endpoint=f"POST /v1/transactions/{transaction_id}/refund",
        digest=request_hash(body),
        work=work,
    )
    return run_idempotent(store, job)


def _record_refund(
    *,
    uow: UnitOfWork,
    store: Store,
    now: datetime,
    transaction_id: str,
    requested: Sequence[tuple[str, int | Decimal]] | None,
) -> Outcome:
    session = uow.session
    sale = session.exec(
        select(SaleTransaction).where(col(SaleTransaction.id) == transaction_id).with_for_update()
    ).first()
    if sale is None:
        raise NotFound(f"no transaction {transaction_id!r}", code="transaction_not_found")
    sale_lines = list(
        session.exec(
            select(TransactionLine)
            .where(col(TransactionLine.transaction_id) == transaction_id)
            .order_by(col(TransactionLine.position))
        )
    )
    done: dict[int, int] = {}
    for position, qty in session.exec(
        select(RefundLine.position, RefundLine.qty_milli).where(
            col(RefundLine.transaction_id) == transaction_id
        )
    ):
        done[position] = done.get(position, 0) + int(qty)
    left = {ln.position: ln.qty_milli - done.get(ln.position, 0) for ln in sale_lines}
    take: dict[int, int] = {}
    if requested is None:
        take = {p: q for p, q in left.items() if q > 0}
        if not take:
            raise InvalidInput(
                "everything in this sale was already refunded", code="already_refunded"
            )
    else:
        for index, (sku, wanted) in enumerate(requested):
            want = qty_to_milli(wanted)
            for line in sale_lines:
                if line.sku != sku or want == 0:
                    continue
                free = left[line.position] - take.get(line.position, 0)
                step = min(free, want)
                if step > 0:
                    take[line.position] = take.get(line.position, 0) + step
                    want -= step
            if want > 0:
                raise InvalidInput(
                    f"lines[{index}]: refunding more of {sku!r} than is left of the sale",
                    code="refund_exceeds_sale",
                    details={"field": f"lines.{index}.qty", "sku": sku},
                )
    refund_id = uuid.uuid4().hex
    refund_lines: list[RefundLine] = []
    for line in sale_lines:
        step = take.get(line.position, 0)
        if not step:
            continue
        before = done.get(line.position, 0)
        after = before + step
        refund_lines.append(
            RefundLine(
                refund_id=refund_id,
                transaction_id=transaction_id,
                position=line.position,
                qty_milli=step,
                subtotal=cumulative_slice(line.subtotal, before, after, line.qty_milli),
                discount=cumulative_slice(line.discount, before, after, line.qty_milli),
                burn=cumulative_slice(line.burn, before, after, line.qty_milli),
                total=cumulative_slice(line.total, before, after, line.qty_milli),
            )
        )
    full = all(left[p] - take.get(p, 0) == 0 for p in left)
    amount = sum(r.total for r in refund_lines)
    # Money refunded so far (cumulative), to reverse points in proportion.
    prior = session.exec(
        select(RefundLine.total, RefundLine.burn, RefundLine.subtotal).where(
            col(RefundLine.transaction_id) == transaction_id
        )
    ).all()
    paid_before = sum(int(t) for t, _, _ in prior)
    burn_before = sum(int(b) for _, b, _ in prior)
    # Budgets and promo codes get back the refunded share of what the sale counted (of goods,
    # before rewards): a use (of a code, of a budget) when the whole sale comes back.
    goods_before = sum(int(subtotal) for _, _, subtotal in prior)
    give_back(
        uow=uow,
        transaction_id=transaction_id,
        before=goods_before,
        after=sale.subtotal if full else goods_before + sum(r.subtotal for r in refund_lines),
        whole=sale.subtotal,
        now=now,
    )
    paid_after = paid_before + amount
    burn_after = burn_before + sum(r.burn for r in refund_lines)

    earn_reversed = burn_returned = 0
    balance_after: int | None = None
    entries: list[dict[str, Any]] = []
    settlement = NO_SETTLEMENT  # the [refunds] policy, see refund_policy.py
    if sale.customer_id is not None:
        entries, earn_reversed, burn_returned = _points_reversal(
            uow=uow,
            store=store,
            sale=sale,
            refund_id=refund_id,
            now=now,
            full=full,
            paid_after=paid_after,
            burn_after=burn_after,
        )
        settlement = settle_points_shortfall(  # claw-back beyond the balance
            uow=uow,
            rules=store.rules,
            sale=sale,
            refund_id=refund_id,
            now=now,
            earn_reversed=earn_reversed,
            burn_returned=burn_returned,
            money=amount,
        )
        entries += settlement.entries
        balance_after, _ = apply_to_customer(
            uow=uow,
            customer_id=sale.customer_id,
            points_delta=burn_returned - earn_reversed + settlement.points_paid,
            spend_delta=-amount,
        )
        insert_entries(uow=uow, rows=entries)
        stamps_back: dict[str, int] = {}
        for line in sale_lines:
            step = take.get(line.position, 0)
            before = done.get(line.position, 0)
            for rule_id, units in line.stamps.items():
                back = (units * (before + step)) // line.qty_milli - (
                    units * before
                ) // line.qty_milli
                if back:
                    stamps_back[rule_id] = stamps_back.get(rule_id, 0) + back
        for rule_id, back in stamps_back.items():
            add_stamps(uow, sale.customer_id, rule_id, -back, now)
    else:
        stamps_back = {}

    issued = session.exec(
        select(Coupon.code, Coupon.rule_id).where(
            col(Coupon.issued_by_transaction_id) == transaction_id
        )
    ).all()
    recorded = recorded_conditions(sale.result)
    gone = {p: done.get(p, 0) + take.get(p, 0) for p in {*done, *take}}
    to_cancel = [
        code
        for code, rule_id in issued
        if full or _reward_lost(store, sale_lines, gone, recorded.get(rule_id or ""), rule_id)
    ]
    cancelled, already_used = cancel_unused(uow=uow, codes=to_cancel, now=now)
    settlement = charge_used_coupons(  # a spent coupon whose condition broke
        uow=uow,
        rules=store.rules,
        settlement=settlement,
        codes=already_used,
        money=amount,
        transaction_id=transaction_id,
    )
    returned = return_redeemed(uow=uow, transaction_id=transaction_id) if full else []

    sale.refunded_amount += amount
    sale.status = (
        TransactionStatus.REFUNDED.value if full else TransactionStatus.PARTIALLY_REFUNDED.value
    )
    session.add(sale)
    by_position = {ln.position: ln for ln in sale_lines}
    result: dict[str, Any] = {
        "refund_id": refund_id,
        "transaction_id": transaction_id,
        "created_at": now.isoformat(),
        "full": full,
        "status": sale.status,
        "amount": amount,
        "currency": sale.currency,
        "lines": [
            {
                "sku": by_position[r.position].sku,
                "name": by_position[r.position].name,
                "qty": milli_to_json(r.qty_milli),
                "amount": r.total,
                "burn": r.burn,
            }
            for r in refund_lines
        ],
        "points": {
            "earn_reversed": earn_reversed,
            "burn_returned": burn_returned,
            "balance_after": balance_after,
        },
        "lifetime_spend_reversed": amount if sale.customer_id else 0,
        "stamps_reversed": [{"rule_id": k, "units": v} for k, v in sorted(stamps_back.items())],
        "coupons": {
            "cancelled": cancelled,
            "already_used": already_used,
            "returned": returned,
        },
    }
    describe_settlement(result, settlement, balance_after)  # money kept, points debt
    session.add(
        Refund(
            id=refund_id,
            transaction_id=transaction_id,
            amount=result["amount"],  # the money returned, after what the policy kept
            points_earn_reversed=earn_reversed,
            points_burn_returned=burn_returned,
            full=full,
            result=result,
            created_at=now,
        )
    )
    session.flush()
    for r in refund_lines:
        session.add(r)
    session.add(
        ReceiptOutbox(
            transaction_id=transaction_id,
            refund_id=refund_id,
            kind="refund",
            lane_id=sale.lane_id,
            created_at=now,
            updated_at=now,
        )
    )
    return Outcome(200, result)


def _reward_lost(
    store: Store,
    sale_lines: Sequence[TransactionLine],
    gone: Mapping[int, int],
    recorded: CouponToIssue | None,
    rule_id: str | None,
) -> bool:
    """After a partial refund, does the sale still earn the coupon? Judged by the condition the
    sale recorded when priced; by the rules active now only for sales recorded before that."""
    if recorded is not None:
        return recorded_condition_lost(recorded, sale_lines, gone)
    rule = next((r for r in store.rules.config.rules if r.id == rule_id), None)
    if not isinstance(rule, ThresholdRule):
        return True
    kept = 0
    for line in sale_lines:
        net = line.subtotal - line.discount
        kept += net - share_of(net, gone.get(line.position, 0), line.qty_milli)
    return kept < rule.min_subtotal


def _points_reversal(
    *,
    uow: UnitOfWork,
    store: Store,
    sale: SaleTransaction,
    refund_id: str,
    now: datetime,
    full: bool,
    paid_after: int,
    burn_after: int,
) -> tuple[list[dict[str, Any]], int, int]:
    """Reverse earn and return burn in proportion to what is refunded (cumulatively, so a
    series of partial refunds ends exactly where a full one would)."""
    assert sale.customer_id is not None
    mine = list(
        uow.session.exec(select(LedgerEntry).where(col(LedgerEntry.transaction_id) == sale.id))
    )
    originals = [e for e in mine if e.kind in (EntryKind.EARN.value, EntryKind.BURN.value)]
    reversed_so_far: dict[int, int] = {}
    for entry in mine:
        if entry.reverses_id is not None:
            reversed_so_far[entry.reverses_id] = reversed_so_far.get(entry.reverses_id, 0) + abs(
                entry.points
            )
    expired: dict[int, int] = {}
    if any(e.kind == EntryKind.EARN.value for e in originals):
        ids = [e.id for e in originals if e.kind == EntryKind.EARN.value]
        for lot_id, points in uow.session.exec(
            select(LedgerEntry.expired_lot_id, LedgerEntry.points).where(
                col(LedgerEntry.expired_lot_id).in_(ids)
            )
        ):
            if lot_id is not None:
                expired[lot_id] = -int(points)
    basis = sale.total if sale.total > 0 else sale.subtotal
    expire_days = store.rules.points.expire_days
    entries: list[dict[str, Any]] = []
    earn_reversed = burn_returned = 0
    for original in originals:
        assert original.id is not None
        size = abs(original.points)
        if original.kind == EntryKind.EARN.value:
            target = size if full else (size * paid_after // basis if basis else 0)
            cap = size - expired.get(original.id, 0)
            amount = max(0, min(target, cap) - reversed_so_far.get(original.id, 0))
            if amount:
                earn_reversed += amount
                entries.append(
                    entry_row(
                        customer_id=sale.customer_id,
                        kind=EntryKind.REVERSE,
                        points=-amount,
                        now=now,
                        lot_id=original.id,
                        reverses_id=original.id,
                        transaction_id=sale.id,
                        refund_id=refund_id,
                        rule_id=original.rule_id,
                        note="возврат: начисление отменено",
                    )
                )
        else:
            target = (
                size if full else (size * burn_after // sale.burn_value if sale.burn_value else 0)
            )
            amount = max(0, min(target, size) - reversed_so_far.get(original.id, 0))
            if amount:
                burn_returned += amount
                entries.append(
                    entry_row(
                        customer_id=sale.customer_id,
                        kind=EntryKind.REVERSE,
                        points=amount,
                        now=now,
                        expires_at=now + timedelta(days=expire_days) if expire_days else None,
                        reverses_id=original.id,
                        transaction_id=sale.id,
                        refund_id=refund_id,
                        note="возврат: списанные баллы возвращены",
                    )
                )
    return entries, earn_reversed, burn_returned
