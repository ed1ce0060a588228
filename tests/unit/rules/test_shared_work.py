"""What evaluate works out once per basket for many rules (windows, line filters, stack groups,
points per category) gives every rule the answer it would get on its own."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from pos_loyalty.rules import evaluate
from tests.factories import (
    MONDAY_MORNING,
    basket,
    compiled,
    customer,
    discount_rule,
    line,
    points_rule,
)

MILK = line("milk", 10000, 1, category="dairy")
BREAD = line("bread", 5000, 2, category="bakery")
COFFEE = line("latte", 20000, 1, category="coffee")


def test_rules_sharing_a_window_and_rules_with_their_own_each_get_their_verdict() -> None:
    open_now = {"hours": "08:00-11:00", "weekdays": [1]}
    rules = compiled(
        discount_rule("a", percent=5, applies_to="lines", active=open_now),
        discount_rule("b", percent=5, applies_to="lines", active=open_now),
        # the same hours and another weekday: a window of its own, closed on Monday
        discount_rule("c", percent=5, applies_to="lines", active={**open_now, "weekdays": [2]}),
        discount_rule("d", percent=5, applies_to="lines", active={"hours": "12:00-13:00"}),
    )
    quote = evaluate(basket(MILK), customer(), rules, MONDAY_MORNING, explain=True)
    assert [a.rule_id for a in quote.applied] == ["a", "b"]
    assert quote.not_applied is not None
    reasons = {n.rule_id: n.code for n in quote.not_applied}
    assert reasons == {"c": "not_active_weekday", "d": "not_active_hours"}


def test_exclusive_and_plain_members_with_one_filter_see_their_own_usable_lines() -> None:
    rules = compiled(
        discount_rule(
            "milk-first", percent=50, applies_to="lines", priority=9, when={"skus": ["milk"]}
        ),
        discount_rule(
            "solo", percent=40, exclusive=True, stack_group="g", when={"exclude_skus": ["x"]}
        ),
        discount_rule("plain", percent=20, stack_group="g", when={"exclude_skus": ["x"]}),
    )
    quote = evaluate(basket(MILK, BREAD), customer(), rules, MONDAY_MORNING, explain=True)
    applied = {a.rule_id: a.amount for a in quote.applied}
    # solo may only take the bread (the milk is discounted already): 40 % of 100,00 ₽ = 40,00 ₽,
    # more than plain's 20 % of 50,00 + 100,00 ₽ = 30,00 ₽ (and not 40 % of both lines)
    assert applied == {"milk-first": 5000, "solo": 4000}
    by_sku = {ln.sku: ln for ln in quote.lines}
    assert by_sku["milk"].discount == 5000 and by_sku["bread"].discount == 4000


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["dairy", "bakery", "coffee"]),
            st.integers(min_value=0, max_value=50_000),
            st.integers(min_value=1, max_value=5),
        ),
        max_size=8,
    )
)
def test_points_per_category_equal_points_per_line(items: list[tuple[str, int, int]]) -> None:
    lines = [line(f"sku-{i}", price, qty, category=c) for i, (c, price, qty) in enumerate(items)]
    rules = compiled(
        points_rule("mult", earn_percent="1.5", multipliers={"coffee": "2.5", "dairy": 2}),
        points_rule("bakery-only", earn_percent=3, when={"categories": ["bakery"]}),
    )
    quote = evaluate(basket(*lines), customer(), rules, MONDAY_MORNING)
    paid = {"dairy": 0, "bakery": 0, "coffee": 0}
    for ln in quote.lines:
        paid[ln.category] += ln.total
    base = paid["dairy"] * 2 + paid["bakery"] + paid["coffee"] * Decimal("2.5")
    per_point = 100 * quote.points.point_value_minor
    expected = {
        "mult": int(base * Decimal("1.5") / per_point),
        "bakery-only": paid["bakery"] * 3 // per_point,
    }
    earned = {e.rule_id: e.points for e in quote.points.earned}
    assert earned == {rule_id: points for rule_id, points in expected.items() if points > 0}
