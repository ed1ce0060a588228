"""Storage: the engine (SQLite or PostgreSQL), the unit of work, column types and migrations."""

from pos_loyalty.storage.engine import make_engine
from pos_loyalty.storage.uow import UnitOfWork

__all__ = ["UnitOfWork", "make_engine"]
