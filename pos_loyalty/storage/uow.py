"""The unit of work: one database transaction per use case.

`with UnitOfWork(engine, write=True) as uow: ...; uow.commit()` — anything not committed is rolled
back when the block ends, so an exception half-way loses nothing and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection
from sqlmodel import Session

from pos_loyalty.storage.engine import WRITE_OPTION


class UnitOfWork:
    """A write unit opens its Session (and transaction) on entry. A read unit opens nothing until
    asked: a Session on first use of `session`, and for `driver` statements a pooled driver
    connection of its own, in autocommit, so the hot reads (the customer, on every evaluate) cost
    neither the Session's bookkeeping nor a BEGIN/ROLLBACK (two round trips on PostgreSQL). Each
    such read sees the data as of its own statement, as PostgreSQL's READ COMMITTED gives every
    statement of a transaction anyway; what a sale relies on is checked again in its write unit."""

    def __init__(self, engine: Engine, *, write: bool = False) -> None:
        if write and not engine.get_execution_options().get(WRITE_OPTION):
            engine = writer(engine)
        self._engine = engine
        self._write = write
        self._open = False
        self._session: Session | None = None
        self._reads: PoolProxiedConnection | None = None  # a read unit's driver connection
        self._held: tuple[Any, Dialect] | None = None  # the Session's, for this transaction
        self._savepoints = 0

    @property
    def session(self) -> Session:
        if not self._open:
            raise RuntimeError("the unit of work is not open; use it in a `with` block")
        if self._session is None:
            self._session = Session(self._engine, expire_on_commit=False)
        return self._session

    def __enter__(self) -> Self:
        self._open = True
        if self._write:
            # Procure the connection now so SQLite takes the write lock on entry (see engine.py).
            self.session.connection()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._open = False
        self._held = None
        session, self._session = self._session, None
        try:
            if session is not None:
                try:
                    session.rollback()
                finally:
                    session.close()
        finally:
            if self._reads is not None:
                _return_read_connection(self._reads)
                self._reads = None

    def driver(self, statement: str, params: Sequence[Any] = ()) -> Any:
        """Run `statement` (`?` placeholders) on the DB-API driver in this unit's transaction and
        return the cursor: for the hot statements, where SQLAlchemy Core costs ~10x the driver.
        Driver errors come out as SQLAlchemy's, so the API answers them as it answers Core's."""
        return self._on_driver(statement, [params], many=False)

    def driver_many(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """`driver` for several rows at once (executemany)."""
        if rows:
            self._on_driver(statement, rows, many=True)

    def _driver_connection(self) -> tuple[Any, Dialect]:
        """The DB-API connection `driver` runs on: the Session's once there is one (a write
        unit always has it), else the read unit's own, checked out on first use."""
        if self._session is not None or self._write:
            if self._held is None:  # asking the Session each statement cost ~10 µs
                connection = self.session.connection()
                self._held = (connection.connection.driver_connection, connection.dialect)
            return self._held
        if not self._open:
            raise RuntimeError("the unit of work is not open; use it in a `with` block")
        if self._reads is None:
            self._reads = self._engine.raw_connection()
            if self._engine.dialect.name == "postgresql":
                self._reads.driver_connection.autocommit = True  # type: ignore[union-attr]
        return self._reads.driver_connection, self._engine.dialect

    def _on_driver(self, statement: str, rows: Sequence[Sequence[Any]], *, many: bool) -> Any:
        connection, dialect = self._driver_connection()
        cursor = connection.cursor()
        if dialect.name == "sqlite":
            rows = [
                [_sqlite_value(v) if isinstance(v, datetime) else v for v in row] for row in rows
            ]
        elif any(isinstance(v, datetime) and v.tzinfo is None for row in rows for v in row):
            raise ValueError(_NAIVE)
        text = _placeholders(dialect.name, statement)
        try:
            if many:
                cursor.executemany(text, rows)
            else:
                cursor.execute(text, rows[0])
        except dialect.loaded_dbapi.Error as exc:
            if self._reads is not None and dialect.is_disconnect(exc, self._reads, cursor):
                self._reads.invalidate(exc)  # the pool starts afresh, as Core's disconnects do
            raise DBAPIError.instance(
                statement, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True
            ) from exc
        return cursor

    @contextmanager
    def pipeline(self) -> Iterator[None]:
        """`driver` statements whose results nobody reads (a sale's rows), sent to PostgreSQL
        together when the block ends: one round trip instead of one each. SQLite, in process,
        runs each as it comes. An error shows when the block ends, as SQLAlchemy's, as `driver`
        gives them. Only `driver` statements belong here: SQLAlchemy does not run in psycopg's
        pipeline mode."""
        driver, dialect = self._driver_connection()
        if dialect.name != "postgresql":
            yield
            return
        try:
            with driver.pipeline():
                yield
        except dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                None, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True
            ) from exc

    def commit(self) -> None:
        self._held = None  # the next transaction may be on another pooled connection
        self.session.commit()

    def rollback(self) -> None:
        """Undo the transaction so far; the unit goes on in a new one."""
        self._held = None
        self.session.rollback()

    def savepoint(self) -> Savepoint:
        """A savepoint, on the driver: SQLAlchemy's `begin_nested` cost a group-committed sale
        ~10 % of the service's CPU, compiling its statements anew each time."""
        self._savepoints += 1
        return Savepoint(self, f"job_{self._savepoints}")

    def flush(self) -> None:
        if self._session is not None:
            self._session.flush()


class Savepoint:
    """Taken when made; `release()` keeps what was written since, `rollback()` undoes it (and
    the Session forgets every object it holds: some may be undone; the rest load again)."""

    def __init__(self, uow: UnitOfWork, name: str) -> None:
        self._uow = uow
        self._name = name
        uow.driver(f"SAVEPOINT {name}")

    def release(self) -> None:
        self._uow.driver(f"RELEASE SAVEPOINT {self._name}")

    def rollback(self) -> None:
        """Raises if the database cannot roll back (the transaction must not commit then)."""
        self._uow.driver(f"ROLLBACK TO SAVEPOINT {self._name}")
        self._uow.driver(f"RELEASE SAVEPOINT {self._name}")
        self._uow.session.expunge_all()


def _return_read_connection(connection: PoolProxiedConnection) -> None:
    """Back to the pool as the pool hands connections out: not in autocommit (PostgreSQL)."""
    driver: Any = connection.driver_connection
    try:
        if connection.is_valid and getattr(driver, "autocommit", False):
            if driver.closed or driver.broken:
                connection.invalidate()
            else:
                driver.autocommit = False
    finally:
        connection.close()


def writer(engine: Engine) -> Engine:
    """`engine` for a write unit: every transaction it begins on SQLite is `BEGIN IMMEDIATE`, the
    ones after a `commit()` inside the unit too. (Asking only for the unit's first connection left
    the second transaction of a unit that commits twice a deferred `BEGIN`: its read-then-write
    upgrade fails at once with "database is locked" when another process wrote in between, as
    `hq stores add` did beside a running head office.) Make it once per engine; it is cheap to
    keep, not to make per request."""
    return engine.execution_options(**{WRITE_OPTION: True})


@lru_cache(maxsize=64)
def _placeholders(dialect: str, statement: str) -> str:
    """`?` as sqlite3 takes it, `%s` for psycopg."""
    return statement if dialect == "sqlite" else statement.replace("?", "%s")


_NAIVE = "naive datetime given to the driver; pass an aware datetime (as `UTCDateTime` asks)"


def _sqlite_value(value: datetime) -> str:
    """An aware datetime as SQLAlchemy stores a `UTCDateTime` on SQLite (UTC, microseconds)."""
    if value.tzinfo is None:
        raise ValueError(_NAIVE)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
