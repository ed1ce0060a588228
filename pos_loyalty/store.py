"""The running store: settings, database engine and secret, opened once and passed to services.

This is what the composition roots (the CLI's `serve` and `demo`, tests) build; services take the
pieces they need as keyword arguments, never a global.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine

from pos_loyalty.rules.compiled import CompiledRules, compile_rules
from pos_loyalty.rules.config import RulesConfig
from pos_loyalty.security import StoreSecret, load_or_create_secret
from pos_loyalty.settings import Settings
from pos_loyalty.storage import UnitOfWork, make_engine


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Store:
    settings: Settings
    engine: Engine
    secret: StoreSecret
    clock: Callable[[], datetime] = field(default=system_clock)
    # The active rules, compiled once at open; a newly activated bundle replaces the whole object.
    rules: CompiledRules = field(init=False)

    def __post_init__(self) -> None:
        self.rules = compile_rules(
            RulesConfig(
                points=self.settings.points, tiers=self.settings.tiers, rules=self.settings.rules
            ),
            tz=self.settings.store.tz,
        )

    @classmethod
    def open(cls, settings: Settings, *, engine: Engine | None = None) -> Store:
        secret = load_or_create_secret(settings.secret_path)
        return cls(
            settings=settings, engine=engine or make_engine(settings.database_url), secret=secret
        )

    def uow(self, *, write: bool = False) -> UnitOfWork:
        return UnitOfWork(self.engine, write=write)

    def now(self) -> datetime:
        return self.clock()

    def close(self) -> None:
        self.engine.dispose()
