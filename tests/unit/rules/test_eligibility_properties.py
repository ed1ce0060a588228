"""For any basket and any program: no reward lands on a `[no_rewards]` line or takes a unit below
its price floor, and every part still sums exactly (discounts, points, totals)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pos_loyalty.money import line_amount
from pos_loyalty.rules import RulesConfig, compile_rules, evaluate
from tests.factories import MONDAY_MORNING, MOSCOW, TIERS, basket
from tests.unit.rules.test_properties import RULE_SPECS, coupons, customers, lines

CATEGORIES = ["dairy", "bakery", "coffee", "tobacco"]
SKUS = [f"sku-{i}" for i in range(6)]

floors = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {
                "categories": st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=2),
                "min_unit_price": st.integers(min_value=0, max_value=200_000),
            }
        ),
        st.fixed_dictionaries(
            {
                "skus": st.lists(st.sampled_from(SKUS), min_size=1, max_size=2),
                "min_unit_price": st.integers(min_value=0, max_value=200_000),
            }
        ),
    ),
    max_size=3,
)
programs = st.fixed_dictionaries(
    {
        "rules": st.lists(st.sampled_from(RULE_SPECS), unique_by=lambda r: r["id"], max_size=8),
        "no_rewards": st.fixed_dictionaries(
            {
                "categories": st.lists(st.sampled_from(CATEGORIES), max_size=2),
                "skus": st.lists(st.sampled_from(SKUS), max_size=2),
                "earn_points": st.booleans(),
            }
        ),
        "price_floors": floors,
        "redeem_max_percent": st.sampled_from([0, 30, 100]),
    }
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs, lines, customers, coupons, st.integers(min_value=0, max_value=100_000))
def test_no_reward_on_excluded_lines_or_below_a_floor(
    program: dict[str, Any], basket_lines: Any, who: Any, presented: Any, redeem: int
) -> None:
    percent = program.pop("redeem_max_percent")
    data = {
        "points": {"point_value_minor": 100, "redeem_max_percent": percent},
        "tiers": TIERS,
        **program,
    }
    rules = compile_rules(RulesConfig.from_dict(data), tz=MOSCOW)
    guard = rules.guard
    quote = evaluate(
        basket(*basket_lines, points_to_redeem=redeem),
        who,
        rules,
        MONDAY_MORNING,
        coupons=presented,
    )
    for ln in quote.lines:
        if guard.excludes(ln.sku, ln.category):
            assert (ln.discount, ln.burn, ln.applied) == (0, 0, ()), ln
        else:
            floor = guard.floor_amount(ln.sku, ln.category, ln.qty)
            assert ln.total >= min(floor, ln.subtotal), (ln, floor)
        assert sum(a.amount for a in ln.applied) == ln.discount
        assert ln.total == ln.subtotal - ln.discount - ln.burn >= 0
    assert sum(ln.discount for ln in quote.lines) == quote.discount_total
    assert sum(a.amount for a in quote.applied) == quote.discount_total
    assert sum(ln.burn for ln in quote.lines) == quote.points.burn_value
    assert quote.points.burn_value == quote.points.burn * 100
    assert quote.total == quote.subtotal - quote.discount_total - quote.points.burn_value
    assert quote.subtotal == sum(line_amount(ln.unit_price, ln.qty) for ln in basket_lines)
    rewardable = [ln for ln in quote.lines if not guard.excludes(ln.sku, ln.category)]
    if not rewardable:
        assert quote.discount_total == quote.points.burn == 0
        assert quote.coupons.applied == () and quote.coupons.to_issue == ()
        if not guard.earn_points:
            assert quote.points.earn == 0
        if basket_lines:
            assert [n.code for n in quote.notices][:1] == ["no_rewards_basket"]
