"""Sales committed by group commit on SQLite: one writer thread runs the sales concurrent tills
send in one write transaction, each at its own savepoint, and commits them with one fsync.

SQLite admits one writer at a time anyway; queued on this thread, eight tills no longer take the
write lock, BEGIN and an fsync each in turn. A till hears back only once its sale is committed.
PostgreSQL takes concurrent writers and runs each sale in its own transaction instead.
"""

from __future__ import annotations

from pos_loyalty.sales.group_commit import GroupWriter
from pos_loyalty.sales.idempotency import IdempotentJob, JobResult, Outcome, run_jobs
from pos_loyalty.store import Store

# Enough for every till of a large store at once; a batch's sales wait for the slowest of them.
MAX_BATCH = 16


class SaleWriter(GroupWriter[IdempotentJob, Outcome]):
    """`submit(job, done)` queues a sale (`sales.commit.commit_job`); `done` gets its Outcome,
    its refusal, or the database error that failed its batch. The caller holds the key in
    `IN_FLIGHT` meanwhile, as `run_idempotent` does."""

    def __init__(self, store: Store) -> None:
        def write(jobs: list[IdempotentJob]) -> list[JobResult]:
            return run_jobs(store, jobs)

        super().__init__("sale writer", write, MAX_BATCH)
