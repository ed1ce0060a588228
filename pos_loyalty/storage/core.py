"""Core statements on the models' tables, for the hot path (no ORM flush, built once)."""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Table


def table_of(model: type[Any]) -> Table:
    """The Core table of a model, for executemany inserts on the hot path."""
    table: Table = model.__table__
    return table


@cache
def insert_into(model: type[Any]) -> sa.Insert:
    """`INSERT INTO <model's table>`, built once; rows go in as parameters."""
    return sa.insert(table_of(model))
