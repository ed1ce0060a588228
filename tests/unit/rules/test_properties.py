"""Properties that must hold for any basket: the sums add up, order does not matter, nothing < 0."""

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pos_loyalty.rules import BasketLine, evaluate
from tests.factories import (
    MONDAY_MORNING,
    at,
    basket,
    compiled,
    coupon,
    customer,
    discount_rule,
    points_rule,
    stamps_rule,
    threshold_rule,
)

RULE_SPECS = (
    discount_rule("bakery-20", percent=20, applies_to="lines", when={"categories": ["bakery"]}),
    discount_rule("cheap-50", percent=50, applies_to="cheapest", when={"categories": ["dairy"]}),
    discount_rule("minus-3", amount_off=300, applies_to="lines", when={"skus": ["sku-1", "sku-2"]}),
    discount_rule("silver-5", percent=5, stack_group="card", when={"tiers": ["silver"]}),
    discount_rule(
        "gold-10", percent=10, stack_group="card", max_discount=5000, when={"tiers": ["gold"]}
    ),
    discount_rule(
        "promo-solo",
        percent="12.5",
        exclusive=True,
        applies_to="lines",
        when={"skus": ["sku-3"]},
        priority=50,
    ),
    discount_rule("big-basket", amount_off=1000, when={"min_subtotal": 50000}),
    stamps_rule("coffee-6th", every=6),
    threshold_rule("t-700", reward={"amount_off": 7000}),
    threshold_rule("t-coupon"),
    points_rule("bonus-1", earn_percent=1, multipliers={"coffee": 2}),
    points_rule("per-100", earn_per=10000, points=1),
)
RULES = compiled(*RULE_SPECS)

qty = st.one_of(
    st.integers(min_value=1, max_value=12),
    st.decimals(min_value=Decimal("0.001"), max_value=Decimal("5"), places=3),
)
lines = st.lists(
    st.builds(
        BasketLine,
        sku=st.sampled_from([f"sku-{i}" for i in range(6)]),
        name=st.just("Товар"),
        category=st.sampled_from(["dairy", "bakery", "coffee", "tobacco"]),
        qty=qty,
        unit_price=st.integers(min_value=0, max_value=200_000),
    ),
    min_size=0,
    max_size=12,
)
customers = st.one_of(
    st.none(),
    st.builds(
        customer,
        lifetime_spend=st.sampled_from([0, 1_000_000, 3_000_000]),
        points_balance=st.integers(min_value=0, max_value=100_000),
        stamps=st.fixed_dictionaries({"coffee-6th": st.integers(min_value=0, max_value=40)}),
    ),
)
coupons = st.lists(
    st.sampled_from(
        [
            coupon("A1"),
            coupon("B2", amount_off=None, percent_off=15),
            coupon("C3", categories=["coffee"], stack_group=None),
        ]
    ),
    max_size=3,
)

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(lines, customers, coupons, st.integers(min_value=0, max_value=100_000))
def test_sums_add_up_and_nothing_goes_below_zero(basket_lines, who, presented, redeem) -> None:
    quote = evaluate(
        basket(*basket_lines, points_to_redeem=redeem),
        who,
        RULES,
        MONDAY_MORNING,
        coupons=presented,
    )
    assert sum(ln.discount for ln in quote.lines) == quote.discount_total
    assert sum(a.amount for a in quote.applied) == quote.discount_total
    assert quote.total == quote.subtotal - quote.discount_total - quote.points.burn_value
    assert quote.total >= 0
    assert sum(ln.total for ln in quote.lines) == quote.total
    assert all(ln.total >= 0 and ln.discount >= 0 for ln in quote.lines)
    for ln in quote.lines:
        assert sum(a.amount for a in ln.applied) == ln.discount
    assert quote.points.earn >= 0
    assert 0 <= quote.points.burn <= redeem
    if who is not None:
        assert quote.points.burn <= who.points_balance


@PROPERTY
@given(lines, customers, coupons, st.integers(min_value=0, max_value=1000), st.randoms())
def test_permuting_lines_changes_nothing(basket_lines, who, presented, redeem, rnd) -> None:
    shuffled = list(basket_lines)
    rnd.shuffle(shuffled)
    one = evaluate(
        basket(*basket_lines, points_to_redeem=redeem),
        who,
        RULES,
        MONDAY_MORNING,
        coupons=presented,
        explain=True,
    ).to_dict()
    two = evaluate(
        basket(*shuffled, points_to_redeem=redeem),
        who,
        RULES,
        MONDAY_MORNING,
        coupons=list(reversed(presented)),
        explain=True,
    ).to_dict()
    lines_one, lines_two = one.pop("lines"), two.pop("lines")
    assert one == two

    def canonical(items):
        return sorted(str(sorted(item.items())) for item in items)

    assert canonical(lines_one) == canonical(lines_two)


@PROPERTY
@given(lines, customers, coupons, st.integers(min_value=0, max_value=1000))
def test_explain_only_adds_reasons(basket_lines, who, presented, redeem) -> None:
    """The fast path (sku-indexed rules, no reasons) prices exactly like the explained one."""
    args = (basket(*basket_lines, points_to_redeem=redeem), who, RULES, MONDAY_MORNING)
    plain = evaluate(*args, coupons=presented).to_dict()
    explained = evaluate(*args, coupons=presented, explain=True).to_dict()
    explained.pop("not_applied")
    assert plain == explained


# Rules that are often out of their window, store, segment or first purchase, next to the above.
CONDITIONED_SPECS = (
    *RULE_SPECS,
    discount_rule("weekend", percent=7, active={"weekdays": [6, 7]}),
    discount_rule("mornings", percent=3, applies_to="lines", active={"hours": "08:00-11:00"}),
    discount_rule("in-2026", amount_off=100, active={"from": "2026-01-01", "until": "2026-12-31"}),
    discount_rule("spb-only", percent=4, when={"stores": ["spb-001"]}, stack_group="card"),
    discount_rule("loyal", percent=2, applies_to="cheapest", when={"segments": ["loyal"]}),
    points_rule("welcome", earn_per=5000, points=10, when={"first_purchase": True}),
    threshold_rule("t-points", min_subtotal=30000, reward={"points": 50}, stack_group="t"),
    threshold_rule("t-coupon-2", min_subtotal=40000, stack_group="t", hint_within=20000),
)
CONDITIONED = compiled(*CONDITIONED_SPECS)
RULE_IDS = {spec["id"] for spec in CONDITIONED_SPECS}
moments = st.sampled_from(
    [MONDAY_MORNING, at("2026-05-09 22:30"), at("2026-05-06 11:00"), at("2027-01-04 09:00")]
)


@PROPERTY
@given(lines, customers, coupons, st.integers(min_value=0, max_value=1000), moments)
def test_with_explain_every_rule_either_acts_or_says_why_not(
    basket_lines, who, presented, redeem, now
) -> None:
    quote = evaluate(
        basket(*basket_lines, points_to_redeem=redeem),
        who,
        CONDITIONED,
        now,
        coupons=presented,
        explain=True,
    )
    acted = (
        {a.rule_id for a in quote.applied if a.kind != "coupon"}
        | {e.rule_id for e in quote.points.earned}
        | {c.rule_id for c in quote.coupons.to_issue}
    )
    assert quote.not_applied is not None
    explained = [n.rule_id for n in quote.not_applied]
    assert len(explained) == len(set(explained)), explained  # one reason per rule
    assert acted.isdisjoint(explained), acted & set(explained)
    assert acted | set(explained) == RULE_IDS
    for reason in quote.not_applied:
        assert reason.code and reason.message and reason.label
