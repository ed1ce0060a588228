"""The running store: settings, database engine and secret, opened once and passed to services.

This is what the composition roots (the CLI's `serve` and `demo`, tests) build; services take the
pieces they need as keyword arguments, never a global.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from sqlalchemy import Engine

from pos_loyalty.rules.compiled import CompiledRules, compile_rules
from pos_loyalty.rules.config import RulesConfig
from pos_loyalty.security import StoreSecret, load_or_create_secret
from pos_loyalty.settings import Settings
from pos_loyalty.storage import UnitOfWork, make_engine
from pos_loyalty.storage.space import SpaceGuard
from pos_loyalty.storage.uow import writer


def system_clock() -> datetime:
    return datetime.now(UTC)


class _QueuedWrite(UnitOfWork):
    """A SQLite write that first queues on an in-process lock: writers then wait their turn
    instead of polling SQLite's busy handler (which sleeps up to 100 ms between tries)."""

    def __init__(self, engine: Engine, lock: threading.Lock) -> None:
        super().__init__(engine, write=True)
        self._lock = lock

    def __enter__(self) -> Self:
        self._lock.acquire()
        try:
            return super().__enter__()
        except BaseException:
            self._lock.release()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            super().__exit__(exc_type, exc, tb)
        finally:
            self._lock.release()


@dataclass
class Store:
    settings: Settings
    engine: Engine
    secret: StoreSecret
    clock: Callable[[], datetime] = field(default=system_clock)
    # The active rules, compiled once at open; a newly activated bundle replaces the whole object.
    rules: CompiledRules = field(init=False)
    _write_lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)
    # The engine write units begin on (see storage/uow.py `writer`).
    _writer: Engine = field(init=False, repr=False)
    # Free space under the database: refuses new work below the floor, gives the WAL back.
    space: SpaceGuard = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._writer = writer(self.engine)
        storage, mib = self.settings.storage, 1024 * 1024
        self.space = SpaceGuard(
            self.engine,
            min_free_bytes=int(storage.min_free_mb * mib),
            reserve_bytes=int(storage.reserve_mb * mib),
        )
        self.rules = compile_rules(
            RulesConfig(
                points=self.settings.points,
                tiers=self.settings.tiers,
                rules=self.settings.rules,
                no_rewards=self.settings.no_rewards,
                price_floors=self.settings.price_floors,
                refunds=self.settings.refunds,
            ),
            tz=self.settings.store.tz,
            category_names=self.settings.store.category_names,
        )

    @classmethod
    def open(cls, settings: Settings, *, engine: Engine | None = None) -> Store:
        secret = load_or_create_secret(settings.secret_path)
        return cls(
            settings=settings, engine=engine or make_engine(settings.database_url), secret=secret
        )

    def activate(
        self, rules: CompiledRules, *, category_names: dict[str, str] | None = None
    ) -> None:
        """Swap the program in one step, without a restart: each request reads `self.rules`
        once, so a basket is priced wholly under the old program or wholly under the new."""
        if category_names is not None:  # what receipts call a category, from the same bundle
            names = self.settings.store.model_copy(update={"category_names": category_names})
            self.settings = self.settings.model_copy(update={"store": names})
        self.rules = rules

    def uow(self, *, write: bool = False) -> UnitOfWork:
        if write and self.engine.dialect.name == "sqlite":
            return _QueuedWrite(self._writer, self._write_lock)
        return UnitOfWork(self._writer if write else self.engine, write=write)

    def now(self) -> datetime:
        return self.clock()

    def close(self) -> None:
        self.engine.dispose()
