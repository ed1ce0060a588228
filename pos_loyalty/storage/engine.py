"""Database engines with the durability settings each backend needs.

SQLite (one store): WAL so readers never block the writer, `synchronous=FULL` so an acknowledged
write survives a power cut, a busy timeout instead of instant "database is locked", and writes that
start with `BEGIN IMMEDIATE` so two writers queue instead of deadlocking on lock upgrade.
PostgreSQL (a chain): psycopg 3, and a pooled connection the server has closed (a restart, a
terminated backend) is replaced before use, so a restarted server costs a reconnect, not an error.
"""

from __future__ import annotations

import contextlib
import os
import select
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError

SQLITE_BUSY_TIMEOUT_MS = 5000
# After a checkpoint SQLite cuts the WAL back to this size instead of keeping it at its largest
# (see storage/space.py: a WAL that kept the last free bytes kept the service down).
SQLITE_WAL_KEEP_BYTES = 4 * 1024 * 1024
# Execution option a unit of work sets on its connection to ask for `BEGIN IMMEDIATE`.
WRITE_OPTION = "pos_loyalty_write"


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (the only PostgreSQL driver we ship)."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def json_dumps(value: Any) -> str:
    """JSON columns (quotes, sale results, idempotent responses) through orjson: a 30-line
    quote serialises ~10× faster than with the json module; non-str keys become strings as
    there."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    kwargs.setdefault("json_serializer", json_dumps)
    kwargs.setdefault("json_deserializer", orjson.loads)
    # A database error's message would otherwise carry the statement's values (names, phones when
    # kept in clear) into logs and tracebacks.
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, **kwargs)
    engine = create_engine(url, pool_size=10, max_overflow=10, **kwargs)
    event.listen(engine, "checkout", _closed_by_server)
    return engine


def _closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pre-ping without a round trip. A server that restarts or ends a session closes its socket,
    which then reads as ready on an idle connection (it says why, or gives end-of-file); the pool
    then takes a fresh connection. `pool_pre_ping` asked with a `SELECT 1` in a transaction of
    its own, three round trips per unit of work at ~0.1 ms of client CPU each. (A server that
    vanished without closing anything fails the unit's first statement instead, and that
    disconnect empties the pool.)"""
    if dbapi_connection.closed or dbapi_connection.broken:
        raise DisconnectionError("the connection is closed")
    poll = select.poll()  # not select(): it fails on descriptors past 1023, as a busy server has
    poll.register(dbapi_connection.fileno(), select.POLLIN)
    if poll.poll(0):
        raise DisconnectionError("the server closed or spoke on an idle connection")


def _create_private(database: str) -> None:
    """Create the database file 0600 before SQLite does (it would make it 0644): the ledger and
    customers are as private as the secret file. SQLite gives the -wal and -shm files the
    database file's mode, so they are private too. An existing file keeps the mode it has."""
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        _create_private(database)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_size=10,
        max_overflow=10,
        **kwargs,
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module so BEGIN is ours to issue.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_KEEP_BYTES}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"
