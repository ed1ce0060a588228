"""The head-office routes on both databases: publish (scope hq), a store's pull (scope store,
its own id only, `If-None-Match`), the fleet; an invalid program is refused and nothing stored."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pos_loyalty.apikeys.models import Scope
from pos_loyalty.hq.fleet import register_store
from pos_loyalty.hq.signing import (
    create_signing_key,
    parse_public_key,
    public_key_text,
    verify_envelope,
)
from pos_loyalty.store import Store
from tests.conftest import new_key

PROGRAM = {
    "rules": [
        {
            "id": "promo",
            "kind": "discount",
            "label": "Скидка",
            "applies_to": "basket",
            "percent": 10,
        }
    ]
}


@pytest.fixture
def config_extra(tmp_path: Path) -> dict[str, Any]:
    return {"head_office": {"signing_key": str(tmp_path / "hq.key")}}


def _register(store: Store, store_id: str, region: str = "") -> str:
    with store.uow(write=True) as uow:
        return register_store(uow=uow, store_id=store_id, region=region)


def test_publish_pull_and_fleet(anon_client: TestClient, store: Store, tmp_path: Path) -> None:
    key = create_signing_key(tmp_path / "hq.key")
    hq = {"Authorization": f"Bearer {new_key(store, Scope.HQ)}"}
    north = {"Authorization": f"Bearer {_register(store, 'spb-001', 'north')}"}
    south = {"Authorization": f"Bearer {_register(store, 'krd-001', 'south')}"}

    refused = anon_client.post(
        "/v1/hq/bundles",
        json={"program": {"rules": [{**PROGRAM["rules"][0], "percent": 150}]}},
        headers=hq,
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "rules_invalid"
    assert 'rules[0] (id "promo").percent' in refused.json()["error"]["message"]
    assert anon_client.get("/v1/hq/bundles", headers=hq).json() == []

    forbidden = anon_client.post("/v1/hq/bundles", json={"program": PROGRAM}, headers=north)
    assert forbidden.status_code == 403

    first = anon_client.post(
        "/v1/hq/bundles", json={"program": PROGRAM, "note": "всем"}, headers=hq
    )
    assert first.status_code == 201 and first.json()["version"] == 1
    second = anon_client.post(
        "/v1/hq/bundles",
        json={"program": PROGRAM, "targets": {"regions": ["north"]}},
        headers=hq,
    )
    assert second.json()["version"] == 2

    pulled = anon_client.get(
        "/v1/hq/bundles/current",
        params={"store": "spb-001", "active": "1", "software": "0.1.0"},
        headers=north,
    )
    assert pulled.status_code == 200 and pulled.headers["etag"] == '"v2"'
    public = parse_public_key(public_key_text(key))
    assert verify_envelope(pulled.content, public)["version"] == 2
    unchanged = anon_client.get(
        "/v1/hq/bundles/current",
        params={"store": "spb-001"},
        headers={**north, "If-None-Match": '"v2"'},
    )
    assert unchanged.status_code == 304
    southern = anon_client.get("/v1/hq/bundles/current", params={"store": "krd-001"}, headers=south)
    assert southern.headers["etag"] == '"v1"'
    other = anon_client.get("/v1/hq/bundles/current", params={"store": "spb-001"}, headers=south)
    assert other.status_code == 403 and other.json()["error"]["code"] == "wrong_store"

    fleet = {row["store_id"]: row for row in anon_client.get("/v1/hq/stores", headers=hq).json()}
    assert fleet["spb-001"]["target_version"] == 2 and fleet["spb-001"]["behind"] is True
    assert fleet["krd-001"]["target_version"] == 1 and fleet["krd-001"]["last_seen_at"]
    unknown = anon_client.post(
        "/v1/hq/bundles", json={"program": PROGRAM, "targets": {"stores": ["x"]}}, headers=hq
    )
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_target"


def test_a_switch_time_without_an_offset_is_head_office_local_time(
    anon_client: TestClient, store: Store, tmp_path: Path
) -> None:
    """An API client scheduling "10 December, 08:00" means head office's clock, as the CLI and
    the console read it (it was a 500)."""
    create_signing_key(tmp_path / "hq.key")
    hq = {"Authorization": f"Bearer {new_key(store, Scope.HQ)}"}
    reply = anon_client.post(
        "/v1/hq/bundles",
        json={"program": PROGRAM, "effective_from": "2026-12-10T08:00:00"},
        headers=hq,
    )
    assert reply.status_code == 201, reply.text
    moment = datetime.fromisoformat(reply.json()["effective_from"])
    assert moment == datetime(2026, 12, 10, 8, tzinfo=store.settings.store.tz)
