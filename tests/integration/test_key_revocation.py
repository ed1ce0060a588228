"""A revoked key stops working: at once when the server's own process revoked it, and within
`[api] key_cache_s` when `pos-loyalty keys revoke` ran as another process on the same database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from pos_loyalty.apikeys.models import ApiKey, Scope
from pos_loyalty.apikeys.service import revoke_key
from pos_loyalty.security import hash_api_key
from pos_loyalty.store import Store
from tests.conftest import new_key

EXE = str(Path(sys.executable).with_name("pos-loyalty"))
TTL_S = 0.5


def key_id(store: Store, token: str) -> int:
    with store.uow() as uow:
        found = uow.session.exec(select(ApiKey.id).where(ApiKey.key_hash == hash_api_key(token)))
        key = found.one()
    assert key is not None
    return key


def coupon_status(client: TestClient, token: str) -> int:
    reply = client.get("/v1/coupons/ABCDEFGHJK2", headers={"Authorization": f"Bearer {token}"})
    return reply.status_code


def test_a_key_revoked_in_the_servers_process_is_refused_at_once(
    anon_client: TestClient, store: Store
) -> None:
    token = new_key(store, Scope.TILL)
    assert coupon_status(anon_client, token) == 404  # accepted (and cached): no such coupon
    with store.uow(write=True) as uow:
        revoke_key(uow=uow, key_id=key_id(store, token), now=store.now())
    reply = anon_client.get("/v1/coupons/ABCDEFGHJK2", headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 401
    assert reply.json()["error"]["message"] == "the API key is not valid or was revoked"
    other = new_key(store, Scope.TILL)
    assert coupon_status(anon_client, other) == 404  # the other keys still work


@pytest.mark.parametrize("config_extra", [{"api": {"key_cache_s": TTL_S}}])
def test_a_key_revoked_by_the_cli_is_refused_within_the_cache_lifetime(
    anon_client: TestClient, store: Store, tmp_path: Path, db_url: str
) -> None:
    token = new_key(store, Scope.TILL)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[store]\nid = "msk-001"\nname = "Магазин"\ndatabase_url = "{db_url}"\n'
        f'secret_file = "{tmp_path / "secret.key"}"\n[api]\nkey_cache_s = {TTL_S}\n',
        encoding="utf-8",
    )
    assert coupon_status(anon_client, token) == 404  # cached as valid from now
    env = {k: v for k, v in os.environ.items() if not k.startswith("POS_LOYALTY_")}
    revoked = subprocess.run(
        [EXE, "keys", "revoke", str(key_id(store, token)), "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert revoked.returncode == 0, revoked.stderr
    assert f"refuses it within {TTL_S:g} s" in revoked.stdout
    # However slow the machine, once the cache lifetime has passed the key cannot be served
    # from the cache: the next request looks it up and finds it revoked.
    time.sleep(TTL_S * 1.1)
    assert coupon_status(anon_client, token) == 401


@pytest.mark.parametrize("config_extra", [{"api": {"key_cache_s": 0}}])
def test_with_no_cache_every_request_looks_the_key_up(
    anon_client: TestClient, store: Store
) -> None:
    token = new_key(store, Scope.TILL)
    assert coupon_status(anon_client, token) == 404
    with store.uow(write=True) as uow:  # as another process would: straight in the database
        key = uow.session.get(ApiKey, key_id(store, token))
        assert key is not None
        key.revoked_at = store.now()
        uow.session.add(key)
        uow.commit()
    assert coupon_status(anon_client, token) == 401


def test_the_default_cache_lifetime_is_short(store: Store) -> Any:
    assert store.settings.api.key_cache_s == 2.0
