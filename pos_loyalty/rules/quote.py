"""The engine's answer: every number the till shows, each tied to the rule that produced it.

`Quote.to_dict()` is the JSON of `POST /v1/baskets/evaluate` minus what the service adds
(`quote_id`, `expires_at`, `customer`). Amounts are minor units; times RFC 3339 with offset;
`qty` is a JSON integer for whole units and a JSON number with at most 3 places for weighed goods.

`Quote.to_stored()` adds what the till never sees but commit and refund need (each line's stamp
units by rule); the condition a coupon to issue was earned under travels in its `earned_by`, so a
sale's own answer holds it for refunds. `Quote.from_stored()` reads it all
back typed, so a stored quote commits exactly as it was priced, whatever the rules are by then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from pos_loyalty.money import Qty, parse_qty, qty_to_json


@dataclass(slots=True)  # not frozen: built per line per basket, and frozen init is slow
class LineApplication:
    rule_id: str
    amount: int


@dataclass(slots=True)  # not frozen: built per line per basket, and frozen init is slow
class QuoteLine:
    """One basket line: `total` = subtotal − discount − burn (the money paid for it)."""

    sku: str
    name: str
    category: str
    qty: Qty
    unit_price: int
    subtotal: int
    discount: int
    burn: int  # value of points spread onto this line (largest remainder)
    total: int
    applied: tuple[LineApplication, ...]
    # Stamp-card units this line adds, by rule (kept with the sale so a refund takes them back).
    stamps: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "name": self.name,
            "category": self.category,
            "qty": qty_to_json(self.qty),
            "unit_price": self.unit_price,
            "subtotal": self.subtotal,
            "discount": self.discount,
            "burn": self.burn,
            "total": self.total,
            "applied": [{"rule_id": a.rule_id, "amount": a.amount} for a in self.applied],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], stamps: dict[str, int] | None = None) -> QuoteLine:
        qty = d["qty"]
        return cls(
            d["sku"],
            d["name"],
            d["category"],
            parse_qty(qty if isinstance(qty, int) else str(qty)),
            d["unit_price"],
            d["subtotal"],
            d["discount"],
            d["burn"],
            d["total"],
            tuple(LineApplication(a["rule_id"], a["amount"]) for a in d["applied"]),
            dict(stamps or {}),
        )


@dataclass(slots=True)
class AppliedRule:
    """A money discount (kind: discount, stamps, threshold, coupon); `capped` by max_discount."""

    rule_id: str
    label: str
    kind: str
    amount: int
    capped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "label": self.label,
            "kind": self.kind,
            "amount": self.amount,
            "capped": self.capped,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AppliedRule:
        return cls(d["rule_id"], d["label"], d["kind"], d["amount"], d["capped"])


@dataclass(frozen=True, slots=True)
class EarnedPoints:
    rule_id: str
    label: str
    points: int


@dataclass(frozen=True, slots=True)
class PointsSummary:
    earn: int
    burn: int
    balance: int
    balance_after: int
    burn_requested: int
    burn_limited_by: str | None  # None | no_customer | balance | redeem_max_percent
    burn_limited_message: str | None  # why fewer than asked, in the store's language
    burn_value: int  # minor units paid with points
    point_value_minor: int
    earned: tuple[EarnedPoints, ...]
    earn_expires_at: datetime | None  # None when points never expire
    earn_available_at: datetime | None = None  # `[points] pending_days`: spendable from then

    def to_dict(self) -> dict[str, Any]:
        return {
            "earn": self.earn,
            "burn": self.burn,
            "balance": self.balance,
            "balance_after": self.balance_after,
            "burn_requested": self.burn_requested,
            "burn_limited_by": self.burn_limited_by,
            "burn_limited_message": self.burn_limited_message,
            "burn_value": self.burn_value,
            "point_value_minor": self.point_value_minor,
            "earned": [
                {"rule_id": e.rule_id, "label": e.label, "points": e.points} for e in self.earned
            ],
            "earn_expires_at": _time(self.earn_expires_at),
            "earn_available_at": _time(self.earn_available_at),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PointsSummary:
        return cls(
            earn=d["earn"],
            burn=d["burn"],
            balance=d["balance"],
            balance_after=d["balance_after"],
            burn_requested=d["burn_requested"],
            burn_limited_by=d["burn_limited_by"],
            burn_limited_message=d["burn_limited_message"],
            burn_value=d["burn_value"],
            point_value_minor=d["point_value_minor"],
            earned=tuple(EarnedPoints(e["rule_id"], e["label"], e["points"]) for e in d["earned"]),
            earn_expires_at=_parse_time(d["earn_expires_at"]),
            earn_available_at=_parse_time(d.get("earn_available_at")),
        )


@dataclass(frozen=True, slots=True)
class AppliedCoupon:
    code: str
    rule_id: str  # "coupon:<code>", as in lines[].applied
    label: str
    amount: int


@dataclass(frozen=True, slots=True)
class RejectedCoupon:
    code: str
    reason: str  # stable code: unknown, forged, redeemed, expired, not_yet_valid, not_owned, ...
    message: str


def coupon_expiry(start: datetime, valid_days: int, tz: tzinfo) -> datetime:
    """When a coupon good for `valid_days` from `start` stops working: at the end of the store's
    local day on which those days run out, so the date printed on the receipt holds all day."""
    due = (start + timedelta(days=valid_days)).astimezone(tz)
    if due.time() == time(0):
        return due
    return datetime.combine(due.date() + timedelta(days=1), time(0), tzinfo=tz)


def coupon_valid_until(expires_at: datetime, tz: tzinfo | None = None) -> date:
    """The last local day a coupon is good on, the one date the receipt, the API and the demo
    all show: a coupon expiring at local midnight is good through the day before. `tz` defaults
    to `expires_at`'s own offset (a quote's times carry the store's)."""
    local = expires_at.astimezone(tz) if tz is not None else expires_at
    if local.time() == time(0):
        return local.date() - timedelta(days=1)
    return local.date()


@dataclass(frozen=True, slots=True)
class CouponToIssue:
    """A coupon the sale earns; the commit creates it (code, MAC) and prints it on the receipt."""

    rule_id: str
    label: str
    amount_off: int | None
    percent_off: int | None
    min_subtotal: int
    valid_from: datetime
    expires_at: datetime
    # Personal coupons: the goods they are for (empty: the whole basket), the trigger that chose
    # them and why, in the store's language. Left out of the JSON when empty.
    skus: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    trigger: str | None = None
    reason: str | None = None
    stack_group: str | None = "coupon"  # the coupon's when presented; None stacks with all
    bearer: bool = False  # anyone may present it, not only the customer who earned it
    # What earned it in this basket, for refunds to judge under the program the sale was priced
    # with: the basket positions whose paid amount had to reach `earned_min_subtotal` (threshold),
    # or (cross-sell, `earned_min_subtotal` None) whose goods triggered it. Empty: nothing here.
    earned_lines: tuple[int, ...] = ()
    earned_min_subtotal: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule_id": self.rule_id, "label": self.label}
        if self.amount_off is not None:
            out["amount_off"] = self.amount_off
        if self.percent_off is not None:
            out["percent_off"] = self.percent_off
        out["min_subtotal"] = self.min_subtotal
        out["valid_from"] = _time(self.valid_from)
        out["expires_at"] = _time(self.expires_at)
        out["valid_until"] = coupon_valid_until(self.expires_at).isoformat()
        if self.skus:
            out["skus"] = list(self.skus)
        if self.categories:
            out["categories"] = list(self.categories)
        if self.trigger is not None:
            out["trigger"] = self.trigger
        if self.reason is not None:
            out["reason"] = self.reason
        if self.stack_group != "coupon":
            out["stack_group"] = self.stack_group
        if self.bearer:
            out["bearer"] = True
        out["earned_by"] = (
            {"lines": list(self.earned_lines), "min_subtotal": self.earned_min_subtotal}
            if self.earned_lines
            else None
        )
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CouponToIssue:
        earned = d.get("earned_by")
        return cls(
            rule_id=d["rule_id"],
            label=d["label"],
            amount_off=d.get("amount_off"),
            percent_off=d.get("percent_off"),
            min_subtotal=d["min_subtotal"],
            valid_from=datetime.fromisoformat(d["valid_from"]),
            expires_at=datetime.fromisoformat(d["expires_at"]),
            skus=tuple(d.get("skus", ())),
            categories=tuple(d.get("categories", ())),
            trigger=d.get("trigger"),
            reason=d.get("reason"),
            stack_group=d.get("stack_group", "coupon"),
            bearer=d.get("bearer", False),
            earned_lines=tuple(earned["lines"]) if earned else (),
            earned_min_subtotal=earned["min_subtotal"] if earned else None,
        )


@dataclass(frozen=True, slots=True)
class CouponsSummary:
    applied: tuple[AppliedCoupon, ...]
    rejected: tuple[RejectedCoupon, ...]
    to_issue: tuple[CouponToIssue, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": [
                {"code": c.code, "rule_id": c.rule_id, "label": c.label, "amount": c.amount}
                for c in self.applied
            ],
            "rejected": [
                {"code": c.code, "reason": c.reason, "message": c.message} for c in self.rejected
            ],
            "to_issue": [c.to_dict() for c in self.to_issue],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CouponsSummary:
        return cls(
            applied=tuple(
                AppliedCoupon(c["code"], c["rule_id"], c["label"], c["amount"])
                for c in d["applied"]
            ),
            rejected=tuple(
                RejectedCoupon(c["code"], c["reason"], c["message"]) for c in d["rejected"]
            ),
            to_issue=tuple(CouponToIssue.from_dict(c) for c in d["to_issue"]),
        )


@dataclass(frozen=True, slots=True)
class Hint:
    type: str  # "upsell"
    rule_id: str
    missing: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "rule_id": self.rule_id,
            "missing": self.missing,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class TierStatus:
    name: str | None
    next: str | None
    missing: int | None  # lifetime spend still needed for `next`

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "next": self.next, "missing": self.missing}


@dataclass(slots=True)
class StampProgress:
    """`count`/`every` after this basket; `advance` is what the commit adds to the counter."""

    rule_id: str
    label: str
    count: int
    every: int
    free_units: int
    advance: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "label": self.label,
            "count": self.count,
            "every": self.every,
            "free_units": self.free_units,
            "advance": self.advance,
        }


@dataclass(frozen=True, slots=True)
class NotApplied:
    """Why a rule did not apply: a stable `code` for machines and `message` for people."""

    rule_id: str
    label: str
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "label": self.label,
            "code": self.code,
            "message": self.message,
        }


# -- issue 16: promo codes -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PromoCodeUse:
    """A typed promo code (normalised) and the applied rule it unlocked: commit counts it
    against the rule's `promo` limits (sales/promo_codes.py)."""

    code: str
    rule_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "rule_id": self.rule_id}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PromoCodeUse:
        return cls(d["code"], d["rule_id"])


# -- end issue 16 ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the cashier should know about the basket that no single rule says: goods no
    reward may touch (`no_rewards_lines`, `no_rewards_basket`) or a discount a price floor cut
    (`price_floor`, with the rule, the sku and the amount cut)."""

    code: str
    message: str
    rule_id: str | None = None
    sku: str | None = None
    amount: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "rule_id": self.rule_id,
            "sku": self.sku,
            "amount": self.amount,
        }


@dataclass(frozen=True, slots=True)
class Quote:
    rules_version: str
    currency: str
    evaluated_at: datetime
    customer_id: str | None
    lines: tuple[QuoteLine, ...]  # in the basket's order
    subtotal: int
    discount_total: int
    total: int  # subtotal − discount_total − points.burn_value
    applied: tuple[AppliedRule, ...]  # money discounts, Σ amount = discount_total
    points: PointsSummary
    coupons: CouponsSummary
    hints: tuple[Hint, ...]
    tier: TierStatus | None  # None without a customer
    stamps: tuple[StampProgress, ...]
    not_applied: tuple[NotApplied, ...] | None  # only with explain=True
    notices: tuple[Notice, ...] = ()  # goods out of the program, discounts cut by price floors
    # issue 16: the promo codes the basket carried, as commit counts them (None: none typed);
    # set by sales/pricing.py after the codes are checked
    promo_codes: tuple[PromoCodeUse, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (ints, strings, lists, None); `not_applied` only when explained."""
        out: dict[str, Any] = {
            "rules_version": self.rules_version,
            "currency": self.currency,
            "evaluated_at": _time(self.evaluated_at),
            "customer_id": self.customer_id,
            "lines": [line.to_dict() for line in self.lines],
            "subtotal": self.subtotal,
            "discount_total": self.discount_total,
            "total": self.total,
            "applied": [a.to_dict() for a in self.applied],
            "points": self.points.to_dict(),
            "coupons": self.coupons.to_dict(),
            "hints": [h.to_dict() for h in self.hints],
            "tier": self.tier.to_dict() if self.tier else None,
            "stamps": [s.to_dict() for s in self.stamps],
            "notices": [n.to_dict() for n in self.notices],
        }
        if self.not_applied is not None:
            out["not_applied"] = [n.to_dict() for n in self.not_applied]
        if self.promo_codes is not None:  # issue 16
            out["promo_codes"] = [use.to_dict() for use in self.promo_codes]
        return out

    def to_stored(self, answer: dict[str, Any] | None = None) -> dict[str, Any]:
        """`to_dict()` (or the answer built on it) plus `kept`: what the till does not see and
        commit and refund need, so they never re-derive it from the rules active by then."""
        return {
            **(answer if answer is not None else self.to_dict()),
            "kept": {
                "line_stamps": [line.stamps for line in self.lines],
            },
        }

    @classmethod
    def from_stored(cls, d: dict[str, Any]) -> Quote:
        """The Quote `to_stored` (or `to_dict`, without what is kept) wrote."""
        kept = d.get("kept") or {}
        line_stamps = kept.get("line_stamps") or [None] * len(d["lines"])
        tier = d["tier"]
        return cls(
            rules_version=d["rules_version"],
            currency=d["currency"],
            evaluated_at=datetime.fromisoformat(d["evaluated_at"]),
            customer_id=d["customer_id"],
            lines=tuple(
                QuoteLine.from_dict(line, stamps)
                for line, stamps in zip(d["lines"], line_stamps, strict=True)
            ),
            subtotal=d["subtotal"],
            discount_total=d["discount_total"],
            total=d["total"],
            applied=tuple(AppliedRule.from_dict(a) for a in d["applied"]),
            points=PointsSummary.from_dict(d["points"]),
            coupons=CouponsSummary.from_dict(d["coupons"]),
            hints=tuple(
                Hint(h["type"], h["rule_id"], h["missing"], h["message"]) for h in d["hints"]
            ),
            tier=TierStatus(tier["name"], tier["next"], tier["missing"]) if tier else None,
            stamps=tuple(StampProgress(**p) for p in d["stamps"]),
            not_applied=(
                tuple(NotApplied(**n) for n in d["not_applied"]) if "not_applied" in d else None
            ),
            notices=tuple(Notice(**n) for n in d.get("notices", ())),
            promo_codes=(  # issue 16
                tuple(PromoCodeUse.from_dict(u) for u in d["promo_codes"])
                if "promo_codes" in d
                else None
            ),
        )


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None
