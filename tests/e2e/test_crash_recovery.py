"""Kill the real server with SIGKILL in the middle of a rush of commits; after a restart every
acknowledged sale is there, retries with the same keys never sell twice, and every ledger sums."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pos_loyalty.storage import make_engine
from tests.conftest import _empty_pg
from tests.crash_drill import Server, kill_during_rush, write_store_config
from tests.serving import free_port


@pytest.fixture
def server(tmp_path: Path, db_url: str) -> Iterator[Server]:
    if db_url.startswith("postgresql"):
        engine = make_engine(db_url)
        _empty_pg(engine)
        engine.dispose()
    port = free_port()
    srv = Server(write_store_config(tmp_path, db_url, port), port, tmp_path / "server.log")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.mark.slow
def test_every_acknowledged_sale_survives_sigkill(server: Server) -> None:
    found = kill_during_rush(server, sales_before_kill=30)
    assert found.acknowledged >= 30
    assert found.clean, found
