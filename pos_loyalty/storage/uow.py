"""The unit of work: one database transaction per use case.

`with UnitOfWork(engine, write=True) as uow: ...; uow.commit()` — anything not committed is rolled
back when the block ends, so an exception half-way loses nothing and writes nothing.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import Engine
from sqlmodel import Session

from pos_loyalty.storage.engine import WRITE_OPTION


class UnitOfWork:
    def __init__(self, engine: Engine, *, write: bool = False) -> None:
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
            # Procure the connection now so SQLite starts with BEGIN IMMEDIATE (see engine.py).
            self._session.connection(execution_options={WRITE_OPTION: True})
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

    def commit(self) -> None:
        self.session.commit()

    def flush(self) -> None:
        self.session.flush()
