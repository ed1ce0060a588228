"""Head office and stores as real processes on loopback: a published bundle reaches the store and
prices the next basket without a restart; future moments, refusals, outages, rollback, restarts
mid-download and targeting all behave as a chain expects."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from pos_loyalty.hq.bundle import canonical_bytes
from pos_loyalty.hq.signing import create_signing_key, load_signing_key, sign_bundle
from tests.e2e.hq_fixtures import (
    BASE_PROGRAM,
    HeadOffice,
    Proxy,
    StoreProcess,
    discount_program,
    run_cli,
    start_head_office,
    start_store,
    wait_until,
    write_store_config,
)

pytestmark = pytest.mark.slow


def _discount(quote: dict[str, Any]) -> int:
    return int(quote["discount_total"])


def _version_is(store: StoreProcess, version: int) -> Any:
    return lambda: store.version().startswith(f"v{version}-")


@pytest.fixture
def office(tmp_path: Path) -> Any:
    hq = start_head_office(tmp_path / "hq")
    try:
        yield hq
    finally:
        hq.stop()


def _store(
    tmp_path: Path, office: HeadOffice, store_id: str, region: str = "", url: str | None = None
) -> StoreProcess:
    token = office.add_store(store_id, region)
    config = write_store_config(
        tmp_path / store_id,
        store_id,
        hq_url=url or office.url,
        public_key=office.public_key,
        api_key=token,
        region=region,
    )
    return start_store(config)


def test_published_bundle_prices_the_next_basket_without_a_restart(
    tmp_path: Path, office: HeadOffice
) -> None:
    store = _store(tmp_path, office, "msk-001")
    try:
        before = store.evaluate()
        assert _discount(before) == 0 and not before["rules_version"].startswith("v")
        pid = store.process.pid if store.process else None

        out = office.publish(discount_program(10), note="Скидка 10% — маркетинг")
        assert "published v1 for all stores" in out

        wait_until("the store to price under v1", _version_is(store, 1))
        after = store.evaluate()
        assert _discount(after) == 1000  # 10 % of 100,00 ₽
        assert store.process is not None and store.process.pid == pid  # no restart
        # A quote made under the old program is refused at commit: the till prices it again.
        stale = store.commit(before["quote_id"])
        assert stale.status_code == 409, stale.text
        assert stale.json()["error"]["code"] == "quote_stale"
        assert stale.json()["error"]["details"]["reason"] == "rules_changed"
        sold = store.commit(after["quote_id"])
        assert sold.status_code == 201, sold.text

        status = run_cli("rules", "status", "--config", str(store.config), cwd=store.config.parent)
        assert status.returncode == 0 and "active: v1 since" in status.stdout, status.stdout
        fleet = wait_until(
            "head office to see v1 at the store",
            lambda: [r for r in office.fleet() if r["active_version"] == 1],
        )
        assert fleet[0]["store_id"] == "msk-001" and fleet[0]["behind"] is False
        assert fleet[0]["software_version"] and fleet[0]["last_seen_at"]

        # Head office goes away: the store keeps selling on v1, also after its own restart.
        office.stop()
        wait_until("the store to notice", lambda: "unreachable" in store.status().last_error)
        assert _discount(store.evaluate()) == 1000
        store.stop()
        store.start()
        quote = store.evaluate()
        assert quote["rules_version"].startswith("v1-") and _discount(quote) == 1000
        assert store.commit(quote["quote_id"]).status_code == 201
        wait_until(
            "a failed pull after restart", lambda: "unreachable" in store.status().last_error
        )
        assert store.status().active_version == 1
    finally:
        store.stop()


def test_effective_from_in_the_future_is_pending_then_active(
    tmp_path: Path, office: HeadOffice
) -> None:
    store = _store(tmp_path, office, "msk-001")
    try:
        office.publish(discount_program(5))
        wait_until("v1", _version_is(store, 1))
        moment = datetime.now(UTC) + timedelta(seconds=30)
        published = office.publish_http(discount_program(20), effective_from=moment.isoformat())
        assert published["version"] == 2
        status = wait_until("v2 pending", lambda: (s := store.status()).pending_version == 2 and s)
        assert status.active_version == 1 and status.pending_from == moment
        early = store.evaluate()  # this side of the moment: still v1
        assert datetime.fromisoformat(early["evaluated_at"]) < moment, "machine too slow"
        assert early["rules_version"].startswith("v1-") and _discount(early) == 500
        shown = run_cli("rules", "status", "--config", str(store.config), cwd=store.config.parent)
        assert "pending: v2 from" in shown.stdout or "active: v2" in shown.stdout, shown.stdout
        wait_until("v2 active", _version_is(store, 2))
        late = store.evaluate()
        assert datetime.fromisoformat(late["evaluated_at"]) >= moment
        assert _discount(late) == 2000
        assert store.status().active_version == 2 and store.status().pending_version is None
    finally:
        store.stop()


def _hq_db(office: HeadOffice) -> sqlite3.Connection:
    return sqlite3.connect(office.config.parent / "hq.db", isolation_level=None)


def _serve_as_next(office: HeadOffice, envelope: bytes, version: int) -> None:
    """Put a (bad) envelope in head office's table as the next version, as a compromised or
    damaged head office would serve it."""
    db = _hq_db(office)
    try:
        db.execute(
            "insert into hq_bundles (version, published_at, effective_from, targets, note, "
            "envelope) values (?, '2026-01-01 00:00:00', '2026-01-01 00:00:00', "
            """'{"stores": [], "regions": []}', '', ?)""",
            (version, envelope.decode("utf-8")),
        )
    finally:
        db.close()


def _drop_versions_from(office: HeadOffice, version: int) -> None:
    db = _hq_db(office)
    try:
        db.execute("delete from hq_bundles where version >= ?", (version,))
    finally:
        db.close()


def _signed_v1_body(office: HeadOffice) -> dict[str, Any]:
    db = _hq_db(office)
    try:
        raw = db.execute("select envelope from hq_bundles where version = 1").fetchone()[0]
    finally:
        db.close()
    body: dict[str, Any] = json.loads(raw)["bundle"]
    return body


def _refused(store: StoreProcess, since: datetime, reason: str) -> Any:
    def check() -> Any:
        status = store.status()
        return (
            status.last_error_at is not None
            and status.last_error_at > since
            and f"({reason})" in status.last_error
            and status
        )

    return wait_until(f"the store to refuse ({reason})", check)


def test_bad_bundles_are_refused_and_the_old_program_keeps_selling(
    tmp_path: Path, office: HeadOffice
) -> None:
    proxy = Proxy(office.port)
    store = _store(tmp_path, office, "msk-001", url=proxy.url)
    try:
        office.publish(discount_program(10))
        office.publish(discount_program(15))
        wait_until("v2", _version_is(store, 2))
        key = load_signing_key(office.config.parent / "hq-signing.key")
        body = {**_signed_v1_body(office), "version": 3}

        tampered = json.loads(sign_bundle(body, key))
        tampered["bundle"]["program"]["rules"][-1]["percent"] = "90"
        since = datetime.now(UTC)
        _serve_as_next(office, canonical_bytes(tampered), 3)
        _refused(store, since, "bad_signature")
        assert _discount(store.evaluate()) == 1500

        _drop_versions_from(office, 3)
        other = create_signing_key(tmp_path / "intruder.key")
        since = datetime.now(UTC)
        _serve_as_next(office, sign_bundle(body, other), 3)
        _refused(store, since, "bad_signature")

        _drop_versions_from(office, 3)
        invalid = {
            **body,
            "program": {
                **body["program"],
                "rules": [
                    {
                        "id": "promo",
                        "kind": "discount",
                        "label": "x",
                        "applies_to": "basket",
                        "percent": "150",
                    }
                ],
            },
        }
        since = datetime.now(UTC)
        _serve_as_next(office, sign_bundle(invalid, key), 3)
        status = _refused(store, since, "invalid_rule")
        assert 'rules[0] (id "promo").percent' in status.last_error

        _drop_versions_from(office, 3)
        proxy.mode = "truncate"
        since = datetime.now(UTC)
        _serve_as_next(office, sign_bundle(body, key), 3)
        _refused(store, since, "malformed")
        proxy.mode = "pass"

        _drop_versions_from(office, 2)  # head office now serves v1 again: a replayed old bundle
        since = datetime.now(UTC)
        _refused(store, since, "not_newer")

        quote = store.evaluate()
        assert quote["rules_version"].startswith("v2-") and _discount(quote) == 1500
        assert store.commit(quote["quote_id"]).status_code == 201
        scraped = httpx.get(store.url + "/metrics", timeout=10).text
        assert "pos_loyalty_rules_active_bundle 2.0" in scraped
        refused = next(
            ln
            for ln in scraped.splitlines()
            if ln.startswith("pos_loyalty_rules_bundles_refused_total")
        )
        assert float(refused.split()[-1]) >= 5
        log = store.log.read_text(encoding="utf-8")
        assert "refused (bad_signature)" in log and "the current program keeps running" in log
        fleet = wait_until(
            "head office to see the refusal",
            lambda: [r for r in office.fleet() if "not_newer" in r["last_error"]],
        )
        assert fleet[0]["active_version"] == 2
    finally:
        store.stop()
        proxy.close()


def test_rollback_republishes_the_old_program_as_the_next_version(
    tmp_path: Path, office: HeadOffice
) -> None:
    store = _store(tmp_path, office, "msk-001")
    try:
        office.publish(discount_program(10))
        v1 = wait_until("v1", lambda: (v := store.version()).startswith("v1-") and v)
        office.publish(discount_program(30), note="ошибка: 30%")
        wait_until("v2", _version_is(store, 2))
        assert _discount(store.evaluate()) == 3000
        diff = run_cli(
            "hq", "diff", "1", "2", "--config", str(office.config), cwd=office.config.parent
        )
        assert 'rule "promo": percent changed from "10" to "30"' in diff.stdout, diff.stdout
        done = run_cli(
            "hq", "rollback", "--to", "1", "--config", str(office.config), cwd=office.config.parent
        )
        assert done.returncode == 0, done.stderr
        assert "rolled back to v1's program as v3" in done.stdout
        v3 = wait_until("v3", lambda: (v := store.version()).startswith("v3-") and v)
        assert v3.split("-", 1)[1] == v1.split("-", 1)[1]  # the same program as v1
        assert _discount(store.evaluate()) == 1000
    finally:
        store.stop()


def test_store_killed_in_the_middle_of_a_download_comes_back_on_its_last_good_bundle(
    tmp_path: Path, office: HeadOffice
) -> None:
    proxy = Proxy(office.port)
    store = _store(tmp_path, office, "msk-001", url=proxy.url)
    try:
        office.publish(discount_program(10))
        wait_until("v1", _version_is(store, 1))
        proxy.mode = "stall"
        office.publish(discount_program(25))
        wait_until("the download of v2 to be under way", proxy.stalled.is_set)
        store.kill()
        proxy.release.set()
        proxy.mode = "pass"
        store.start()
        quote = store.evaluate()
        assert quote["rules_version"].startswith(("v1-", "v2-"))  # never half of either
        assert _discount(quote) in (1000, 2500)
        wait_until("v2 after the restart", _version_is(store, 2))
        assert _discount(store.evaluate()) == 2500
    finally:
        store.stop()
        proxy.close()


def test_two_stores_targeted_differently_and_the_fleet_shows_each(
    tmp_path: Path, office: HeadOffice
) -> None:
    north = _store(tmp_path, office, "spb-001", region="north")
    south = _store(tmp_path, office, "krd-001", region="south")
    try:
        office.publish(discount_program(5))
        office.publish(discount_program(12), stores="spb-001")
        office.publish(discount_program(7), regions="south")
        wait_until("spb on v2", _version_is(north, 2))
        wait_until("krd on v3", _version_is(south, 3))
        assert _discount(north.evaluate()) == 1200 and _discount(south.evaluate()) == 700
        rows = wait_until(
            "the fleet to show both",
            lambda: (
                (r := {row["store_id"]: row for row in office.fleet()})
                and r["spb-001"]["active_version"] == 2
                and r["krd-001"]["active_version"] == 3
                and r
            ),
        )
        assert rows["spb-001"]["target_version"] == 2 and not rows["spb-001"]["behind"]
        assert rows["krd-001"]["region"] == "south"
        shown = run_cli("hq", "stores", "--config", str(office.config), cwd=office.config.parent)
        assert "spb-001" in shown.stdout and "krd-001" in shown.stdout
        assert "v2" in shown.stdout and "v3" in shown.stdout
        unknown = run_cli(
            "hq",
            "publish",
            str(office.config.parent / "program.toml"),
            "--stores",
            "nowhere",
            "--config",
            str(office.config),
            cwd=office.config.parent,
        )
        assert unknown.returncode == 1 and "unknown_target" in unknown.stderr
    finally:
        north.stop()
        south.stop()


def test_invalid_program_is_refused_at_head_office_with_the_words_of_rules_validate(
    tmp_path: Path, office: HeadOffice
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        BASE_PROGRAM + '\n[[rules]]\nid = "x"\nkind = "discount"\nlabel = "x"\n'
        'applies_to = "basket"\npercent = 150\n',
        encoding="utf-8",
    )
    validate = run_cli("rules", "validate", str(bad), cwd=tmp_path)
    publish = run_cli("hq", "publish", str(bad), "--config", str(office.config), cwd=tmp_path)
    assert validate.returncode == publish.returncode == 1
    problem = [ln for ln in validate.stderr.splitlines() if "percent" in ln]
    assert problem and problem[0] in publish.stderr
    good = tmp_path / "good.toml"
    good.write_text(discount_program(10), encoding="utf-8")
    changed = run_cli("rules", "diff", str(good), str(bad), cwd=tmp_path)
    assert changed.returncode == 1 and problem[0] in changed.stderr
    other = tmp_path / "other.toml"
    other.write_text(discount_program(12), encoding="utf-8")
    said = run_cli("rules", "diff", str(good), str(other), cwd=tmp_path).stdout
    assert 'rule "promo": percent changed from "10" to "12"' in said


def test_store_without_head_office_reloads_its_config_on_rules_reload(tmp_path: Path) -> None:
    from pos_loyalty.apikeys.models import Scope
    from tests.e2e.hq_fixtures import LANE, StoreProcess, free_port, new_key

    port = free_port()
    config = tmp_path / "config.toml"
    head = (
        '[store]\nid = "msk-001"\nname = "Магазин"\ndatabase_url = "sqlite:///./store.db"\n'
        f'secret_file = "./secret.key"\n\n[api]\nport = {port}\n'
    )
    config.write_text(head + discount_program(5) + LANE, encoding="utf-8")
    store = StoreProcess(config, port, ("serve", "--no-devices"))
    store.till_key = new_key(config, Scope.TILL)
    store.start()
    try:
        assert _discount(store.evaluate()) == 500
        config.write_text(head + discount_program(8) + LANE, encoding="utf-8")
        done = run_cli("rules", "reload", "--config", str(config), cwd=tmp_path)
        assert done.returncode == 0 and "re-read its program" in done.stdout, done.stderr
        wait_until("the new program", lambda: _discount(store.evaluate()) == 800)
        status = run_cli("rules", "status", "--config", str(config), cwd=tmp_path)
        assert "no head office" in status.stdout, status.stderr

        config.write_text(head + discount_program(8).replace("percent = 8", "percent = 800") + LANE,
                          encoding="utf-8")  # fmt: skip
        refused = run_cli("rules", "reload", "--config", str(config), cwd=tmp_path)
        assert refused.returncode == 2 and "percent" in refused.stderr
        assert _discount(store.evaluate()) == 800  # the running program stays

    finally:
        store.stop()
