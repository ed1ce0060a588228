"""`pos-loyalty rules validate|explain` on the example files a store owner starts from."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pos_loyalty.cli.app import app
from pos_loyalty.settings import CONFIG_ENV

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
runner = CliRunner()


def test_validate_the_example_program() -> None:
    result = runner.invoke(app, ["rules", "validate", str(EXAMPLES / "rules.toml")])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and "15 rules" in result.output and "2 tiers" in result.output


def test_validate_reports_rule_id_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text(
        '[[rules]]\nid = "gold-10"\nkind = "discount"\nlabel = "x"\npercent = 150\n'
        '[[rules]]\nid = "gold-10"\nkind = "discount"\nlabel = "y"\npercent = 5\n',
        encoding="utf-8",
    )
    result = runner.invoke(app, ["rules", "validate", str(bad)])
    assert result.exit_code == 1
    assert 'rules[0] (id "gold-10").percent: must be between 0 and 100, got 150' in result.output


def test_explain_prints_every_rule_with_its_reason(tmp_path: Path) -> None:
    who = tmp_path / "customer.json"
    who.write_text(
        json.dumps(
            {
                "id": "c1",
                "lifetime_spend": 3_500_000,
                "points_balance": 10,
                "stamps": {"coffee-6th-free": 4},
            }
        ),
        encoding="utf-8",
    )
    result = runner.invoke(
        app,
        [
            "rules",
            "explain",
            str(EXAMPLES / "basket.json"),
            "--rules",
            str(EXAMPLES / "rules.toml"),
            "--at",
            "2026-05-04T09:30",
            "--customer-json",
            str(who),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    quote = json.loads(result.output)
    applied = {a["rule_id"] for a in quote["applied"]}
    assert applied == {"bakery-morning", "coffee-6th-free", "gold-10"}
    personal = ("coffee-dessert", "birthday-200", "favourite-10", "replenish-15", "winback-150")
    assert {n["rule_id"]: n["code"] for n in quote["not_applied"]} == {
        "silver-5": "tier_not_met",
        "bonus-1": "lost_stack_group",
        "yoghurt-2-for-1": "no_matching_lines",
        "promo-leto25": "code_not_presented",
        # a customer given as JSON carries no purchase history for the personal offers
        **{rule_id: "no_history" for rule_id in personal},
    }
    assert quote["points"]["burn"] == 10 and quote["points"]["burn_limited_by"] == "balance"


def test_explain_refuses_a_bad_basket_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "basket.json"
    bad.write_text(
        json.dumps(
            {
                "store_id": "s",
                "lane_id": "l",
                "lines": [
                    {"sku": "1", "name": "x", "category": "c", "qty": "2", "unit_price": 100}
                ],
            }
        ),
        encoding="utf-8",
    )
    result = runner.invoke(
        app, ["rules", "explain", str(bad), "--rules", str(EXAMPLES / "rules.toml")]
    )
    assert result.exit_code == 1
    assert "lines.0.qty: must be a number, got '2'" in result.output


def test_explain_prices_under_the_store_config_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pos-loyalty rules explain BASKET.json`, as the issue spells it: the store's own rules."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    missing = runner.invoke(app, ["rules", "explain", str(EXAMPLES / "basket.json")])
    assert missing.exit_code == 1 and "config.toml" in missing.output  # ./config.toml, not found
    (tmp_path / "config.toml").write_text(
        (EXAMPLES / "rules.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    args = ["rules", "explain", str(EXAMPLES / "basket.json"), "--at", "2026-05-04T09:30"]
    here = runner.invoke(app, [*args, "--json"])
    assert here.exit_code == 0, here.output
    assert {a["rule_id"] for a in json.loads(here.output)["applied"]} == {"bakery-morning"}
    monkeypatch.chdir(EXAMPLES)  # no config.toml here: the variable names the file
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "config.toml"))
    named = runner.invoke(app, [*args, "--json"])
    assert named.exit_code == 0, named.output
    assert json.loads(named.output) == json.loads(here.output)


STORE = (
    '[store]\nid = "t-001"\nname = "Тест"\n'
    'database_url = "sqlite:///./store.db"\nsecret_file = "./secret.key"\n'
    '[[tiers]]\nname = "silver"\nmin_spend = 1000000\n'
)
GOLD = '[[rules]]\nid = "gold-10"\nkind = "discount"\nlabel = "Золото"\n'


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (
            GOLD + "percent = 10\n" + GOLD + "percent = 5\n",
            'rules[1] (id "gold-10").id: id "gold-10" is already used by rules[0]',
        ),
        (
            '[[rules]]\nid = "cash"\nkind = "cashback"\nlabel = "x"\n',
            "rules[0] (id \"cash\").kind: unknown kind 'cashback'",
        ),
        (
            GOLD + "percent = 10\ncolour = 1\n",
            'rules[0] (id "gold-10").colour: unknown key',
        ),
        (
            GOLD + "percent = 100.5\n",
            'rules[0] (id "gold-10").percent: must be between 0 and 100, got 100.5',
        ),
        (
            GOLD + "amount_off = -500\n",
            'rules[0] (id "gold-10").amount_off: must not be negative, got -500',
        ),
        (
            GOLD + "percent = 10\nwhen = { min_subtotal = -1 }\n",
            'rules[0] (id "gold-10").when.min_subtotal: must not be negative, got -1',
        ),
        (
            '[[tiers]]\nname = "gold"\nmin_spend = 500000\n',
            'tiers[1] (name "gold").min_spend: tiers must be listed by strictly increasing',
        ),
    ],
)
def test_serve_does_not_start_on_a_broken_rules_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rules: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text(STORE + rules, encoding="utf-8")
    # An address that cannot be bound: were the file accepted, serve would fail instead of hang.
    args = ["serve", "--config", str(config), "--no-devices", "--host", "256.0.0.1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"Configuration error in {config}" in result.output
    assert expected in result.output
    assert not (tmp_path / "store.db").exists() and not (tmp_path / "secret.key").exists()
    validated = runner.invoke(app, ["rules", "validate", str(config)])
    assert validated.exit_code == 1 and expected in validated.output  # the same words
