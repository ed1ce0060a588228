"""The receipt's "Сгорят" line for a loyal customer: what a sale pays for it as the history grows.

A customer who earns at every visit and spends it all at the next has a history of `visits` × 2
entries. A sale computes the line inside its transaction (customer row locked) from the lots
after the customer's checkpoint (`ledger/expiring.py`); the reference, in the same run, is what
a sale paid before checkpoints: every entry read and the lots computed from the whole ledger.
Target (issue 18's bounded till path): the same cost at 10 visits and at 5,000, among 2,000 other
customers (so PostgreSQL plans as it would in a store). A customer who only earns is reported too:
their lots stay open until they expire, and the read is bounded by those.

    .venv/bin/python bench/expiring_line.py [--visits 10,100,1000,5000] [--backends sqlite,pg]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    Stats,
    pg_server_url,
    results_table,
    throwaway_database,
    verdict,
    write_config,
)
from pos_loyalty.customers.models import Customer
from pos_loyalty.ledger.expiring import expiring_after_sale, nearest_expiring
from pos_loyalty.ledger.models import EntryKind
from pos_loyalty.ledger.service import compute_lots, entry_row, insert_entries, lot_entries
from pos_loyalty.settings import load_settings
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.storage.migrate import upgrade
from pos_loyalty.store import Store

START = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
CALLS = 200
OTHERS = 2_000  # other customers, 10 visits each
# A customer who never spends keeps every lot open until it expires (365 days here): their read
# is bounded by the lots in that window, not by the checkpoint; reported, no target.
EARNS_ONLY = (30, 365)


def loyal_customer(store: Store, visits: int, *, spends: bool = True) -> tuple[str, int]:
    """A customer with `visits` daily visits of earning 100 points and (`spends`) spending them at
    the next one; (their id, their balance)."""
    customer_id = uuid.uuid4().hex
    balance = 100 if spends else 100 * visits
    rows = []
    for visit in range(visits):
        now = START + timedelta(days=visit)
        rows.append(
            entry_row(
                customer_id=customer_id,
                kind=EntryKind.EARN,
                points=100,
                now=now,
                expires_at=now + timedelta(days=365),
            )
        )
        if spends and visit < visits - 1:
            rows.append(
                entry_row(customer_id=customer_id, kind=EntryKind.BURN, points=-100, now=now)
            )
    with store.uow(write=True) as uow:
        uow.session.add(
            Customer(
                id=customer_id,
                name="Постоянный покупатель",
                phone_hash=customer_id,
                phone_masked="+7 *** ***-**-00",
                points_balance=balance,
            )
        )
        uow.session.flush()
        insert_entries(uow=uow, rows=rows)
        uow.commit()
    return customer_id, balance


def timed(store: Store, work: Callable[[UnitOfWork], object]) -> Stats:
    seconds = []
    for _ in range(CALLS):
        with store.uow(write=True) as uow:
            began = time.perf_counter()
            work(uow)
            seconds.append(time.perf_counter() - began)
            uow.rollback()
    return Stats.of(seconds)


def measure(kind: str, visits: list[int], workdir: Path) -> list[list[str]]:
    rows: list[list[str]] = []
    with throwaway_database(kind, workdir) as url:
        store = Store.open(load_settings(write_config(workdir, url), environ={}))
        try:
            upgrade(store.engine)
            tz = store.settings.store.tz
            for _ in range(OTHERS):  # a store's worth of other customers, as plans see it
                loyal_customer(store, 10)
            with store.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
            base = None
            patterns = [(True, count) for count in visits]
            patterns += [(False, count) for count in EARNS_ONLY]
            for spends, count in patterns:
                customer_id, balance = loyal_customer(store, count, spends=spends)
                expires = START + timedelta(days=count + 365)

                def with_checkpoint(
                    uow: UnitOfWork,
                    customer_id: str = customer_id,
                    balance: int = balance,
                    expires: datetime = expires,
                ) -> object:
                    return expiring_after_sale(
                        uow=uow,
                        customer_id=customer_id,
                        burn=0,
                        earned=[50],
                        expires_at=expires,
                        balance=balance + 50,
                        tz=tz,
                    )

                def whole_ledger(uow: UnitOfWork, customer_id: str = customer_id) -> object:
                    entries = lot_entries(uow=uow, customer_id=customer_id)
                    return nearest_expiring(compute_lots(entries), tz)

                with store.uow(write=True) as uow:  # the first sale writes the checkpoint
                    with_checkpoint(uow)
                    uow.commit()
                line = timed(store, with_checkpoint)
                reference = timed(store, whole_ledger)
                base = base or line.median_ms
                rows.append(
                    [
                        kind,
                        "spends it all" if spends else "only earns",
                        f"{count:,}",
                        f"{line.median_ms * 1000:,.0f}",
                        f"{line.p99_ms * 1000:,.0f}",
                        f"{reference.median_ms * 1000:,.0f}",
                        f"{line.median_ms / base:.2f}" if spends else "—",
                        verdict(line.median_ms <= 2 * base) if spends else "—",
                    ]
                )
        finally:
            store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", default="10,100,1000,5000")
    parser.add_argument("--backends", default="sqlite,pg")
    args = parser.parse_args()
    visits = [int(v) for v in args.visits.split(",")]
    rows: list[list[str]] = []
    for kind in args.backends.split(","):
        if kind == "pg" and pg_server_url() is None:
            print("no PostgreSQL server answers: skipping pg")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            rows += measure(kind, visits, Path(tmp))
    results_table(
        f'the "Сгорят" line in a sale, {CALLS} calls each (µs)',
        [
            "db",
            "customer",
            "visits",
            "from the checkpoint p50",
            "p99",
            "whole ledger p50 (before)",
            "÷ at the fewest visits",
            "≤ 2×",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
