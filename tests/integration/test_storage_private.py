"""The SQLite database holds customers and their ledger: it is created private (0600) like the
store secret, and so are its -wal and -shm files, whatever the process umask lets through."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from pos_loyalty.storage import make_engine
from pos_loyalty.storage.migrate import upgrade


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that lets group and others read new files, as on many servers."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_and_its_wal_files_are_private(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "data" / "store.db"  # its folder does not exist yet either
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
        with engine.begin() as conn:  # a write, with the connection held: -wal and -shm exist
            conn.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
            conn.execute(text("INSERT INTO probe VALUES (1)"))
            files = [path, path.with_name("store.db-wal"), path.with_name("store.db-shm")]
            assert all(f.exists() for f in files)
            assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        engine.dispose()
    assert mode(path) == 0o600


def test_an_existing_database_keeps_its_mode(tmp_path: Path, open_umask: None) -> None:
    """The operator's choice on a file that exists (e.g. a group for backups) is left alone."""
    path = tmp_path / "store.db"
    make_engine(f"sqlite:///{path}").dispose()
    path.chmod(0o640)
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    assert mode(path) == 0o640
