"""Points: earned on money paid, burned within balance and the redeem limit."""

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

GROCERIES = line("milk", 50000, 2, category="dairy")  # 1 000,00 ₽
COFFEE = line("latte", 20000, 1, category="coffee")


def quote_for(*rules, lines=(GROCERIES,), who=None, redeem=0, **points):
    who = who if who is not None else customer(points_balance=1000)
    return evaluate(
        basket(*lines, points_to_redeem=redeem),
        who,
        compiled(*rules, **points),
        MONDAY_MORNING,
        explain=True,
    )


def test_earn_percent_is_floored_on_what_is_paid_after_discounts() -> None:
    quote = quote_for(points_rule("bonus-5", earn_percent=5), discount_rule("card", percent=10))
    # paid 900,00 ₽ → 5 % = 45,00 ₽ → 45 points of 1,00 ₽
    assert quote.points.earn == 45
    assert quote.points.earned[0].rule_id == "bonus-5"
    assert quote.points.earn_expires_at is not None
    assert (quote.points.earn_expires_at - MONDAY_MORNING).days == 365


def test_earn_per_step_with_points() -> None:
    quote = quote_for(points_rule("per-100", earn_per=10000, points=3))
    assert quote.points.earn == 30  # 10 whole 100,00 ₽ steps × 3


def test_category_multiplier() -> None:
    quote = quote_for(
        points_rule("bonus-1", earn_percent=1, multipliers={"coffee": 2}), lines=(GROCERIES, COFFEE)
    )
    # 1 % of (100000 + 2 × 20000) = 1400 kopecks → 14 points
    assert quote.points.earn == 14


def test_burn_is_limited_by_the_redeem_percent_and_earn_uses_money_paid() -> None:
    quote = quote_for(points_rule("bonus-5", earn_percent=5), redeem=500)
    assert quote.points.burn == 300  # 30 % of 1 000,00 ₽
    assert quote.points.burn_limited_by == "redeem_max_percent"
    assert quote.points.burn_limited_message == (
        "списано 300 баллов: баллами можно оплатить не больше 30\u00a0% суммы"
    )
    assert quote.points.burn_value == 30000
    assert quote.total == 70000
    assert quote.points.earn == 35  # 5 % of 700,00 ₽
    assert quote.points.balance_after == 1000 - 300 + 35
    assert sum(ln.burn for ln in quote.lines) == 30000


def test_burn_is_limited_by_the_balance() -> None:
    quote = quote_for(who=customer(points_balance=120), redeem=200)
    assert (quote.points.burn, quote.points.burn_limited_by) == (120, "balance")
    assert quote.points.burn_limited_message == "списано 120 баллов: на счёте больше нет"
    asked_for_less = quote_for(who=customer(points_balance=120), redeem=100)
    assert asked_for_less.points.burn == 100
    assert asked_for_less.points.burn_limited_by is None
    assert asked_for_less.points.burn_limited_message is None


def test_burn_without_a_customer_is_refused_with_a_reason() -> None:
    quote = evaluate(basket(GROCERIES, points_to_redeem=50), None, compiled(), MONDAY_MORNING)
    assert (quote.points.burn, quote.points.burn_limited_by) == (0, "no_customer")
    assert quote.points.burn_limited_message == "нужна карта покупателя"
    assert quote.points.earn == 0


def test_point_value_applies_to_burn() -> None:
    quote = quote_for(redeem=100, point_value_minor=50, redeem_max_percent=100)
    assert quote.points.burn_value == 5000 and quote.total == 95000


def test_points_stack_group_keeps_the_best() -> None:
    quote = quote_for(
        points_rule("bonus-1", earn_percent=1, stack_group="bonus"),
        points_rule("bonus-5", earn_percent=5, stack_group="bonus"),
    )
    assert [e.rule_id for e in quote.points.earned] == ["bonus-5"]
    assert {n.rule_id: n.code for n in quote.not_applied or ()} == {"bonus-1": "lost_stack_group"}


def test_no_points_without_a_customer() -> None:
    quote = evaluate(basket(GROCERIES), None, compiled(points_rule()), MONDAY_MORNING, explain=True)
    assert quote.points.earn == 0
    assert quote.not_applied is not None and quote.not_applied[0].code == "no_customer"


def test_fractional_percent() -> None:
    quote = quote_for(points_rule("b", earn_percent="2.5"))
    assert quote.points.earn == 25
