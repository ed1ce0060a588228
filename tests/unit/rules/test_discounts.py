"""Discount rules and how they stack: exact kopecks, priority order, groups, exclusivity, caps."""

from decimal import Decimal

from pos_loyalty.rules import evaluate
from tests.factories import MONDAY_MORNING, basket, compiled, customer, discount_rule, line

MILK = line("milk", 8990, 2, category="dairy")
BREAD = line("bread", 5900, 3, category="bakery")
CHEESE = line("cheese", 79900, Decimal("0.356"), category="cheese")
TOBACCO = line("tobacco", 21000, 1, category="tobacco")


def quote_for(*rules, lines=(MILK, BREAD), who=None, **kwargs):
    return evaluate(basket(*lines), who, compiled(*rules), MONDAY_MORNING, explain=True, **kwargs)


def applied(quote):
    return {a.rule_id: a.amount for a in quote.applied}


def reasons(quote):
    return {n.rule_id: n.code for n in quote.not_applied or ()}


def test_basket_percent_is_spread_over_lines_to_the_kopeck() -> None:
    quote = quote_for(discount_rule("gold-10", percent=10), lines=(MILK, BREAD, CHEESE))
    # 10 % of 17980 + 17700 + 28444 = 6412.4 → 6412, allocated by largest remainder
    assert quote.subtotal == 64124
    assert quote.discount_total == 6412
    assert [ln.discount for ln in quote.lines] == [1798, 1770, 2844]
    assert quote.total == 64124 - 6412
    assert quote.lines[0].applied[0].rule_id == "gold-10"


def test_issue_example_milk_times_two_with_ten_percent() -> None:
    quote = quote_for(discount_rule("gold-10", percent=10), lines=(MILK,))
    assert (quote.subtotal, quote.discount_total, quote.total) == (17980, 1798, 16182)


def test_basket_amount_off_never_exceeds_the_basket() -> None:
    quote = quote_for(discount_rule("big", amount_off=50_000), lines=(MILK,))
    assert quote.discount_total == 17980 and quote.total == 0
    assert quote.lines[0].total == 0


def test_lines_percent_only_on_matching_categories() -> None:
    quote = quote_for(
        discount_rule("bakery-20", percent=20, applies_to="lines", when={"categories": ["bakery"]})
    )
    assert [ln.discount for ln in quote.lines] == [0, 3540]


def test_lines_amount_off_is_per_unit_and_capped_by_the_line() -> None:
    rule = discount_rule("minus-10", amount_off=1000, applies_to="lines", when={"skus": ["bread"]})
    assert quote_for(rule).lines[1].discount == 3000  # 3 units × 10,00 ₽
    cheap = line("bread", 500, 3, category="bakery")
    assert quote_for(rule, lines=(cheap,)).lines[0].discount == 1500  # not below zero


def test_cheapest_takes_one_unit_of_the_cheapest_matching_line() -> None:
    rule = discount_rule("cheap-50", percent=50, applies_to="cheapest")
    quote = quote_for(rule)
    # bread 59,00 is cheaper than milk 89,90: half of one unit
    assert [ln.discount for ln in quote.lines] == [0, 2950]


def test_item_level_comes_before_basket_level() -> None:
    quote = quote_for(
        discount_rule("card", percent=10, priority=1000),
        discount_rule("bakery", percent=20, applies_to="lines", when={"categories": ["bakery"]}),
    )
    # bakery first (item level) despite lower priority: 17700 - 3540 = 14160; then 10 % of 32140
    assert applied(quote) == {"bakery": 3540, "card": 3214}
    assert [a.rule_id for a in quote.applied] == ["bakery", "card"]


def test_same_level_runs_by_priority_then_id() -> None:
    quote = quote_for(
        discount_rule("b-second", amount_off=1000),
        discount_rule("a-first", percent=10),
        discount_rule("z-top", percent=50, priority=10),
        lines=(line("x", 10000, 1),),
    )
    # z-top 5000 → 5000 left; a-first 10 % → 500; b-second 1000
    assert [(a.rule_id, a.amount) for a in quote.applied] == [
        ("z-top", 5000),
        ("a-first", 500),
        ("b-second", 1000),
    ]


def test_stack_group_keeps_only_the_best() -> None:
    quote = quote_for(
        discount_rule("silver-5", percent=5, stack_group="card", priority=100),
        discount_rule("gold-10", percent=10, stack_group="card"),
    )
    assert applied(quote) == {"gold-10": 3568}
    assert reasons(quote) == {"silver-5": "lost_stack_group"}
    message = next(n.message for n in quote.not_applied or () if n.rule_id == "silver-5")
    assert message == "в группе «card» выгоднее gold-10"


def test_stack_group_tie_goes_to_the_higher_priority() -> None:
    quote = quote_for(
        discount_rule("a", percent=10, stack_group="card"),
        discount_rule("b", percent=10, stack_group="card", priority=5),
    )
    assert list(applied(quote)) == ["b"]


def test_exclusive_rule_keeps_its_lines_to_itself() -> None:
    quote = quote_for(
        discount_rule(
            "promo",
            percent=30,
            applies_to="lines",
            exclusive=True,
            priority=10,
            when={"skus": ["milk"]},
        ),
        discount_rule("card", percent=10),
    )
    milk, bread = quote.lines
    assert [a.rule_id for a in milk.applied] == ["promo"]
    assert milk.discount == 5394
    assert [a.rule_id for a in bread.applied] == ["card"] and bread.discount == 1770


def test_exclusive_rule_does_not_take_lines_already_discounted() -> None:
    quote = quote_for(
        discount_rule("first", percent=5, applies_to="lines", priority=10),
        discount_rule("solo", percent=50, applies_to="lines", exclusive=True),
    )
    assert set(applied(quote)) == {"first"}
    assert reasons(quote)["solo"] == "lines_taken"


def test_rule_on_lines_taken_by_an_exclusive_rule_says_so() -> None:
    quote = quote_for(
        discount_rule("solo", percent=50, exclusive=True, priority=10),
        discount_rule("card", percent=10),
    )
    assert reasons(quote)["card"] == "excluded_by"


def test_max_discount_caps_and_marks_it() -> None:
    quote = quote_for(discount_rule("gold-10", percent=10, max_discount=1000))
    assert quote.discount_total == 1000
    assert quote.applied[0].capped is True
    assert sum(ln.discount for ln in quote.lines) == 1000


def test_excluded_skus_get_no_basket_discount() -> None:
    quote = quote_for(
        discount_rule("card", percent=10, when={"exclude_skus": ["tobacco"]}),
        lines=(MILK, TOBACCO),
    )
    assert [ln.discount for ln in quote.lines] == [1798, 0]


def test_conditions_tier_segment_store_first_purchase_min_subtotal() -> None:
    rules = (
        discount_rule("gold", percent=10, when={"tiers": ["gold"]}),
        discount_rule("champ", percent=1, when={"segments": ["champions"]}),
        discount_rule("other-store", percent=1, when={"stores": ["spb-002"]}),
        discount_rule("welcome", percent=1, when={"first_purchase": True}),
        discount_rule("big", percent=1, when={"min_subtotal": 100_000}),
    )
    silver = customer(lifetime_spend=1_500_000, segments={"loyal"})
    quote = quote_for(*rules, who=silver)
    assert quote.applied == ()
    assert reasons(quote) == {
        "gold": "tier_not_met",
        "champ": "segment_not_met",
        "other-store": "wrong_store",
        "welcome": "first_purchase_only",
        "big": "below_min_subtotal",
    }
    texts = {n.rule_id: n.message for n in quote.not_applied or ()}
    assert texts["gold"] == "только для уровней: gold (у покупателя: silver)"
    assert texts["big"] == "сумма меньше 1\u00a0000,00\u00a0₽: не хватает 643,20\u00a0₽"
    anonymous = quote_for(*rules)
    assert reasons(anonymous)["gold"] == "no_customer"


def test_explain_texts_fall_back_to_english() -> None:
    quote = quote_for(discount_rule("gold", when={"tiers": ["gold"]}), locale="en_US")
    assert quote.not_applied and quote.not_applied[0].message == "needs an identified customer"


def test_without_explain_no_reasons_are_listed() -> None:
    quote = evaluate(
        basket(MILK), None, compiled(discount_rule("g", when={"tiers": ["gold"]})), MONDAY_MORNING
    )
    assert quote.not_applied is None
    assert "not_applied" not in quote.to_dict()
