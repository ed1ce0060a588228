"""Spend thresholds (coupon, discount now, points, upsell hint) and stamp cards."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from pos_loyalty.rules import evaluate
from pos_loyalty.rules.quote import coupon_expiry
from tests.factories import (
    MONDAY_MORNING,
    basket,
    compiled,
    customer,
    discount_rule,
    line,
    stamps_rule,
    threshold_rule,
)


def quote_for(*rules, lines, who=None, **kwargs):
    return evaluate(basket(*lines), who, compiled(*rules), MONDAY_MORNING, explain=True, **kwargs)


def test_reaching_700_issues_a_coupon_for_the_next_purchase() -> None:
    quote = quote_for(threshold_rule(), lines=(line("a", 35000, 2),))
    (issued,) = quote.coupons.to_issue
    assert (issued.rule_id, issued.amount_off, issued.min_subtotal) == ("spend-700-get-70", 7000, 0)
    assert (issued.expires_at - MONDAY_MORNING).days == 14
    assert quote.discount_total == 0
    # 14 days from Monday 09:30, to the end of that day in the store's zone
    assert quote.to_dict()["coupons"]["to_issue"][0]["expires_at"] == "2026-05-19T00:00:00+03:00"


def test_short_by_less_than_hint_within_gives_an_upsell_hint_in_russian() -> None:
    quote = quote_for(threshold_rule(), lines=(line("a", 61500, 1),))
    assert quote.coupons.to_issue == ()
    (hint,) = quote.hints
    assert (hint.type, hint.rule_id, hint.missing) == ("upsell", "spend-700-get-70", 8500)
    assert hint.message == "Добавьте 85,00\u00a0₽ — получите купон на 70,00\u00a0₽"


def test_hint_in_english_for_other_locales() -> None:
    quote = quote_for(
        threshold_rule(), lines=(line("a", 61500, 1),), locale="en_US", currency="USD"
    )
    assert quote.hints[0].message == "Add $85.00 to get a $70.00 coupon"


def test_points_are_hinted_only_to_a_customer_who_could_earn_them() -> None:
    rule = threshold_rule(reward={"points": 100})
    short = (line("a", 61500, 1),)
    assert quote_for(rule, lines=short).hints == ()  # no customer: no points to earn
    (hint,) = quote_for(rule, lines=short, who=customer()).hints
    assert hint.message.startswith("Добавьте 85,00\u00a0₽")


def test_no_hint_when_far_from_the_threshold() -> None:
    quote = quote_for(threshold_rule(), lines=(line("a", 50000, 1),))
    assert quote.hints == ()


def test_threshold_is_measured_after_item_level_discounts_only() -> None:
    rules = (
        threshold_rule(),
        discount_rule("lines-10", percent=10, applies_to="lines"),
        discount_rule("card-50", percent=50),  # basket level: does not count against it
    )
    reached = quote_for(*rules, lines=(line("a", 80000, 1),))  # 800 - 10 % = 720 ≥ 700
    assert len(reached.coupons.to_issue) == 1
    missed = quote_for(*rules, lines=(line("a", 75000, 1),))  # 675 < 700
    assert missed.coupons.to_issue == () and missed.hints[0].missing == 2500


def test_threshold_amount_off_now_and_points_reward() -> None:
    now_rule = threshold_rule("now", reward={"amount_off": 7000})
    quote = quote_for(now_rule, lines=(line("a", 70000, 1),))
    assert quote.discount_total == 7000 and quote.applied[0].kind == "threshold"
    points = threshold_rule("pts", reward={"points": 100})
    quote = quote_for(points, lines=(line("a", 70000, 1),), who=customer())
    assert quote.points.earn == 100 and quote.points.earned[0].rule_id == "pts"
    hint = quote_for(points, lines=(line("a", 60000, 1),), who=customer()).hints[0]
    assert hint.message == "Добавьте 100,00\u00a0₽ — получите 100 баллов"


def test_threshold_stack_group_issues_only_the_best_coupon() -> None:
    quote = quote_for(
        threshold_rule("t-700", stack_group="spend"),
        threshold_rule(
            "t-500",
            min_subtotal=50000,
            stack_group="spend",
            reward={"coupon": {"amount_off": 3000}},
        ),
        lines=(line("a", 80000, 1),),
    )
    assert [c.rule_id for c in quote.coupons.to_issue] == ["t-700"]


COFFEE = "coffee"


def coffee(qty: int = 1, price: int = 17900, sku: str = "latte") -> object:
    return line(sku, price, qty, category=COFFEE)


def test_sixth_coffee_is_free_and_counter_advances() -> None:
    who = customer(stamps={"coffee-6th-free": 4})
    quote = quote_for(stamps_rule(), lines=(coffee(2),), who=who)
    assert quote.discount_total == 17900
    (progress,) = quote.stamps
    assert (progress.count, progress.every, progress.free_units, progress.advance) == (0, 6, 1, 2)


def test_free_unit_is_the_cheapest_qualifying_one() -> None:
    who = customer(stamps={"coffee-6th-free": 5})
    quote = quote_for(
        stamps_rule(), lines=(coffee(1, 25000, "raf"), coffee(1, 15000, "espresso")), who=who
    )
    assert {ln.sku: ln.discount for ln in quote.lines} == {"raf": 0, "espresso": 15000}
    assert quote.stamps[0].count == 1


def test_progress_without_a_free_unit() -> None:
    quote = quote_for(
        stamps_rule(), lines=(coffee(1),), who=customer(stamps={"coffee-6th-free": 2})
    )
    assert quote.discount_total == 0
    assert quote.stamps[0].count == 3 and quote.stamps[0].advance == 1
    assert quote.not_applied and quote.not_applied[0].code == "no_free_unit_yet"
    assert quote.not_applied[0].message == "штамп 3/6: бесплатная единица ещё не набрана"


def test_twelve_coffees_in_one_basket_give_two_free() -> None:
    quote = quote_for(stamps_rule(), lines=(coffee(12),), who=customer())
    assert quote.stamps[0].free_units == 2 and quote.discount_total == 2 * 17900


def test_weighed_lines_do_not_count_for_stamps_and_no_stamps_without_customer() -> None:
    beans = line("beans", 150000, Decimal("0.250"), category=COFFEE)
    quote = quote_for(stamps_rule(), lines=(beans,), who=customer(stamps={"coffee-6th-free": 5}))
    assert quote.stamps[0].advance == 0 and quote.discount_total == 0
    anonymous = quote_for(stamps_rule(), lines=(coffee(6),))
    assert anonymous.stamps == () and anonymous.discount_total == 0


def test_a_coupon_lasts_to_the_end_of_the_local_day_its_days_run_out() -> None:
    moscow = ZoneInfo("Europe/Moscow")
    # Issued at 00:28 Moscow (21:28 UTC the day before): good through 16.12, not until 00:28 on it.
    late = datetime(2026, 12, 1, 21, 28, tzinfo=UTC)
    assert coupon_expiry(late, 14, moscow) == datetime(2026, 12, 17, tzinfo=moscow)
    # Starting at local midnight (a replenish coupon), 30 days end at midnight: nothing added.
    midnight = datetime(2026, 6, 18, tzinfo=moscow)
    assert coupon_expiry(midnight, 30, moscow) == datetime(2026, 7, 18, tzinfo=moscow)
    # A day that is 23 hours long (Berlin springs forward on 29.03.2026) still ends at midnight.
    berlin = ZoneInfo("Europe/Berlin")
    spring = datetime(2026, 3, 15, 10, 0, tzinfo=berlin)
    assert coupon_expiry(spring, 14, berlin) == datetime(2026, 3, 30, tzinfo=berlin)


def test_a_stored_quote_reads_back_typed_with_what_commit_and_refund_need() -> None:
    """What the quotes row keeps (`to_stored`) is the till's JSON plus each line's stamp units
    and the threshold a coupon was earned at; `from_stored` gives back the same typed Quote."""
    who = customer(stamps={"coffee-6th-free": 4})
    quote = quote_for(
        threshold_rule(),
        stamps_rule(),
        discount_rule(percent=10, when={"categories": ["dairy"]}),
        lines=(
            line("cof", 15000, 3, category="coffee"),
            line("cheese", 59990, Decimal("0.355"), category="dairy"),
            line("milk", 8990, 5, category="dairy"),
        ),
        who=who,
    )
    assert [ln.stamps for ln in quote.lines] == [{"coffee-6th-free": 3}, {}, {}]
    (issued,) = quote.coupons.to_issue
    assert issued.earned_min_subtotal == 70000
    stored = quote.to_stored()
    assert {k: v for k, v in stored.items() if k != "kept"} == quote.to_dict()
    assert "stamps" not in stored["lines"][0]  # the till's JSON is unchanged
    back = type(quote).from_stored(json.loads(json.dumps(stored)))
    assert back == quote
    assert back.lines[1].qty == Decimal("0.355")
