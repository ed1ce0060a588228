"""Rewarding a referral at the referred customer's first qualifying sale, in that sale's
transaction: a conditional UPDATE marks the referral rewarded exactly once (two tills selling to
the newcomer at the same moment cannot both reward it), then both get the rule's points."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from pos_loyalty.customers.models import Customer
from pos_loyalty.customers.referrals import Referral
from pos_loyalty.ledger.models import EntryKind, LedgerEntry
from pos_loyalty.ledger.service import apply_to_customer, post_entries
from pos_loyalty.rules.compiled import CompiledRules
from pos_loyalty.rules.config import ReferralRule
from pos_loyalty.storage import UnitOfWork


def reward_referral(
    *,
    uow: UnitOfWork,
    rules: CompiledRules,
    customer_id: str | None,
    transaction_id: str,
    paid: int,
    now: datetime,
) -> None:
    """If this sale is the referred customer's first that qualifies, reward both once."""
    if customer_id is None or not rules.referral_rules:
        return
    compiled = rules.referral_rules[0]
    rule = compiled.rule
    assert isinstance(rule, ReferralRule)
    if paid < rule.min_subtotal:
        return
    table = Referral.__table__  # type: ignore[attr-defined]
    marked = (
        uow.session.connection()
        .execute(
            sa.update(table)
            .where(table.c.new_customer_id == customer_id, table.c.rewarded_at.is_(None))
            .values(rewarded_at=now, transaction_id=transaction_id, rule_id=rule.id)
            .returning(table.c.referrer_id)
        )
        .first()
    )
    if marked is None:
        return
    referrer = str(marked[0])
    expire_days = rules.points.expire_days
    expires = now + timedelta(days=expire_days) if expire_days else None
    referrer_row = uow.session.get(Customer, referrer)
    if referrer == customer_id or (
        referrer_row is not None and referrer_row.merged_into_id == customer_id
    ):
        return  # self-referral: the referrer's account turned out to be this customer's
    rewards = [(customer_id, rule.referee_points, "referral: welcome")]
    if referrer_row is not None and referrer_row.closed_at is None:  # nothing to a closed one
        rewards.append((referrer, rule.referrer_points, f"referral: brought {customer_id}"))
    for owner, points, note in rewards:
        if points <= 0:
            continue
        apply_to_customer(uow=uow, customer_id=owner, points_delta=points)
        post_entries(
            uow=uow,
            entries=[
                LedgerEntry(
                    customer_id=owner,
                    kind=EntryKind.EARN.value,
                    points=points,
                    created_at=now,
                    expires_at=expires,
                    rule_id=rule.id,  # no transaction_id: a refund of the sale keeps the reward
                    note=note,
                )
            ],
        )
