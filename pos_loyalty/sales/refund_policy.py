"""What a refund does when what it takes back is already spent, by the store's explicit policy.

- Points: reversing a sale's earn may ask for more than the customer holds (the points were
  spent meanwhile). `[refunds] points_shortfall` says what happens: `"deduct_money"` keeps their
  value from the money refunded (an `adjust` entry records the points paid so, and whatever the
  money cannot cover stays a debt), `"debt"` records the shortfall as a debt: the balance shows
  it, burning is blocked, and later purchases pay it back. Never a silent negative balance: the
  refund's answer and slip say `debt`.
- Coupons: a coupon the sale earned is withdrawn only when the condition that earned it no longer
  holds after the refund, judged by what the sale recorded when it was priced (`earned_by` of each
  coupon to issue: the basket positions measured and the threshold, or the trigger goods), not by
  the rules active now. A withdrawn coupon already spent follows `[refunds] used_coupon`: `"keep"`
  (the store absorbs it) or `"deduct_money"` (the discount it gave is kept from the money).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from pos_loyalty.coupons.models import Coupon
from pos_loyalty.ledger.models import EntryKind
from pos_loyalty.ledger.service import entry_row, ledger_balance
from pos_loyalty.rules.compiled import CompiledRules
from pos_loyalty.rules.quote import CouponsSummary, CouponToIssue
from pos_loyalty.sales.models import Refund, SaleTransaction, TransactionLine
from pos_loyalty.storage import UnitOfWork


@dataclass(frozen=True, slots=True)
class Settlement:
    """What the policy did with points beyond the balance and with spent coupons."""

    shortfall: int = 0  # points the claw-back wanted beyond what the customer held
    points_paid: int = 0  # of those, paid with money kept from the refund
    money_for_points: int = 0
    entries: tuple[dict[str, Any], ...] = ()  # ledger rows (`entry_row`)
    coupons_charged: Mapping[str, int] = field(default_factory=dict)  # code → discount kept

    @property
    def money_kept(self) -> int:
        return self.money_for_points + sum(self.coupons_charged.values())


NO_SETTLEMENT = Settlement()


def settle_points_shortfall(
    *,
    uow: UnitOfWork,
    rules: CompiledRules,
    sale: SaleTransaction,
    refund_id: str,
    now: datetime,
    earn_reversed: int,
    burn_returned: int,
    money: int,
) -> Settlement:
    """Points reversed beyond the balance: paid from the refund's money, or left as a debt."""
    assert sale.customer_id is not None
    held = max(0, ledger_balance(uow=uow, customer_id=sale.customer_id) + burn_returned)
    shortfall = max(0, earn_reversed - held)
    if shortfall == 0:
        return NO_SETTLEMENT
    if rules.config.refunds.points_shortfall != "deduct_money":
        return Settlement(shortfall=shortfall)
    point_value = rules.points.point_value_minor
    paid = min(shortfall, money // point_value)
    if paid == 0:
        return Settlement(shortfall=shortfall)
    entry = entry_row(
        customer_id=sale.customer_id,
        kind=EntryKind.ADJUST,
        points=paid,
        now=now,
        transaction_id=sale.id,
        refund_id=refund_id,
        note="возврат: потраченные баллы оплачены из суммы возврата",
    )
    return Settlement(
        shortfall=shortfall,
        points_paid=paid,
        money_for_points=paid * point_value,
        entries=(entry,),
    )


def charge_used_coupons(
    *,
    uow: UnitOfWork,
    rules: CompiledRules,
    settlement: Settlement,
    codes: Sequence[str],
    money: int,
    transaction_id: str,
) -> Settlement:
    """Withdrawn coupons that were already spent: their discount kept from the money, or not
    (once per coupon, however many refunds of the sale follow)."""
    if not codes or rules.config.refunds.used_coupon != "deduct_money":
        return settlement
    earlier = uow.session.exec(
        select(Refund.result).where(col(Refund.transaction_id) == transaction_id)
    ).all()
    charged_before = {
        code
        for result in earlier
        for code in ((result or {}).get("kept") or {}).get("for_coupons", {})
    }
    charged: dict[str, int] = {}
    left = money - settlement.money_kept
    for display in codes:
        if display in charged_before:
            continue
        code = display.replace("-", "").upper()
        coupon = uow.session.get(Coupon, code)
        if coupon is None or coupon.redeemed_by_transaction_id is None:
            continue
        spent_in = uow.session.get(SaleTransaction, coupon.redeemed_by_transaction_id)
        applied = CouponsSummary.from_dict(spent_in.result["coupons"]).applied if spent_in else ()
        given = sum(a.amount for a in applied if _canonical(a.code) == code)
        kept = min(given, left)
        if kept > 0:
            charged[display] = kept
            left -= kept
    return Settlement(
        shortfall=settlement.shortfall,
        points_paid=settlement.points_paid,
        money_for_points=settlement.money_for_points,
        entries=settlement.entries,
        coupons_charged=charged,
    )


def _canonical(code: str) -> str:
    return code.replace("-", "").upper()


def describe_settlement(
    result: dict[str, Any], settlement: Settlement, balance_after: int | None
) -> None:
    """Put the policy's effect into the refund's answer: money returned after what was kept, the
    points paid with money, and a debt left, if any (`points.debt`, never a bare negative)."""
    kept = settlement.money_kept
    result["goods_amount"] = result["amount"]
    result["amount"] = result["amount"] - kept
    result["kept"] = {
        "total": kept,
        "for_points": settlement.money_for_points,
        "points_paid": settlement.points_paid,
        "for_coupons": dict(settlement.coupons_charged),
    }
    points = result["points"]
    points["shortfall"] = settlement.shortfall
    points["debt"] = max(0, -balance_after) if balance_after is not None else 0


def recorded_condition_lost(
    issued: CouponToIssue, sale_lines: Sequence[TransactionLine], gone: Mapping[int, int]
) -> bool:
    """Does the refund break what earned the sale's coupon, as the sale recorded it when priced
    (`earned_lines`, `earned_min_subtotal`), whatever the rules are by now?"""
    if not issued.earned_lines:
        return False  # nothing in this basket earned it (a birthday, a regular purchase …)
    lines = {ln.position: ln for ln in sale_lines}
    positions = [p for p in issued.earned_lines if p in lines]
    if issued.earned_min_subtotal is None:  # trigger goods: lost once none of them is kept
        return all(gone.get(p, 0) >= lines[p].qty_milli for p in positions)
    kept = 0
    for p in positions:
        line = lines[p]
        net = line.subtotal - line.discount
        share = min(gone.get(p, 0), line.qty_milli)
        kept += net - (2 * net * share + line.qty_milli) // (2 * line.qty_milli)  # half-up
    return kept < issued.earned_min_subtotal


def recorded_conditions(sale_result: Mapping[str, Any]) -> dict[str, CouponToIssue]:
    """The coupons the sale earned, by rule, typed, as recorded when it was priced; sales
    recorded before conditions were (no `earned_by`) have none here."""
    to_issue = (sale_result.get("coupons") or {}).get("to_issue", ())
    return {
        c["rule_id"]: CouponToIssue.from_dict(c) for c in reversed(to_issue) if "earned_by" in c
    }
