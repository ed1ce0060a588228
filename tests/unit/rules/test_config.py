"""The rule format: what head office writes is accepted, doubtful files are refused by key."""

from pathlib import Path
from typing import Any

import pytest

from pos_loyalty.rules import (
    RulesConfigError,
    compile_rules,
    load_rules_file,
    rules_config_from_dict,
)
from pos_loyalty.rules.config import DiscountRule
from tests.factories import TIERS, discount_rule, points_rule, stamps_rule, threshold_rule

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(RulesConfigError) as caught:
        rules_config_from_dict(data)
    return caught.value.problems


def test_issue_example_rules_are_accepted_with_their_names() -> None:
    config = rules_config_from_dict(
        {
            "points": {"point_value_minor": 100, "redeem_max_percent": 30, "expire_days": 365},
            "tiers": TIERS,
            "rules": [
                discount_rule(
                    "gold-10",
                    percent=10,
                    applies_to="basket",
                    priority=100,
                    exclusive=False,
                    stack_group="card",
                    max_discount=0,
                    when={"tiers": ["gold"]},
                    active={
                        "from": "2026-01-01",
                        "until": "2026-12-31",
                        "weekdays": [1, 2, 3, 4, 5],
                        "hours": "08:00-11:00",
                    },
                ),
                points_rule("bonus-5", earn_percent=5, multipliers={"coffee": 2}),
                threshold_rule(),
                stamps_rule(),
            ],
        }
    )
    gold = config.rules[0]
    assert isinstance(gold, DiscountRule)
    assert gold.active.from_ is not None and gold.active.from_.isoformat() == "2026-01-01"
    assert [r.kind for r in config.rules] == ["discount", "points", "threshold", "stamps"]


def test_example_program_validates() -> None:
    config = load_rules_file(EXAMPLES / "rules.toml")
    assert len(config.rules) == 15  # 9 discount, points, threshold, stamps; 5 personal; referral
    assert [t.name for t in config.tiers] == ["silver", "gold"]


def test_percent_outside_range_names_rule_and_key() -> None:
    found = problems(
        {"rules": [points_rule(), points_rule("x"), discount_rule("gold-10", percent=150)]}
    )
    assert found == ['rules[2] (id "gold-10").percent: must be between 0 and 100, got 150']


def test_negative_amount_is_refused() -> None:
    found = problems({"rules": [discount_rule("minus", amount_off=-500)]})
    assert found == ['rules[0] (id "minus").amount_off: must not be negative, got -500']


def test_unknown_key_and_unknown_kind() -> None:
    found = problems(
        {
            "rules": [
                discount_rule("typo", percnt=5, percent=5),
                {"id": "x", "kind": "lottery", "label": "?"},
            ]
        }
    )
    assert (
        found[0]
        == 'rules[0] (id "typo").percnt: unknown key (check the spelling against the rule format)'
    )
    assert found[1].startswith("rules[1] (id \"x\").kind: unknown kind 'lottery'")
    assert "discount, points, threshold, stamps" in found[1]


def test_unknown_key_inside_when_is_refused() -> None:
    found = problems({"rules": [discount_rule("d", when={"tier": ["gold"]})]})
    assert found == [
        'rules[0] (id "d").when.tier: unknown key (check the spelling against the rule format)'
    ]


def test_duplicate_ids_are_refused() -> None:
    found = problems({"rules": [discount_rule("dup"), points_rule("ok"), discount_rule("dup")]})
    assert found == ['rules[2] (id "dup").id: id "dup" is already used by rules[0]']


def test_bad_id_pattern() -> None:
    found = problems({"rules": [discount_rule("Gold_10")]})
    assert found == ["rules[0] (id \"Gold_10\").id: must use only a-z, 0-9 and '-', got 'Gold_10'"]


def test_tiers_out_of_order_and_duplicate_names() -> None:
    found = problems(
        {
            "tiers": [
                {"name": "gold", "min_spend": 3_000_000},
                {"name": "silver", "min_spend": 1_000_000},
                {"name": "silver", "min_spend": 5_000_000},
            ]
        }
    )
    assert found == [
        'tiers[1] (name "silver").min_spend: tiers must be listed by strictly increasing '
        'min_spend: 1000000 is not above "gold" (3000000)',
        'tiers[2] (name "silver").name: tier name "silver" is already used by tiers[1]',
    ]


def test_rule_referring_to_an_unknown_tier() -> None:
    found = problems({"tiers": TIERS, "rules": [discount_rule("g", when={"tiers": ["gld"]})]})
    assert found == ['rules[0] (id "g").when.tiers: unknown tier "gld" (tiers: silver, gold)']


def test_stack_group_may_not_mix_points_and_discounts() -> None:
    found = problems(
        {"rules": [discount_rule("d", stack_group="card"), points_rule("p", stack_group="card")]}
    )
    assert len(found) == 1 and found[0].startswith(
        'rules[1] (id "p").stack_group: group "card" mixes'
    )


@pytest.mark.parametrize(
    ("active", "message"),
    [
        ({"hours": "8-11"}, 'must look like "08:00-11:00"'),
        ({"hours": "25:00-26:00"}, "must hold times from 00:00 to 24:00"),
        ({"hours": "10:00-10:00"}, "the window is empty"),
        ({"weekdays": [0, 8]}, "Input should be"),
        ({"from": "2026-12-31", "until": "2026-01-01"}, "is after 'until'"),
    ],
)
def test_bad_active_windows(active: dict[str, Any], message: str) -> None:
    found = problems({"rules": [discount_rule("w", active=active)]})
    assert found and all(p.startswith('rules[0] (id "w").active') for p in found)
    assert message in found[0]


def test_discount_needs_exactly_one_value_and_threshold_one_reward() -> None:
    found = problems(
        {
            "rules": [
                discount_rule("both", percent=5, amount_off=100),
                threshold_rule("two", reward={"amount_off": 100, "points": 5}),
            ]
        }
    )
    assert "exactly one of 'percent' or 'amount_off'" in found[0]
    assert "exactly one of 'coupon', 'amount_off' or 'points'" in found[1]


def test_other_top_level_tables_are_ignored(tmp_path: Path) -> None:
    text = (EXAMPLES / "rules.toml").read_text(encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(
        '[store]\nid = "msk-001"\n\n[[lanes]]\nid = "lane-1"\n\n' + text, encoding="utf-8"
    )
    assert len(load_rules_file(path).rules) == 15


def test_version_is_stable_and_changes_with_content() -> None:
    one = compile_rules(rules_config_from_dict({"rules": [discount_rule("a"), points_rule("b")]}))
    same = compile_rules(rules_config_from_dict({"rules": [discount_rule("a"), points_rule("b")]}))
    other = compile_rules(rules_config_from_dict({"rules": [discount_rule("a", percent=11)]}))
    assert one.version == same.version != other.version


def test_the_example_rules_file_is_the_demo_store_program() -> None:
    """The README says examples/rules.toml is config.toml's program on its own: keep them one."""
    import tomllib

    with (EXAMPLES.parent / "config.toml").open("rb") as store_file:
        store = tomllib.load(store_file)
    with (EXAMPLES / "rules.toml").open("rb") as example_file:
        example = tomllib.load(example_file)
    for part in ("points", "tiers", "rules", "no_rewards", "price_floors", "refunds"):
        assert example[part] == store[part], part
