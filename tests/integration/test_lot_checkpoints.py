"""The "Сгорят" line read from the lots after the customer's checkpoint says what the whole
ledger says, whatever lands after the checkpoint moved; and a long history is not read again.
Both databases."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pos_loyalty.customers.models import Customer
from pos_loyalty.ledger import expiring
from pos_loyalty.ledger.expiring import (
    Expiring,
    OpenCredit,
    credits_after,
    expiring_after_sale,
    expiring_now,
    load_checkpoint,
    nearest_expiring,
)
from pos_loyalty.ledger.models import EntryKind, LedgerEntry
from pos_loyalty.ledger.service import LotEntry, apply_to_customer, compute_lots, post_entries
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.store import Store

BASE = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
DAYS = st.one_of(st.none(), st.integers(0, 5))  # few days, so lots tie on expiry

CREDIT = st.tuples(st.just("credit"), st.integers(1, 50), DAYS)
DEBIT = st.tuples(st.just("debit"), st.integers(1, 30), st.none())
PINNED = st.tuples(st.just("pinned"), st.integers(1, 40), st.integers(0, 1_000))
SALE = st.tuples(st.just("sale"), st.integers(0, 20), st.tuples(st.integers(0, 30), DAYS))
OPERATIONS = st.lists(st.one_of(CREDIT, DEBIT, PINNED, PINNED, SALE, SALE), min_size=1, max_size=30)


def at(days: int | None) -> datetime | None:
    return None if days is None else on(days)


def on(days: int) -> datetime:
    return BASE + timedelta(days=days)


@dataclass
class Ledger:
    """One customer's ledger, kept in the database and, as the truth to compare, in memory."""

    store: Store
    customer_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    entries: list[LotEntry] = field(default_factory=list)
    balance: int = 0

    def open(self) -> Ledger:
        with self.store.uow(write=True) as uow:
            uow.session.add(
                Customer(
                    id=self.customer_id,
                    name="Покупатель",
                    phone_hash=self.customer_id,
                    phone_masked="+7 *** ***-**-00",
                )
            )
            uow.commit()
        return self

    def post(self, points: int, expires_at: datetime | None, lot_id: int | None = None) -> None:
        with self.store.uow(write=True) as uow:
            self._post(uow, points, expires_at, lot_id)
            uow.commit()

    def _post(
        self, uow: UnitOfWork, points: int, expires_at: datetime | None, lot: int | None
    ) -> None:
        row = LedgerEntry(
            customer_id=self.customer_id,
            kind=(EntryKind.EARN if points > 0 else EntryKind.BURN).value,
            points=points,
            created_at=BASE,
            expires_at=expires_at,
            lot_id=lot,
        )
        apply_to_customer(uow=uow, customer_id=self.customer_id, points_delta=points)
        post_entries(uow=uow, entries=[row])
        assert row.id is not None
        self.entries.append(LotEntry(row.id, points, lot, expires_at))
        self.balance += points

    def sell(
        self, burn: int, earn: int, expires_at: datetime | None
    ) -> tuple[Expiring | None, Expiring | None]:
        """(what the sale's line says, what the whole ledger says), then the sale's entries."""
        newest = max((e.id for e in self.entries), default=0)
        added = [LotEntry(newest + 1, -burn, None, None)] if burn else []
        if earn:
            added.append(LotEntry(newest + 2, earn, None, expires_at))
        truth = nearest_expiring(compute_lots([*self.entries, *added]), UTC)
        with self.store.uow(write=True) as uow:
            apply_to_customer(uow=uow, customer_id=self.customer_id, points_delta=earn - burn)
            said = expiring_after_sale(
                uow=uow,
                customer_id=self.customer_id,
                burn=burn,
                earned=[earn],
                expires_at=expires_at,
                balance=self.balance + earn - burn,
                tz=UTC,
            )
            if burn:
                self._post(uow, -burn, None, None)
            if earn:
                self._post(uow, earn, expires_at, None)
            uow.commit()
        return said, truth

    def now(self) -> Expiring | None:
        """What the profile says expires next."""
        with self.store.uow() as uow:
            return expiring_now(uow=uow, customer_id=self.customer_id, balance=self.balance, tz=UTC)

    def credits_read(self) -> tuple[list[OpenCredit], list[OpenCredit]]:
        """(what a sale reads after the checkpoint, what it should read), by id."""
        with self.store.uow() as uow:
            at = load_checkpoint(uow=uow, customer_id=self.customer_id)
            if at is None:
                return [], []
            read = credits_after(uow=uow, customer_id=self.customer_id, at=at)
        pinned = {
            c.id: sum(d.points for d in self.entries if d.points < 0 and d.lot_id == c.id)
            for c in self.entries
        }
        expected = [
            OpenCredit(c.id, c.points, c.expires_at, pinned[c.id])
            for c in self.entries
            if c.points > 0 and (c.id > at.seen or not at.covers(c))
        ]
        return read, expected


@pytest.mark.parametrize("step", [1, 3])
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=OPERATIONS)
def test_the_line_from_the_checkpoint_is_the_line_from_the_whole_ledger(
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    step: int,
    operations: list[tuple[str, int, Any]],
) -> None:
    monkeypatch.setattr(expiring, "STEP", step)  # the checkpoint moves often
    ledger = Ledger(store).open()
    for kind, points, extra in operations:
        if kind == "credit":
            ledger.post(points, at(extra))
        elif kind == "debit":
            ledger.post(-points, None)
        elif kind == "pinned":
            credits = [e.id for e in ledger.entries if e.points > 0]
            if credits:  # an expiry or an earn reversal: pinned to one lot
                ledger.post(-points, None, lot_id=credits[extra % len(credits)])
        else:
            earn, days = extra
            said, truth = ledger.sell(points, earn, at(days))
            assert said == truth
            read, expected = ledger.credits_read()
            assert read == expected
            assert ledger.now() == nearest_expiring(compute_lots(ledger.entries), UTC)


def test_a_loyal_customer_s_sale_reads_the_open_lots_not_the_history(store: Store) -> None:
    ledger = Ledger(store).open()
    for day in range(40):  # earn, then spend it all at the next visit
        said, truth = ledger.sell(0, 100, BASE + timedelta(days=day))
        assert said == truth == Expiring(100, BASE + timedelta(days=day))
        ledger.sell(100, 0, None)
    said, _ = ledger.sell(0, 50, BASE + timedelta(days=400))
    assert said == Expiring(50, BASE + timedelta(days=400))
    with store.uow() as uow:
        checkpoint = load_checkpoint(uow=uow, customer_id=ledger.customer_id)
        assert checkpoint is not None
        read = credits_after(uow=uow, customer_id=ledger.customer_id, at=checkpoint)
    assert len(ledger.entries) == 81
    assert len(read) <= 2 * expiring.STEP  # the lots used up since, and the open one


def test_a_credit_landing_before_the_checkpoint_sends_the_sale_back_to_the_whole_ledger(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(expiring, "STEP", 1)
    ledger = Ledger(store).open()
    ledger.post(100, at(3))
    ledger.post(-100, None)
    ledger.sell(0, 0, None)  # the only lot is used up: the checkpoint passes it
    with store.uow() as uow:
        before = load_checkpoint(uow=uow, customer_id=ledger.customer_id)
    assert before is not None and before.expires_at == at(3)
    ledger.post(30, at(1))  # the very next entry, expiring first: the debit drew on it first
    assert ledger.entries[-1].id == before.seen + 1
    said, truth = ledger.sell(0, 10, at(5))
    assert said == truth == Expiring(30, on(3))  # so 30 of the first lot are left after all
    with store.uow() as uow:
        after = load_checkpoint(uow=uow, customer_id=ledger.customer_id)
    assert after is not None and after.expires_at == at(1)  # behind the credit, used up
    assert after.seen > before.seen


def test_a_debit_pinned_to_a_lot_after_the_checkpoint_takes_from_that_lot(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(expiring, "STEP", 1)
    ledger = Ledger(store).open()
    ledger.sell(0, 10, at(0))
    ledger.sell(10, 50, at(1))  # the first lot is used up: the checkpoint passes it
    ledger.sell(0, 50, at(2))
    second = next(e.id for e in ledger.entries if e.expires_at == at(2))
    ledger.post(-30, None, lot_id=second)  # an earn reversed: from the 2nd's lot, not the 1st's
    said, truth = ledger.sell(0, 0, None)
    assert said == truth == Expiring(50, on(1))
