"""Shared fixtures: a store on each database, an API client with keys of each scope.

Every test that takes `store` (or `client`) runs twice: on a fresh SQLite file, and on PostgreSQL
when POS_LOYALTY_TEST_PG holds a server URL. The suite creates its own PostgreSQL database per
worker and drops it at the end; between tests the tables are emptied.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from api.app import create_app
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.apikeys.service import create_key
from pos_loyalty.settings import Settings, settings_from_dict
from pos_loyalty.storage import make_engine
from pos_loyalty.storage.engine import normalise_url
from pos_loyalty.storage.migrate import upgrade
from pos_loyalty.storage.tables import metadata
from pos_loyalty.store import Store

# The CLI's rich consoles size their tables from COLUMNS when they are made; a terminal's COLUMNS
# exported into the run would fix every table at that width. Without it they are 80 columns wide
# (not a terminal), and a test that wants them wider says so.
os.environ.pop("COLUMNS", None)

PG_URL = os.environ.get("POS_LOYALTY_TEST_PG", "")
REQUIRE_PG = os.environ.get("POS_LOYALTY_REQUIRE_PG") == "1"
REPO = Path(__file__).resolve().parent.parent


def base_config(**store_overrides: Any) -> dict[str, Any]:
    """The store section every test starts from (a Russian store, like the demo)."""
    return {
        "store": {
            "id": "msk-001",
            "name": "Магазин у дома",
            "currency": "RUB",
            "locale": "ru_RU",
            "region": "RU",
            "timezone": "Europe/Moscow",
            **store_overrides,
        },
        # tills without devices: a lane declared by its id alone (baskets name a declared lane)
        "lanes": [{"id": "lane-1"}, {"id": "lane-2"}],
    }


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is faster)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of this worker's own, migrated once, dropped at the end."""
    if not PG_URL:
        if REQUIRE_PG:
            pytest.fail("POS_LOYALTY_REQUIRE_PG=1 but POS_LOYALTY_TEST_PG is not set")
        pytest.skip("PostgreSQL tests need POS_LOYALTY_TEST_PG (CI sets it)")
    server_url = make_url(normalise_url(PG_URL))
    name = f"pos_loyalty_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = server_url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _empty_pg(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "store.db"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_database")
    return url


def make_settings(tmp_path: Path, db_url: str, extra: dict[str, Any] | None = None) -> Settings:
    data = base_config(database_url=db_url, secret_file=str(tmp_path / "secret.key"))
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return settings_from_dict(data, source="<test>", environ={})


@pytest.fixture
def config_extra() -> dict[str, Any]:
    """Override in a test module to add sections (rules, privacy, identity …) to the store."""
    return {}


@pytest.fixture
def settings(tmp_path: Path, db_url: str, config_extra: dict[str, Any]) -> Settings:
    return make_settings(tmp_path, db_url, config_extra)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = Store.open(settings)
    if store.engine.dialect.name == "postgresql":
        _empty_pg(store.engine)
    try:
        yield store
    finally:
        store.close()


def new_key(store: Store, scope: Scope) -> str:
    with store.uow(write=True) as uow:
        return create_key(uow=uow, scope=scope, label=f"test {scope.value}")


@pytest.fixture
def anon_client(store: Store) -> Iterator[TestClient]:
    """A client without an API key."""
    with TestClient(create_app(store.settings, store=store), raise_server_exceptions=False) as c:
        yield c


def from_this_machine(client: TestClient) -> TestClient:
    """The same app and headers, asked from 127.0.0.1: TestClient's own peer is the name
    "testclient", which is not loopback, so `/docs` and `/metrics` ([api] open_docs =
    "loopback") refuse it as they refuse a till on the store's network."""
    return TestClient(client.app, client=("127.0.0.1", 50000), headers=client.headers)


@pytest.fixture
def client(anon_client: TestClient, store: Store) -> TestClient:
    """A till's client: requests carry a `till` key."""
    anon_client.headers["Authorization"] = f"Bearer {new_key(store, Scope.TILL)}"
    return anon_client
