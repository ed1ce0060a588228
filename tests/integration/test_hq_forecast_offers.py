"""Dry run and results, both databases: presented coupons and personal offers are replayed from
what the sales recorded (a changed coupon value or personal offer shows its cost), refunds come
off the figures, and the head-office endpoint compares the two programs the caller names."""

from __future__ import annotations

import copy
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pos_loyalty.apikeys.models import Scope
from pos_loyalty.hq.bundle import program_from_json
from pos_loyalty.hq.replay import DryRun, dry_run
from pos_loyalty.hq.results import results_report
from pos_loyalty.rules.compiled import CompiledRules
from pos_loyalty.store import Store
from tests.conftest import new_key
from tests.factories import SALE_RULES, basket_json, enrol_json, line_json, personal_rule, sell_json

FAVOURITE = personal_rule("fav-dairy", "favourite", by="category", min_purchases=1)
PROGRAM: dict[str, Any] = {**SALE_RULES, "rules": [*SALE_RULES["rules"], FAVOURITE]}
IVAN = {"phone": "9161234567"}


@pytest.fixture
def config_extra(tmp_path: Path) -> dict[str, Any]:
    return {**PROGRAM, "head_office": {"signing_key": str(tmp_path / "hq.key")}}


def _changed(**changes: Any) -> dict[str, Any]:
    """PROGRAM with rule fields changed: {rule_id: {key: value}} (a nested `reward` as a whole)."""
    program = copy.deepcopy(PROGRAM)
    for rule in program["rules"]:
        rule.update(changes.get(rule["id"].replace("-", "_"), {}))
    return program


def _compiled(store: Store, program: dict[str, Any]) -> CompiledRules:
    return program_from_json(program).compile(tz=store.settings.store.tz)


def _replay(store: Store, proposed: CompiledRules, **options: Any) -> DryRun:
    with store.uow() as uow:
        return dry_run(
            uow=uow,
            active=store.rules,
            proposed=proposed,
            since=store.now() - timedelta(days=1),
            locale="ru_RU",
            currency="RUB",
            tz=store.settings.store.tz,
            **options,
        )


def _rule(result: DryRun, rule_id: str) -> Any:
    return next(r for r in result.rules if r.rule_id == rule_id)


def _refund(client: TestClient, sale: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    reply = client.post(
        f"/v1/transactions/{sale['transaction_id']}/refund",
        json=body,
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def _day_of_sales(client: TestClient) -> dict[str, dict[str, Any]]:
    """Иван's day: the 700 ₽ coupon earned, then spent; the favourite-category offer issued
    from his history (not in his first basket: no history yet), then spent on dairy."""
    enrol_json(client)
    dairy = line_json("milk", 80000, category="dairy")
    first = sell_json(client, basket_json(dairy, customer=IVAN))
    second = sell_json(client, basket_json(line_json("cheese", 20000), customer=IVAN))
    threshold = next(c for c in first["coupons_issued"] if c["rule_id"] == "spend-700-get-70")
    favourite = next(c for c in second["coupons_issued"] if c["rule_id"] == "fav-dairy")
    spend = sell_json(
        client,
        basket_json(
            line_json("bread", 50000, category="bakery"), customer=IVAN, coupons=[threshold["code"]]
        ),
    )
    assert spend["coupons"]["applied"][0]["amount"] == 7000
    fav_spent = sell_json(
        client, basket_json(line_json("yoghurt", 30000), customer=IVAN, coupons=[favourite["code"]])
    )
    assert fav_spent["coupons"]["applied"][0]["amount"] == 3000  # 10 % of 300 ₽ of dairy
    return {"first": first, "second": second, "spend": spend, "fav_spent": fav_spent}


def test_the_replay_reproduces_presented_coupons_and_personal_offers(
    client: TestClient, store: Store
) -> None:
    _day_of_sales(client)
    same = _replay(store, _compiled(store, PROGRAM))
    for rule_id in ("spend-700-get-70", "fav-dairy", "bonus-5"):
        rule = _rule(same, rule_id)
        assert rule.proposed == rule.active, rule_id  # the program that ran, replayed: same
    fav = _rule(same, "fav-dairy")
    # one offer (at the second sale, from the first one's history; active after, so no more)
    assert fav.active.coupons == 1 and fav.active.discount == 3000
    assert _rule(same, "spend-700-get-70").active.discount == 7000  # counted for its issuer

    dearer = _changed(
        spend_700_get_70={"reward": {"coupon": {"amount_off": 15000, "valid_days": 14}}},
        fav_dairy={"percent_off": 30},
    )
    forecast = _replay(store, _compiled(store, dearer))
    assert _rule(forecast, "spend-700-get-70").proposed.discount == 15000
    assert _rule(forecast, "fav-dairy").proposed.discount == 9000  # 30 % of 300 ₽
    assert forecast.proposed_total.discount == forecast.active_total.discount + 8000 + 6000

    without = copy.deepcopy(PROGRAM)
    without["rules"] = [r for r in without["rules"] if r["id"] != "fav-dairy"]
    dropped = _replay(store, _compiled(store, without))
    assert _rule(dropped, "fav-dairy").proposed.coupons == 0
    assert _rule(dropped, "fav-dairy").proposed.discount == 0  # never issued, never spent


def test_refunds_come_off_the_dry_run_and_the_results(client: TestClient, store: Store) -> None:
    sales = _day_of_sales(client)
    two = sell_json(
        client,
        basket_json(line_json("tea", 10000, 2, category="tea"), customer=IVAN),
    )

    def figures() -> tuple[Any, Any]:
        with store.uow() as uow:
            report = results_report(
                uow=uow, since=store.now() - timedelta(days=1), until=store.now()
            )
        return _replay(store, _compiled(store, PROGRAM)), report

    before, report_before = figures()
    half = _refund(client, two, {"lines": [{"sku": "tea", "qty": 1}]})
    reversed_points = half["points"]["earn_reversed"]
    assert reversed_points > 0
    after, report_after = figures()
    bonus = lambda r: next(x for x in r.rules if x.rule_id == "bonus-5")  # noqa: E731
    assert bonus(report_after).points_issued == bonus(report_before).points_issued - reversed_points
    assert report_after.revenue == report_before.revenue - half["amount"]
    assert report_after.refunded == half["amount"]
    for side in ("active", "proposed"):
        was, now = getattr(_rule(before, "bonus-5"), side), getattr(_rule(after, "bonus-5"), side)
        assert now.points == was.points - reversed_points, side

    _refund(client, sales["spend"], {})  # the coupon's sale, refunded whole
    whole, report_whole = figures()
    assert whole.refunded_sales == 1
    for side in ("active", "proposed"):
        assert getattr(_rule(whole, "spend-700-get-70"), side).discount == 0, side
    threshold = next(r for r in report_whole.rules if r.rule_id == "spend-700-get-70")
    assert threshold.discount == 0


def test_the_endpoint_compares_the_two_programs_the_caller_names(
    client: TestClient, store: Store, tmp_path: Path
) -> None:
    from pos_loyalty.hq.signing import create_signing_key

    _day_of_sales(client)
    create_signing_key(tmp_path / "hq.key")
    client.headers["Authorization"] = f"Bearer {new_key(store, Scope.HQ)}"
    dearer = _changed(spend_700_get_70={"reward": {"coupon": {"amount_off": 15000}}})
    for program in (PROGRAM, dearer):
        assert client.post("/v1/hq/bundles", json={"program": program}).status_code == 201
    v1 = _compiled(store, PROGRAM).version

    default = client.post("/v1/hq/bundles/2/dry-run", json={"since": "1d"}).json()
    assert default["baseline"] == {
        "kind": "version", "version": 1, "rules_version": v1, "figures": "replayed"
    }  # fmt: skip
    assert default["candidate"]["kind"] == "version" and default["candidate"]["version"] == 2
    threshold = next(r for r in default["rules"] if r["rule_id"] == "spend-700-get-70")
    assert (threshold["active"]["discount"], threshold["proposed"]["discount"]) == (7000, 15000)

    body = {
        "since": "1d",
        "baseline": {"kind": "version", "version": 2},
        "candidate": {"kind": "program", "program": PROGRAM},
    }
    answer = client.post("/v1/hq/dry-run", json=body)
    assert answer.status_code == 200, answer.text
    chosen = answer.json()
    assert chosen["baseline"]["version"] == 2 and chosen["candidate"]["kind"] == "program"
    assert chosen["candidate"]["rules_version"] == v1 == chosen["proposed_version"]
    threshold = next(r for r in chosen["rules"] if r["rule_id"] == "spend-700-get-70")
    assert (threshold["active"]["discount"], threshold["proposed"]["discount"]) == (15000, 7000)

    recorded = client.post(
        "/v1/hq/dry-run",
        json={
            **body,
            "baseline": {"kind": "recorded"},
            "candidate": {"kind": "version", "version": 2},
        },
    ).json()
    assert recorded["baseline"]["figures"] == "recorded"
    assert recorded["baseline"]["rules_version"] == store.rules.version
    active = client.post("/v1/hq/dry-run", json={**body, "baseline": {"kind": "active"}}).json()
    assert active["baseline"]["kind"] == "active" and active["baseline"]["figures"] == "replayed"

    missing = client.post("/v1/hq/dry-run", json={**body, "baseline": {"kind": "version"}})
    assert missing.status_code == 422
    unknown = client.post(
        "/v1/hq/dry-run", json={**body, "baseline": {"kind": "version", "version": 9}}
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "bundle_not_found"
    bad = {**body, "candidate": {"kind": "program", "program": {"rules": [{"id": "x"}]}}}
    refused = client.post("/v1/hq/dry-run", json=bad)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "rules_invalid"


def test_cli_dry_run_and_report_after_the_split(
    client: TestClient, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rules dry-run` and `rules report` (now in cli/rules_forecast.py) on the store's database:
    the dearer coupon's cost, and the report's revenue net of a refund."""
    from typer.testing import CliRunner

    from pos_loyalty.cli import common
    from pos_loyalty.cli.app import app as cli

    # wide enough for a table row on one line, whatever COLUMNS the console was made with
    monkeypatch.setattr(common.console, "_width", 200)

    sales = _day_of_sales(client)
    config = tmp_path / "store.toml"
    config.write_text(
        f'[store]\nid = "msk-001"\nname = "Магазин"\n'
        f'database_url = "{store.settings.database_url}"\n'
        f'secret_file = "{store.settings.secret_path}"\n',
        encoding="utf-8",
    )
    proposal = tmp_path / "dearer.toml"
    proposal.write_text(
        '[[rules]]\nid = "spend-700-get-70"\nkind = "threshold"\nlabel = "Купон"\n'
        "min_subtotal = 70000\nreward = { coupon = { amount_off = 15000 } }\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    forecast = runner.invoke(
        cli,
        ["rules", "dry-run", str(proposal), "-c", str(config), "--since", "1d"],
    )
    assert forecast.exit_code == 0, forecast.output
    row = next(line for line in forecast.output.splitlines() if "spend-700-get-70" in line)
    assert "70,00" in row and "150,00" in row  # the coupon spent, priced at both values

    def report() -> str:
        result = runner.invoke(cli, ["rules", "report", "-c", str(config), "--since", "1d"])
        assert result.exit_code == 0, result.output
        return result.output

    assert "1 700,00" in report().replace("\xa0", " ")  # 800 + 200 + 430 + 270 ₽ paid
    _refund(client, sales["spend"], {})  # 430 ₽ back
    assert "1 270,00" in report().replace("\xa0", " ")
    broken = tmp_path / "broken.toml"
    broken.write_text('[[rules]]\nid = "x"\nkind = "discount"\n', encoding="utf-8")
    refused = runner.invoke(cli, ["rules", "dry-run", str(broken), "-c", str(config)])
    assert refused.exit_code == 1 and "Invalid rules" in refused.output
