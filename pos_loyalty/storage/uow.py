"""The unit of work: one database transaction per use case.

`with UnitOfWork(engine, write=True) as uow: ...; uow.commit()` — anything not committed is rolled
back when the block ends, so an exception half-way loses nothing and writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from pos_loyalty.storage.engine import WRITE_OPTION


class UnitOfWork:
    def __init__(self, engine: Engine, *, write: bool = False) -> None:
        if write and not engine.get_execution_options().get(WRITE_OPTION):
            engine = writer(engine)
        self._engine = engine
        self._write = write
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("the unit of work is not open; use it in a `with` block")
        return self._session

    def __enter__(self) -> Self:
        self._session = Session(self._engine, expire_on_commit=False)
        if self._write:
            # Procure the connection now so SQLite takes the write lock on entry (see engine.py).
            self._session.connection()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            session.rollback()
        finally:
            session.close()
            self._session = None

    def driver(self, statement: str, params: Sequence[Any] = ()) -> Any:
        """Run `statement` (`?` placeholders) on the DB-API driver in this unit's transaction and
        return the cursor: for the hot statements, where SQLAlchemy Core costs ~10x the driver.
        Driver errors come out as SQLAlchemy's, so the API answers them as it answers Core's."""
        return self._on_driver(statement, [params], many=False)

    def driver_many(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """`driver` for several rows at once (executemany)."""
        if rows:
            self._on_driver(statement, rows, many=True)

    def _on_driver(self, statement: str, rows: Sequence[Sequence[Any]], *, many: bool) -> Any:
        connection = self.session.connection()
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        dialect = connection.dialect
        if dialect.name == "sqlite":
            rows = [[_sqlite_value(v) for v in row] for row in rows]
        text = _placeholders(dialect.name, statement)
        try:
            if many:
                cursor.executemany(text, rows)
            else:
                cursor.execute(text, rows[0])
        except dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(
                statement, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True
            ) from exc
        return cursor

    def commit(self) -> None:
        self.session.commit()

    def flush(self) -> None:
        self.session.flush()


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


def _sqlite_value(value: Any) -> Any:
    """An aware datetime as SQLAlchemy stores a `UTCDateTime` on SQLite (UTC, microseconds)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value
