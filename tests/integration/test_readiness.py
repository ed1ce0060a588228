"""/healthz says the process is up; /readyz says whether it can take a sale: a real write to the
database, free disk space, the print queue and the devices."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from api.app import create_app
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.lanes import LaneHub
from pos_loyalty.store import Store
from tests.conftest import make_settings, new_key
from tests.filesystems import read_only_view


def test_ready_when_the_database_writes(client: TestClient) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["print_queue"] == {
        "ok": True,
        "detail": "no receipt waits too long",
        "stuck": 0,
    }


def test_a_device_down_is_degraded_not_unready(client: TestClient) -> None:
    hub: LaneHub = client.app.state.hub  # type: ignore[attr-defined]
    hub.register_device("lane-1/printer", "lane-1", "printer", lambda: {"connected": False})
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["checks"]["devices"]["down"] == ["lane-1/printer"]


def assert_not_ready(client: TestClient, reason: str) -> None:
    assert client.get("/healthz").status_code == 200  # alive all the same
    ready = client.get("/readyz")
    assert ready.status_code == 503, ready.text
    assert ready.headers["Retry-After"]
    error = ready.json()["error"]
    assert error["code"] == "not_ready"
    assert error["message"].startswith("database: the database cannot write")
    assert reason in error["message"]
    assert error["details"]["checks"]["database"]["ok"] is False


def test_sqlite_on_a_read_only_file_system_is_not_ready(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """The file system under the database went read-only (as the kernel does after an I/O error)."""
    writable = tmp_path / "rw"
    writable.mkdir()
    shutil.copyfile(sqlite_template, writable / "store.db")
    keeper = Store.open(make_settings(tmp_path, f"sqlite:///{writable / 'store.db'}"))
    token = new_key(keeper, Scope.TILL)
    with read_only_view(writable, tmp_path / "ro") as ro:
        store = Store.open(make_settings(tmp_path, f"sqlite:///{ro / 'store.db'}"))
        app = create_app(store.settings, store=store)
        with TestClient(app, raise_server_exceptions=False) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            assert_not_ready(client, "readonly database")
            assert (
                client.post(
                    "/v1/customers", json={"phone": "9161234567", "name": "Иван"}
                ).status_code
                == 503
            )
        store.close()
    keeper.close()


def set_read_only(store: Store, database: str | None, value: str) -> None:
    """For every new session of the database; the pool's sessions are closed to pick it up."""
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("SET default_transaction_read_only = off")  # this session writes
        conn.exec_driver_sql(
            f'ALTER DATABASE "{database}" SET default_transaction_read_only = {value}'
        )
    store.engine.dispose()


def test_postgresql_in_read_only_mode_is_not_ready(pg_database: str, tmp_path: Path) -> None:
    """`default_transaction_read_only` on (a replica promoted the wrong way, a maintenance mode)."""
    store = Store.open(make_settings(tmp_path, pg_database))
    name = make_url(pg_database).database
    token = new_key(store, Scope.TILL)
    set_read_only(store, name, "on")
    try:
        with TestClient(create_app(store.settings, store=store)) as client:
            assert_not_ready(client, "read-only transaction")
            client.headers["Authorization"] = f"Bearer {token}"
            assert client.get("/v1/devices").status_code == 200  # reads still work
            enrol = client.post("/v1/customers", json={"phone": "9161234567", "name": "Иван"})
            assert enrol.status_code == 503 and "nothing was written" in enrol.text
    finally:
        set_read_only(store, name, "off")
        with TestClient(create_app(store.settings, store=store)) as client:
            assert client.get("/readyz").status_code == 200  # back as soon as it writes
        store.close()
