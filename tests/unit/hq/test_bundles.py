"""Bundles without a database: canonical encoding, signatures, refusals, diff wording, backoff."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pos_loyalty.hq.bundle import (
    Bundle,
    BundleRefused,
    Targets,
    bundle_from_json,
    canonical_bytes,
    program_from_json,
)
from pos_loyalty.hq.diff import diff_programs
from pos_loyalty.hq.signing import (
    SigningKeyError,
    create_signing_key,
    load_signing_key,
    parse_public_key,
    public_key_text,
    sign_bundle,
    verify_envelope,
)
from pos_loyalty.hq.sync import next_delay

PROGRAM = {
    "points": {"point_value_minor": 100},
    "rules": [
        {
            "id": "promo",
            "kind": "discount",
            "label": "Скидка 10%",
            "applies_to": "basket",
            "percent": 10,
        },
        {"id": "bonus", "kind": "points", "label": "Бонусы", "earn_percent": 5},
    ],
    "category_names": {"desserts": "Десерты"},
}
MOMENT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def bundle(version: int = 1, program: dict | None = None) -> Bundle:  # type: ignore[type-arg]
    return Bundle(
        version=version,
        effective_from=MOMENT,
        published_at=MOMENT,
        targets=Targets(("msk-001",), ("north",)),
        note="Акция «Осень»",
        program=program_from_json(program or PROGRAM),
    )


def test_canonical_bytes_ignore_key_order_and_whitespace() -> None:
    one = {"b": 1, "a": {"y": "ё", "x": [1, 2]}}
    two = json.loads(json.dumps({"a": {"x": [1, 2], "y": "ё"}, "b": 1}, indent=4))
    assert (
        canonical_bytes(one) == canonical_bytes(two) == '{"a":{"x":[1,2],"y":"ё"},"b":1}'.encode()
    )


def test_bundle_round_trips_through_its_json() -> None:
    original = bundle()
    again = bundle_from_json(json.loads(canonical_bytes(original.to_json())))
    assert again == original
    assert again.program.compile().version == original.program.compile().version


def test_signed_envelope_verifies_with_the_pinned_key_only(tmp_path: Path) -> None:
    key = create_signing_key(tmp_path / "hq.key")
    assert (tmp_path / "hq.key").stat().st_mode & 0o777 == 0o600
    public = public_key_text(key)
    assert public.startswith("ed25519:") and public == public_key_text(
        load_signing_key(tmp_path / "hq.key")
    )
    body = bundle().to_json()
    raw = sign_bundle(body, key)
    assert verify_envelope(raw, parse_public_key(public)) == body

    other = create_signing_key(tmp_path / "other.key")
    with pytest.raises(BundleRefused) as wrong_key:
        verify_envelope(raw, parse_public_key(public_key_text(other)))
    assert wrong_key.value.reason == "bad_signature"

    tampered = json.loads(raw)
    tampered["bundle"]["program"]["rules"][0]["percent"] = "50"
    with pytest.raises(BundleRefused) as forged:
        verify_envelope(canonical_bytes(tampered), parse_public_key(public))
    assert forged.value.reason == "bad_signature"

    with pytest.raises(BundleRefused) as cut:
        verify_envelope(raw[: len(raw) // 2], parse_public_key(public))
    assert cut.value.reason == "malformed" and "not a complete bundle" in cut.value.message


def test_key_file_is_never_overwritten_and_a_foreign_file_is_named(tmp_path: Path) -> None:
    create_signing_key(tmp_path / "hq.key")
    with pytest.raises(SigningKeyError, match="already exists"):
        create_signing_key(tmp_path / "hq.key")
    (tmp_path / "junk.key").write_text("hello")
    with pytest.raises(SigningKeyError, match="not a PEM private key"):
        load_signing_key(tmp_path / "junk.key")
    with pytest.raises(ValueError, match="32 bytes"):
        parse_public_key("ed25519:AAAA")


def test_invalid_rule_in_a_bundle_is_refused_with_the_validate_wording() -> None:
    body = bundle().to_json()
    body["program"]["rules"][0]["percent"] = "150"
    with pytest.raises(BundleRefused) as refused:
        bundle_from_json(body)
    assert refused.value.reason == "invalid_rule"
    assert 'rules[0] (id "promo").percent' in refused.value.message


def test_targets() -> None:
    assert Targets().includes(store_id="x", region=None)
    targets = Targets(("msk-001",), ("north",))
    assert targets.includes(store_id="msk-001", region=None)
    assert targets.includes(store_id="spb-002", region="north")
    assert not targets.includes(store_id="krd-001", region="south")
    assert targets.describe() == "store msk-001, region north"


def test_diff_says_what_changed_rule_by_rule() -> None:
    new = json.loads(json.dumps(PROGRAM))
    new["rules"][0]["percent"] = 15
    new["rules"][0]["when"] = {"categories": ["dairy"]}
    del new["rules"][1]
    new["rules"].append(
        {
            "id": "autumn",
            "kind": "discount",
            "label": "Осень",
            "applies_to": "lines",
            "amount_off": 5000,
        }
    )
    new["points"]["point_value_minor"] = 50
    new["category_names"]["desserts"] = "Сладкое"
    lines = diff_programs(program_from_json(PROGRAM), program_from_json(new))
    assert "points.point_value_minor changed from 100 to 50" in lines
    assert 'rule "promo": percent changed from "10" to "15"' in lines
    assert 'rule "promo": when.categories changed from [] to ["dairy"]' in lines
    assert 'rule "bonus" removed (points, «Бонусы»)' in lines
    assert 'rule "autumn" added (discount, «Осень»)' in lines
    assert 'category_names.desserts changed from "Десерты" to "Сладкое"' in lines
    assert diff_programs(program_from_json(PROGRAM), program_from_json(PROGRAM)) == ["no changes"]


def test_backoff_grows_with_failures_and_stays_jittered_and_capped() -> None:
    plain = [next_delay(interval_s=60, max_backoff_s=900, failures=0) for _ in range(200)]
    assert min(plain) >= 48 and max(plain) <= 72 and len(set(plain)) > 1
    third = [next_delay(interval_s=60, max_backoff_s=900, failures=3) for _ in range(200)]
    assert min(third) >= 240 and max(third) <= 480
    many = [next_delay(interval_s=60, max_backoff_s=900, failures=40) for _ in range(200)]
    assert max(many) <= 900
