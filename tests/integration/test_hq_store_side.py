"""The store's side on both databases: a bundle is kept only if signed, newer, for this store and
valid; activation swaps the running program in one step, and a quote priced under the old one is
refused at commit (409 quote_stale, rules_changed) while the next basket prices under the new."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pos_loyalty.hq.bundle import Bundle, BundleRefused, Targets, program_from_json
from pos_loyalty.hq.local import accept_bundle, apply_active, local_status
from pos_loyalty.hq.signing import create_signing_key, public_key_text, sign_bundle
from pos_loyalty.store import Store
from tests.factories import basket_json, commit_json, evaluate_json, line_json

PROMO = {
    "rules": [
        {"id": "promo", "kind": "discount", "label": "Скидка 10%", "applies_to": "basket",
         "percent": 10}
    ],
    "category_names": {"dairy": "Молочное"},
}  # fmt: skip


@pytest.fixture
def config_extra(tmp_path: Path) -> dict[str, Any]:
    key = create_signing_key(tmp_path / "hq.key")
    return {
        "hq": {
            "url": "http://127.0.0.1:9",
            "public_key": public_key_text(key),
            "api_key": "plk_store_not-used-here",
            "region": "msk",
        }
    }


def _signed(store: Store, tmp_path: Path, version: int, **fields: Any) -> bytes:
    from pos_loyalty.hq.signing import load_signing_key

    bundle = Bundle(
        version=version,
        effective_from=fields.pop("effective_from", store.now()),
        published_at=store.now(),
        targets=fields.pop("targets", Targets()),
        note="test",
        program=program_from_json(fields.pop("program", PROMO)),
    )
    return sign_bundle(bundle.to_json(), load_signing_key(tmp_path / "hq.key"))


def test_accept_activate_and_the_old_quote(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    old = evaluate_json(client, basket_json(line_json(unit_price=10000)))
    assert old["discount_total"] == 0

    with pytest.raises(BundleRefused) as elsewhere:
        accept_bundle(
            store=store,
            raw=_signed(store, tmp_path, 1, targets=Targets(("spb-001",), ("north",))),
            now=store.now(),
        )
    assert elsewhere.value.reason == "not_for_this_store"
    assert local_status_of(store).last_error.startswith("refused (not_for_this_store)")

    later = store.now() + timedelta(hours=1)
    accept_bundle(store=store, raw=_signed(store, tmp_path, 2, targets=Targets((), ("msk",))),
                  now=store.now())  # fmt: skip
    accept_bundle(store=store, raw=_signed(store, tmp_path, 3, effective_from=later,
                  program={**PROMO, "rules": []}), now=store.now())  # fmt: skip
    with pytest.raises(BundleRefused) as replayed:
        accept_bundle(store=store, raw=_signed(store, tmp_path, 2), now=store.now())
    assert replayed.value.reason == "not_newer"

    assert apply_active(store=store, now=store.now()) == 2
    assert store.rules.version.startswith("v2-")
    assert store.settings.store.category_names == {"dairy": "Молочное"}
    status = local_status_of(store)
    assert (status.active_version, status.pending_version) == (2, 3)

    stale = commit_json(client, {"quote_id": old["quote_id"]})
    assert stale.status_code == 409
    assert stale.json()["error"]["details"]["reason"] == "rules_changed"
    new = evaluate_json(client, basket_json(line_json(unit_price=10000)))
    assert new["discount_total"] == 1000 and new["rules_version"] == store.rules.version
    assert commit_json(client, {"quote_id": new["quote_id"]}).status_code == 201

    assert apply_active(store=store, now=later) == 3  # at its moment, v3 takes over
    assert store.rules.version.startswith("v3-") and store.rules.rule_count == 0


def local_status_of(store: Store) -> Any:
    with store.uow() as uow:
        return local_status(uow=uow)
