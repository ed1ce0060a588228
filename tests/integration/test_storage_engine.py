"""The storage settings the issue promises, read back from the database itself."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import func, select

from pos_loyalty.apikeys.models import ApiKey, Scope
from pos_loyalty.apikeys.service import create_key
from pos_loyalty.storage.engine import SQLITE_BUSY_TIMEOUT_MS
from pos_loyalty.store import Store
from tests.conftest import make_settings


@pytest.fixture
def sqlite_store(tmp_path: Path, sqlite_template: Path) -> Iterator[Store]:
    """SQLite only: the pragmas and locking below have no PostgreSQL counterpart."""
    shutil.copyfile(sqlite_template, tmp_path / "store.db")
    store = Store.open(make_settings(tmp_path, f"sqlite:///{tmp_path / 'store.db'}"))
    try:
        yield store
    finally:
        store.close()


def sqlite_path(store: Store) -> str:
    database = store.engine.url.database
    assert database
    return database


def other_process_connection(store: Store) -> sqlite3.Connection:
    """A plain sqlite3 connection, as another process would open the file (no waiting)."""
    return sqlite3.connect(sqlite_path(store), timeout=0, isolation_level=None)


def test_sqlite_is_wal_full_sync_with_busy_timeout(sqlite_store: Store) -> None:
    store = sqlite_store
    with store.uow() as uow:
        connection = uow.session.connection()
        pragma = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
        }
    # synchronous: 2 is FULL (an acknowledged commit is on disk); 1 would be NORMAL.
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": 2,
        "busy_timeout": SQLITE_BUSY_TIMEOUT_MS,
        "foreign_keys": 1,
    }
    # WAL is a property of the file: every other connection sees it too.
    with other_process_connection(store) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_sqlite_write_takes_the_write_lock_at_begin(sqlite_store: Store) -> None:
    """`BEGIN IMMEDIATE`: the writer owns the lock before its first statement, so two writers
    queue at BEGIN instead of failing half-way when a read lock would have to be upgraded."""
    store = sqlite_store
    raw = other_process_connection(store)
    try:
        with store.uow():  # a reader does not hold the write lock
            raw.execute("BEGIN IMMEDIATE")
            raw.execute("ROLLBACK")
        with store.uow(write=True):  # nothing executed yet, and the lock is already taken
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                raw.execute("BEGIN IMMEDIATE")
            assert raw.execute("SELECT count(*) FROM api_keys").fetchone() == (0,)  # WAL reads
        raw.execute("BEGIN IMMEDIATE")  # released when the unit of work ended
        raw.execute("ROLLBACK")
    finally:
        raw.close()


def test_a_write_unit_that_commits_twice_still_writes_in_an_immediate_transaction(
    sqlite_store: Store,
) -> None:
    """`hq stores add` commits the store's key, then reads it and writes the store row: that
    second transaction must own the write lock from its BEGIN too. Begun deferred, its
    read-then-write upgrade failed at once with "database is locked" whenever another process
    (the running head office) wrote between the read and the write."""
    store = sqlite_store
    raw = other_process_connection(store)
    try:
        with store.uow(write=True) as uow:
            create_key(uow=uow, scope=Scope.TILL)  # commits
            uow.session.exec(select(func.count()).select_from(ApiKey)).one()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                raw.execute("BEGIN IMMEDIATE")  # the unit still holds the lock after its read
            create_key(uow=uow, scope=Scope.STORE)
        assert raw.execute("SELECT count(*) FROM api_keys").fetchone() == (2,)
    finally:
        raw.close()


def test_a_unit_of_work_that_fails_writes_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.uow(write=True) as uow:
        uow.session.add(ApiKey(key_hash="0" * 64, scope=Scope.TILL.value))
        uow.flush()
        raise RuntimeError("the till went away mid-request")
    with store.uow(write=True) as uow:
        create_key(uow=uow, scope=Scope.TILL)
    with store.uow() as uow:
        assert uow.session.exec(select(func.count()).select_from(ApiKey)).one() == 1


def test_database_errors_do_not_carry_the_values_into_logs(store: Store) -> None:
    """A failed statement's message (logged by the API's error handler) names no values."""
    with pytest.raises(IntegrityError) as err, store.uow(write=True) as uow:
        for _ in range(2):  # the second insert breaks the unique key hash
            uow.session.add(ApiKey(key_hash="1" * 64, scope="till", label="Иван +79161234567"))
            uow.flush()
    assert "api_keys" in str(err.value)
    # (PostgreSQL's own DETAIL still names the duplicated key: here a hash, never a phone.)
    assert "+79161234567" not in str(err.value) and "parameters hidden" in str(err.value)


def test_the_driver_refuses_a_naive_time_as_the_column_type_does(store: Store) -> None:
    """A time without a zone could be read as UTC on one database and local on the other."""
    naive = datetime(2026, 12, 8, 10, 0)
    with store.uow() as uow:
        with pytest.raises(ValueError, match="naive datetime"):
            uow.driver("SELECT ?", (naive,))
        assert uow.driver("SELECT ?", (naive.replace(tzinfo=UTC),)).fetchone() is not None
