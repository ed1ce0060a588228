"""`POST /v1/identify` cannot be used to walk through phone numbers: failed identifications are
limited per key and per lane (429 with Retry-After, in the error shape), and a till's phone
look-up answers no card number and no QR payload (an admin key gets the whole profile)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.identify_limits import IdentifyFailureLimiter
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.store import Store
from tests.conftest import new_key

IVAN = {"phone": "9161234567", "name": "Иван Петров"}
LANES = [{"id": "lane-1"}, {"id": "lane-2"}]


def limits(**identity: int) -> dict[str, Any]:
    return {"identity": identity, "lanes": LANES}


def identify(client: TestClient, key: str, body: dict[str, str]) -> Any:
    return client.post("/v1/identify", json=body, headers={"Authorization": f"Bearer {key}"})


def nobodys_phone(n: int) -> dict[str, str]:
    return {"phone": f"+7 999 000-00-{n:02d}"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(anon_client: TestClient, store: Store) -> Clock:
    """The app's limiter on a clock the test moves."""
    clock = Clock()
    app: Any = anon_client.app
    app.state.identify_limiter = IdentifyFailureLimiter(store.settings.identity, clock=clock)
    return clock


@pytest.mark.parametrize(
    "config_extra", [limits(failures_per_key=3, failures_per_lane=100, failure_window_s=60)]
)
def test_a_key_that_keeps_failing_is_told_to_wait(
    anon_client: TestClient, store: Store, clock: Clock
) -> None:
    till, other = new_key(store, Scope.TILL), new_key(store, Scope.TILL)
    assert identify(anon_client, till, {"phone": IVAN["phone"]}).status_code == 404  # not yet
    enrolled = anon_client.post(
        "/v1/customers", json=IVAN, headers={"Authorization": f"Bearer {till}"}
    )
    assert enrolled.status_code == 201
    # The look-up before the enrolment was the first failure.
    for n in range(2):
        clock.now += 10
        assert identify(anon_client, till, nobodys_phone(n)).status_code == 404
    clock.now += 10
    refused = identify(anon_client, till, {"phone": IVAN["phone"]})  # even a right one
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "too_many_failures"
    assert error["details"] == {"by": "key", "limit": 3, "window_s": 60}
    # The first failure (at 1000) leaves the 60 s window at 1060; it is now 1030.
    assert refused.headers["Retry-After"] == "30"
    assert "try again in 30 s" in error["message"]

    assert identify(anon_client, other, {"phone": IVAN["phone"]}).status_code == 200
    clock.now += 30
    assert identify(anon_client, till, {"phone": IVAN["phone"]}).status_code == 200


@pytest.mark.parametrize(
    "config_extra", [limits(failures_per_key=100, failures_per_lane=2, failure_window_s=300)]
)
def test_a_lane_that_keeps_failing_is_told_to_wait_whichever_key_asks(
    anon_client: TestClient, store: Store, clock: Clock
) -> None:
    first, second = new_key(store, Scope.TILL), new_key(store, Scope.TILL)
    for n, key in enumerate((first, second)):
        reply = identify(anon_client, key, nobodys_phone(n) | {"lane_id": "lane-1"})
        assert reply.status_code == 404
    refused = identify(anon_client, second, nobodys_phone(5) | {"lane_id": "lane-1"})
    assert refused.status_code == 429 and refused.json()["error"]["details"]["by"] == "lane"
    assert refused.headers["Retry-After"] == "300"
    assert (
        identify(anon_client, second, nobodys_phone(5) | {"lane_id": "lane-2"}).status_code == 404
    )
    assert identify(anon_client, second, nobodys_phone(5)).status_code == 404  # no lane named


@pytest.mark.parametrize(
    "config_extra", [limits(failures_per_key=1, failures_per_lane=1, failure_window_s=300)]
)
def test_identifications_that_succeed_are_never_limited(
    anon_client: TestClient, store: Store, clock: Clock
) -> None:
    till = new_key(store, Scope.TILL)
    headers = {"Authorization": f"Bearer {till}"}
    assert anon_client.post("/v1/customers", json=IVAN, headers=headers).status_code == 201
    for _ in range(25):
        reply = identify(anon_client, till, {"phone": IVAN["phone"], "lane_id": "lane-1"})
        assert reply.status_code == 200
    # Malformed requests are refused before any look-up and do not count either.
    for _ in range(3):
        assert identify(anon_client, till, {"phone": ""}).status_code == 422
    assert identify(anon_client, till, {"card": "12ab"}).status_code == 422  # card_malformed
    assert identify(anon_client, till, {"phone": IVAN["phone"]}).status_code == 429


def test_the_defaults_let_a_cashier_mistype(store: Store) -> None:
    identity = store.settings.identity
    assert (identity.failures_per_key, identity.failures_per_lane) == (20, 10)
    assert identity.failure_window_s == 300


def test_a_till_looking_up_a_phone_gets_no_card_number_or_qr(
    client: TestClient, store: Store
) -> None:
    enrolled = client.post("/v1/customers", json=IVAN).json()
    by_phone = client.post("/v1/identify", json={"phone": "8 916 123-45-67"}).json()["customer"]
    assert by_phone["id"] == enrolled["id"] and by_phone["name"] == "Иван Петров"
    assert (by_phone["card_number"], by_phone["card_numbers"], by_phone["qr"]) == (None, [], None)
    assert enrolled["card_number"] not in str(by_phone) and "PLQ1" not in str(by_phone)

    # A card or QR look-up: the till holds the token already.
    by_card = client.post("/v1/identify", json={"card": enrolled["card_number"]}).json()
    assert by_card["customer"]["card_number"] == enrolled["card_number"]

    admin = new_key(store, Scope.ADMIN)
    full = identify(client, admin, {"phone": IVAN["phone"]}).json()["customer"]
    assert full["card_number"] == enrolled["card_number"] and full["qr"].startswith("PLQ1.")
