"""PostgreSQL goes away under a running service: every request gets the 503 a till retries,
whichever layer meets the outage first (the key check before the route, or the route), and the
first request after it comes back is served on fresh connections, with nothing lost between."""

from __future__ import annotations

import os
import resource

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.settings import Settings
from pos_loyalty.storage import make_engine
from pos_loyalty.store import Store
from tests.conftest import new_key
from tests.factories import basket_json, line_json
from tests.integration.test_print_outage import database_outage, empty_database

pytestmark = [
    pytest.mark.parametrize("db_url", [pytest.param("pg", marks=pytest.mark.pg)], indirect=True),
    pytest.mark.usefixtures(empty_database.__name__),
]


def assert_retry_later(response: httpx2.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "database_unavailable"
    assert response.headers["Retry-After"] == "2"


def test_the_outage_is_a_503_at_the_key_check_and_in_the_route_and_then_passes(
    settings: Settings, db_url: str
) -> None:
    store = Store.open(settings)
    try:
        with TestClient(create_app(settings, store=store)) as client:
            known, unseen = new_key(store, Scope.TILL), new_key(store, Scope.TILL)
            basket = basket_json(line_json(unit_price=10_000))
            evaluate = "/v1/baskets/evaluate"
            ok = client.post(evaluate, json=basket, headers={"Authorization": f"Bearer {known}"})
            assert ok.status_code == 200, ok.text
            with database_outage(db_url):
                # the known key is in the cache: the route meets the outage
                assert_retry_later(
                    client.post(evaluate, json=basket, headers={"Authorization": f"Bearer {known}"})
                )
                # a key never seen is looked up before any route: that check meets it (it was
                # a 500 "internal_error" there)
                assert_retry_later(
                    client.post(
                        evaluate, json=basket, headers={"Authorization": f"Bearer {unseen}"}
                    )
                )
            # back: the pool's connections were cut; the first request takes new ones
            for key in (unseen, known):
                again = client.post(
                    evaluate, json=basket, headers={"Authorization": f"Bearer {key}"}
                )
                assert again.status_code == 200, again.text
    finally:
        store.close()


def test_a_connection_past_descriptor_1023_is_checked_out(db_url: str) -> None:
    """A busy server holds many sockets (tills, displays, printers): the liveness check of a
    pooled connection works whatever its descriptor number (select() refuses past 1023)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"this machine allows {hard} open files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    engine = make_engine(db_url)
    try:
        for _ in range(2):  # the second checkout is the pooled connection, checked
            with engine.connect() as connection:
                assert connection.connection.dbapi_connection.fileno() > 1023  # type: ignore[union-attr]
                assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
