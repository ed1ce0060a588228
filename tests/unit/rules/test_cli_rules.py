"""`pos-loyalty rules validate|explain` on the example files a store owner starts from."""

import json
from pathlib import Path

from typer.testing import CliRunner

from pos_loyalty.cli.app import app

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
runner = CliRunner()


def test_validate_the_example_program() -> None:
    result = runner.invoke(app, ["rules", "validate", str(EXAMPLES / "rules.toml")])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and "7 rules" in result.output and "2 tiers" in result.output


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
    assert {n["rule_id"]: n["code"] for n in quote["not_applied"]} == {
        "silver-5": "tier_not_met",
        "bonus-1": "lost_stack_group",
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
