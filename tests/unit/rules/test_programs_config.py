"""Promo-code and buy-N-get-M rules in the program's format: refused by key when doubtful."""

import json
from dataclasses import replace
from typing import Any

import pytest

from pos_loyalty.rules import RulesConfigError, evaluate, rules_config_from_dict
from pos_loyalty.rules.promo import normalise_code
from pos_loyalty.rules.quote import PromoCodeUse
from tests.factories import MONDAY_MORNING, basket, compiled, discount_rule, line


def problems(*rules: dict[str, Any]) -> str:
    with pytest.raises(RulesConfigError) as caught:
        rules_config_from_dict({"rules": list(rules)})
    return "\n".join(caught.value.problems)


def test_codes_compare_in_one_spelling() -> None:
    assert normalise_code(" лето-25 ") == "ЛЕТО25" == normalise_code("ЛЕТО 25")
    assert normalise_code("vip‑0001") == "VIP0001"  # a non-breaking hyphen typed on a phone


def test_code_rules_need_their_codes_and_codes_are_distinct() -> None:
    assert "go together" in problems(discount_rule(percent=10, trigger="code"))
    assert "go together" in problems(discount_rule(percent=10, promo={"codes": ["A1"]}))
    twice = problems(discount_rule(percent=10, trigger="code", promo={"codes": ["лето", "ЛЕТО"]}))
    assert "listed twice" in twice
    assert "codes" in problems(discount_rule(percent=10, trigger="code", promo={"codes": []}))
    bad = problems(discount_rule(percent=10, trigger="code", promo={"codes": ["A\x1bB"]}))
    assert "letters and digits" in bad


def test_buy_goes_with_cheapest_and_get_is_less_than_buy() -> None:
    assert "'buy' goes with" in problems(discount_rule(percent=100, buy=2))
    cheapest = {"applies_to": "cheapest", "percent": 100}
    assert "must be less than" in problems(discount_rule(**cheapest, buy=2, get=2))
    assert "'get' goes with 'buy'" in problems(discount_rule(**cheapest, get=1))
    assert "greater than or equal to 2" in problems(discount_rule(**cheapest, buy=1))
    rules_config_from_dict({"rules": [discount_rule(**cheapest, buy=3, get=1)]})


def test_a_budget_names_a_cap_and_its_period() -> None:
    assert "at least one of" in problems(discount_rule(percent=10, budget={"period": "day"}))
    assert "period" in problems(discount_rule(percent=10, budget={"period": "year", "max_uses": 1}))
    from pos_loyalty.rules.budget import period_key

    day = __import__("datetime").date(2026, 12, 7)
    assert period_key("day", day) == "2026-12-07"
    assert period_key("week", day) == "2026-W50"
    assert period_key("campaign", day) == "campaign"


def test_a_stored_quote_keeps_the_promo_codes_commit_counts() -> None:
    """The uses pricing found (code, rule) travel in the typed quote: the quotes row keeps them
    and a commit by quote id reads them back to count against the code's limits."""
    rule = discount_rule(percent=25, trigger="code", promo={"codes": ["ЛЕТО25"]})
    lines = basket(line("milk", 10000, 1))
    typed = replace(lines, promo_codes=frozenset({"ЛЕТО25"}))
    quote = evaluate(typed, None, compiled(rule), MONDAY_MORNING)
    assert quote.discount_total == 2500
    assert "promo_codes" not in quote.to_dict()  # no code typed: the key stays out
    used = replace(quote, promo_codes=(PromoCodeUse("ЛЕТО25", quote.applied[0].rule_id),))
    stored = json.loads(json.dumps(used.to_stored()))
    assert stored["promo_codes"] == [{"code": "ЛЕТО25", "rule_id": quote.applied[0].rule_id}]
    assert type(quote).from_stored(stored) == used
    assert type(quote).from_stored(quote.to_stored()).promo_codes is None


def test_a_program_written_whole_reads_back_the_same() -> None:
    """A head-office bundle writes every field of every rule (defaults included); the store must
    read it back as the same program, buy N get M and plain discounts alike."""
    program = rules_config_from_dict(
        {
            "rules": [
                discount_rule(percent=10),
                discount_rule(rule_id="two-for-one", percent=100, applies_to="cheapest", buy=2),
            ]
        }
    )
    whole = json.loads(json.dumps(program.model_dump(mode="json", by_alias=True)))
    assert whole["rules"][0]["get"] is None
    assert rules_config_from_dict(whole) == program
