"""`/metrics` as Prometheus scrapes it: business totals for the store's day (bounded queries on
indexed columns, not every row ever written) and, for a store that pulls its rules from head
office, how that sync goes (age, failing, failures), from what `hq.sync` records."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pos_loyalty.hq.signing import create_signing_key, public_key_text
from pos_loyalty.hq.sync import pull_once
from pos_loyalty.settings import HqConfig
from pos_loyalty.store import Store
from tests.conftest import from_this_machine
from tests.factories import SALE_RULES, basket_json, enrol_json, line_json, sell_json
from tests.serving import free_port


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return SALE_RULES


def scrape(client: TestClient) -> dict[str, float]:
    """Each sample of the scrape, `name{labels}` → value."""
    text = from_this_machine(client).get("/metrics").text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def test_business_totals_count_the_store_s_day(client: TestClient, store: Store) -> None:
    enrol_json(client)
    # the store's noon today, held for the whole test: a run across local midnight sees one day
    tz = store.settings.store.tz
    noon = store.now().astimezone(tz).replace(hour=12, minute=0, second=0, microsecond=0)
    store.clock = lambda: noon - timedelta(days=2)  # two days ago: not today's
    sell_json(client, basket_json(line_json(unit_price=90_000), customer={"phone": "9161234567"}))
    store.clock = lambda: noon
    sell_json(client, basket_json(line_json(unit_price=80_000), customer={"phone": "9161234567"}))
    samples = scrape(client)
    assert samples["pos_loyalty_sales_total"] == 1
    assert samples["pos_loyalty_sales_amount_minor_total"] == 80_000
    assert samples["pos_loyalty_points_issued_total"] == 40  # 5 % of 800 ₽, today's sale only
    assert samples["pos_loyalty_coupons_issued_total"] == 1
    assert samples["pos_loyalty_coupons_redeemed_total"] == 0
    assert samples["pos_loyalty_database_up"] == 1
    assert not any(name.startswith("pos_loyalty_hq_") for name in samples)  # no [hq]: no series


class _NoBundle(BaseHTTPRequestHandler):
    """A head office with nothing for this store yet: 404 to every pull (a successful pull)."""

    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def head_office() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoBundle)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()


def _pull_from(store: Store, url: str, key_path: Path) -> None:
    key = public_key_text(create_signing_key(key_path))
    store.settings = store.settings.model_copy(
        update={"hq": HqConfig(url=url, public_key=key, api_key="plk_store_12345678")}
    )


def test_head_office_sync_age_and_failures(
    client: TestClient, store: Store, head_office: str, tmp_path: Path
) -> None:
    _pull_from(store, f"http://127.0.0.1:{free_port()}", tmp_path / "a.key")  # nobody listens
    assert pull_once(store=store).result == "failed"
    samples = scrape(client)
    assert samples["pos_loyalty_hq_sync_failing"] == 1
    assert samples["pos_loyalty_hq_sync_failures_total"] == 1
    assert samples["pos_loyalty_hq_sync_age_seconds"] == float("inf")  # never succeeded
    assert samples["pos_loyalty_hq_sync_last_success_timestamp_seconds"] == 0
    assert samples["pos_loyalty_hq_sync_last_attempt_timestamp_seconds"] > 0
    assert samples["pos_loyalty_rules_active_bundle"] == 0

    _pull_from(store, head_office, tmp_path / "b.key")
    pulled_at, clock = store.now(), store.clock
    store.clock = lambda: pulled_at
    assert pull_once(store=store).result == "unchanged"
    store.clock = lambda: pulled_at + timedelta(seconds=90)  # a scrape 90 s after the pull
    try:
        samples = scrape(client)
    finally:
        store.clock = clock
    assert samples["pos_loyalty_hq_sync_failing"] == 0
    assert samples["pos_loyalty_hq_sync_failures_total"] == 1  # the earlier one, still counted
    assert samples["pos_loyalty_hq_sync_age_seconds"] == pytest.approx(90, abs=0.01)
    assert samples["pos_loyalty_hq_sync_last_success_timestamp_seconds"] == pytest.approx(
        pulled_at.timestamp(), abs=0.01
    )
    assert samples["pos_loyalty_rules_bundles_refused_total"] == 0
