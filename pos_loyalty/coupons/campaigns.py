"""Coupons for a campaign, made from a rule of the program (its coupon: value, minimum, days).

`generate_coupons`: N bearer coupons to hand out (a flyer, a partner) as a CSV of codes.
`issue_to_segment`: one coupon for each customer of an RFM segment (e.g. lapsed, optionally only
those away more than N days) who consented to be contacted, with the contact details they allowed,
for an SMS or e-mail service to send. The phone goes out in clear only where the store keeps it
(`[privacy] store_plain_phone`) and the customer consented to `sms`; otherwise masked. The e-mail
goes out only with the consent `email`. A customer the export cannot reach (neither a phone in
clear nor an e-mail) gets no coupon and is counted with those who gave no consent: a masked phone
reaches nobody. A customer who already holds a live coupon of the rule gets no second one (a
re-run issues to nobody twice).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from pos_loyalty.audit.models import AuditAction
from pos_loyalty.audit.service import Operator, record_action
from pos_loyalty.coupons.models import Coupon, CouponStatus
from pos_loyalty.coupons.service import IssuedCoupon, issue_coupon
from pos_loyalty.customers.models import Customer
from pos_loyalty.errors import InvalidInput
from pos_loyalty.rules.compiled import CompiledRules
from pos_loyalty.rules.config import PersonalRule, ThresholdRule
from pos_loyalty.rules.quote import coupon_expiry
from pos_loyalty.security import StoreSecret
from pos_loyalty.segments.models import CustomerSegment
from pos_loyalty.segments.service import short_name
from pos_loyalty.settings import Settings
from pos_loyalty.storage import UnitOfWork

MAX_GENERATE = 100_000


@dataclass(frozen=True, slots=True)
class CampaignCoupon:
    """What a rule's coupon is: the same whether earned at the till or sent in a campaign."""

    rule_id: str
    label: str
    amount_off: int | None
    percent_off: int | None
    min_subtotal: int
    valid_days: int
    stack_group: str | None


def rule_coupon(rule: Any) -> CampaignCoupon | None:
    """The coupon a rule gives, as it reads now: a threshold rule's coupon reward or a personal
    rule's offer; None for a rule that gives no coupon. (A personal offer on named goods is
    scoped to them when issued.)"""
    if isinstance(rule, ThresholdRule) and rule.reward.coupon is not None:
        c = rule.reward.coupon
        return CampaignCoupon(
            rule.id,
            c.label or rule.label,
            c.amount_off,
            c.percent_off,
            c.min_subtotal,
            c.valid_days,
            c.stack_group or None,
        )
    if isinstance(rule, PersonalRule):
        return CampaignCoupon(
            rule.id,
            rule.label,
            rule.amount_off,
            rule.percent_off,
            rule.min_subtotal,
            rule.valid_days,
            rule.coupon_stack_group or None,
        )
    return None


def campaign_coupon(*, rules: CompiledRules, rule_id: str) -> CampaignCoupon:
    """The coupon of `rule_id`: a threshold rule's coupon reward or a personal rule's offer
    (one for the whole basket: a personal offer on named goods cannot be sent as a campaign)."""
    found = next((r for r in rules.config.rules if r.id == rule_id), None)
    coupon = rule_coupon(found)
    if found is None:
        problem = f"no rule {rule_id!r} in the active program"
    elif coupon is not None and not (isinstance(found, PersonalRule) and found.offer):
        return coupon
    else:
        problem = (
            f"rule {rule_id!r} gives no coupon for the whole basket "
            "(use a threshold rule with a coupon reward or a personal rule without 'offer')"
        )
    raise InvalidInput(problem, code="rule_not_a_coupon", details={"field": "rule_id"})


def _issue(
    uow: UnitOfWork,
    secret: StoreSecret,
    spec: CampaignCoupon,
    owner: str | None,
    now: datetime,
    settings: Settings,
) -> IssuedCoupon:
    return issue_coupon(
        uow=uow,
        secret=secret,
        owner_customer_id=owner,
        label=spec.label,
        amount_off=spec.amount_off,
        percent_off=spec.percent_off,
        min_subtotal=spec.min_subtotal,
        valid_from=now,
        expires_at=coupon_expiry(now, spec.valid_days, settings.store.tz),
        rule_id=spec.rule_id,
        stack_group=spec.stack_group,
        now=now,
    )


def generate_coupons(
    *,
    uow: UnitOfWork,
    settings: Settings,
    secret: StoreSecret,
    rules: CompiledRules,
    operator: Operator,
    rule_id: str,
    count: int,
    now: datetime,
) -> list[IssuedCoupon]:
    """`count` bearer coupons of the rule, in one transaction, audited."""
    if not 1 <= count <= MAX_GENERATE:
        raise InvalidInput(
            f"count: from 1 to {MAX_GENERATE}", code="count_invalid", details={"field": "count"}
        )
    spec = campaign_coupon(rules=rules, rule_id=rule_id)
    made = [_issue(uow, secret, spec, None, now, settings) for _ in range(count)]
    record_action(
        uow=uow,
        operator=operator,
        action=AuditAction.COUPONS_GENERATED,
        customer_id=None,
        details={"rule_id": rule_id, "count": count},
    )
    uow.commit()
    return made


@dataclass(frozen=True, slots=True)
class OutreachRow:
    customer_id: str
    name: str  # "Иван П."
    phone: str  # in clear where allowed, else masked
    phone_in_clear: bool
    email: str  # with the consent `email` only, else ""
    channels: tuple[str, ...]
    last_purchase: str  # store-local date
    coupon: IssuedCoupon

    def row(self) -> list[Any]:
        c = self.coupon
        return [
            self.customer_id,
            self.name,
            self.phone,
            "yes" if self.phone_in_clear else "no",
            self.email,
            " ".join(self.channels),
            self.last_purchase,
            c.display_code,
            c.qr,
            c.label,
            c.amount_off if c.amount_off is not None else "",
            c.percent_off if c.percent_off is not None else "",
            c.min_subtotal,
            c.expires_at.isoformat(),
        ]


OUTREACH_COLUMNS = (
    "customer_id",
    "name",
    "phone",
    "phone_in_clear",
    "email",
    "channels",
    "last_purchase",
    "code",
    "qr",
    "label",
    "amount_off",
    "percent_off",
    "min_subtotal",
    "expires_at",
)


@dataclass(frozen=True, slots=True)
class Outreach:
    rows: tuple[OutreachRow, ...]
    # In the segment, but gave no contact consent or none the export can carry (`sms` with the
    # phone kept in clear, `email` with an address on file): no coupon sent.
    without_consent: int
    already_holding: int  # hold a live coupon of the rule already


def issue_to_segment(
    *,
    uow: UnitOfWork,
    settings: Settings,
    secret: StoreSecret,
    rules: CompiledRules,
    operator: Operator,
    rule_id: str,
    segment: str,
    inactive_days: int = 0,
    now: datetime,
) -> Outreach:
    """One owned coupon per customer of `segment` (away at least `inactive_days`) who gave one of
    `[segments] contact_consents` and can be reached on a channel they consented to: `sms` with
    the phone kept in clear, or `email` with an address on file. Anyone else counts in
    `without_consent` (no consent, or no contact to send it to) and gets nothing. One
    transaction, audited (ids and counts, no contacts)."""
    spec = campaign_coupon(rules=rules, rule_id=rule_id)
    if segment not in settings.segments.names:
        raise InvalidInput(
            f"unknown segment {segment!r} (segments: {', '.join(settings.segments.names)})",
            code="segment_unknown",
            details={"field": "segment"},
        )
    stmt = (
        select(Customer, CustomerSegment.last_purchase_at)
        .join(CustomerSegment, col(CustomerSegment.customer_id) == col(Customer.id))
        .where(col(CustomerSegment.segment) == segment, col(Customer.closed_at).is_(None))
        .order_by(col(CustomerSegment.monetary).desc(), col(Customer.id))
    )
    if inactive_days:
        stmt = stmt.where(col(CustomerSegment.last_purchase_at) < now - timedelta(inactive_days))
    found = list(uow.session.exec(stmt))
    holding = set(
        uow.session.exec(
            select(Coupon.owner_customer_id).where(
                col(Coupon.rule_id) == rule_id,
                col(Coupon.status) == CouponStatus.ISSUED.value,
                col(Coupon.expires_at) > now,
                col(Coupon.owner_customer_id).in_([c.id for c, _ in found]),
            )
        )
    )
    contact = settings.segments.contact_consents
    tz = settings.store.tz
    rows: list[OutreachRow] = []
    refused = held = 0
    for customer, last_at in found:
        consents = customer.consents or {}
        channels = tuple(c for c in contact if consents.get(c) is True)
        if not channels:
            refused += 1
            continue
        clear = customer.phone_e164 is not None and consents.get("sms") is True
        email = customer.email if customer.email and consents.get("email") is True else ""
        if not (clear or email):  # a masked phone reaches nobody
            refused += 1
            continue
        if customer.id in holding:
            held += 1
            continue
        rows.append(
            OutreachRow(
                customer_id=customer.id,
                name=short_name(customer.name),
                phone=customer.phone_e164
                if clear and customer.phone_e164
                else customer.phone_masked,
                phone_in_clear=clear,
                email=email,
                channels=channels,
                last_purchase=last_at.astimezone(tz).date().isoformat(),
                coupon=_issue(uow, secret, spec, customer.id, now, settings),
            )
        )
    record_action(
        uow=uow,
        operator=operator,
        action=AuditAction.COUPONS_ISSUED_TO_SEGMENT,
        customer_id=None,
        details={
            "rule_id": rule_id,
            "segment": segment,
            "inactive_days": inactive_days,
            "issued": len(rows),
            "phones_in_clear": sum(r.phone_in_clear for r in rows),
            "emails": sum(bool(r.email) for r in rows),
            "without_consent": refused,
            "already_holding": held,
        },
    )
    uow.commit()
    return Outreach(tuple(rows), refused, held)


def write_outreach_csv(outreach: Outreach, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(OUTREACH_COLUMNS)
        writer.writerows(r.row() for r in outreach.rows)


def write_coupons_csv(coupons: list[IssuedCoupon], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            (
                "code",
                "qr",
                "label",
                "amount_off",
                "percent_off",
                "min_subtotal",
                "valid_from",
                "expires_at",
            )
        )
        for c in coupons:
            writer.writerow(
                (
                    c.display_code,
                    c.qr,
                    c.label,
                    c.amount_off if c.amount_off is not None else "",
                    c.percent_off if c.percent_off is not None else "",
                    c.min_subtotal,
                    c.valid_from.isoformat(),
                    c.expires_at.isoformat(),
                )
            )
