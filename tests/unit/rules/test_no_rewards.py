"""`[no_rewards]` and `[[price_floors]]`: goods no reward may touch, prices no reward goes below."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pos_loyalty.rules import RulesConfig, compile_rules, evaluate
from pos_loyalty.rules.compiled import CompiledRules
from tests.factories import (
    MONDAY_MORNING,
    MOSCOW,
    TIERS,
    basket,
    coupon,
    customer,
    discount_rule,
    line,
    points_rule,
    stamps_rule,
    threshold_rule,
)

TOBACCO = line("4600000000001", 25_000, category="tobacco", name="Сигареты «Ява»")
CHEESE = line("cheese-1", 40_000, category="cheese", name="Сыр")
BREAD = line("bread-1", 5_000, category="bakery", name="Хлеб")


def guarded(*rules: dict[str, Any], **section: Any) -> CompiledRules:
    data: dict[str, Any] = {
        "points": {"point_value_minor": 100, "redeem_max_percent": 100, "expire_days": 365},
        "tiers": TIERS,
        "rules": list(rules),
        "no_rewards": {"categories": ["tobacco"], "label": "Табачная продукция"},
    }
    data.update(section)
    return compile_rules(RulesConfig.from_dict(data), tz=MOSCOW)


def by_sku(quote: Any) -> dict[str, Any]:
    return {ln.sku: ln for ln in quote.lines}


def test_a_coupon_is_spread_over_the_other_lines_only_to_the_kopeck() -> None:
    rules = guarded(points_rule("bonus-1", earn_percent=1))
    quote = evaluate(
        basket(TOBACCO, CHEESE, BREAD),
        customer(),
        rules,
        MONDAY_MORNING,
        coupons=[coupon(amount_off=7_001)],
    )
    lines = by_sku(quote)
    assert lines[TOBACCO.sku].discount == 0 and lines[TOBACCO.sku].total == 25_000
    assert lines["cheese-1"].discount + lines["bread-1"].discount == 7_001
    assert quote.discount_total == 7_001
    assert quote.subtotal == 70_000 and quote.total == 70_000 - 7_001
    assert quote.points.earn == (45_000 - 7_001) // 10_000  # 1 %; tobacco earns nothing
    assert [n.code for n in quote.notices] == ["no_rewards_lines"]
    assert "Сигареты «Ява»" in quote.notices[0].message


def test_no_discount_stamp_or_burn_reaches_the_goods() -> None:
    rules = guarded(
        discount_rule("card-10", percent=10),
        discount_rule("cheap-50", percent=50, applies_to="cheapest"),
        stamps_rule("tobacco-stamps", every=2, when={"categories": ["tobacco"]}),
    )
    quote = evaluate(
        basket(line(TOBACCO.sku, 25_000, 4, category="tobacco"), BREAD, points_to_redeem=200),
        customer(points_balance=1_000),
        rules,
        MONDAY_MORNING,
    )
    tobacco = by_sku(quote)[TOBACCO.sku]
    assert (tobacco.discount, tobacco.burn, tobacco.applied) == (0, 0, ())
    assert quote.stamps == ()  # tobacco units do not even count on a stamp card
    assert quote.points.burn_value <= 5_000 - by_sku(quote)["bread-1"].discount


def test_earn_points_true_lets_the_goods_earn() -> None:
    rules = guarded(
        points_rule("bonus-1", earn_percent=1),
        no_rewards={"categories": ["tobacco"], "earn_points": True},
    )
    quote = evaluate(basket(TOBACCO, BREAD), customer(), rules, MONDAY_MORNING)
    assert quote.points.earn == 3  # 1 % of 300,00 ₽; bread alone (50,00 ₽) would earn 0
    assert by_sku(quote)[TOBACCO.sku].discount == 0
    assert quote.notices[0].message == (
        "Товары вне программы лояльности: скидки, купоны и оплата баллами не применяются "
        "— Сигареты «Ява»"
    )


def test_a_basket_of_only_excluded_goods_gets_nothing_and_says_why() -> None:
    rules = guarded(
        discount_rule("card-10", percent=10),
        points_rule("bonus-1", earn_percent=1),
        threshold_rule("t-coupon", min_subtotal=20_000),
    )
    quote = evaluate(
        basket(TOBACCO, points_to_redeem=50),
        customer(points_balance=100),
        rules,
        MONDAY_MORNING,
        coupons=[coupon()],
    )
    assert quote.discount_total == 0 and quote.total == 25_000
    assert quote.points.earn == 0 and quote.points.burn == 0
    assert quote.points.burn_limited_by == "no_rewards"
    assert quote.coupons.to_issue == ()  # tobacco spend earns no threshold coupon
    assert [c.reason for c in quote.coupons.rejected] == ["no_rewards_goods"]
    assert quote.coupons.rejected[0].message == (
        "на эти товары купоны не действуют (Табачная продукция)"
    )
    [notice] = quote.notices
    assert notice.code == "no_rewards_basket"
    assert notice.message == (
        "Табачная продукция: скидки, купоны и баллы не применяются — в этом чеке вознаграждения нет"
    )
    assert quote.to_dict()["notices"][0]["code"] == "no_rewards_basket"


def test_a_sku_can_be_excluded_by_itself() -> None:
    rules = guarded(discount_rule("card-10", percent=10), no_rewards={"skus": ["bread-1"]})
    quote = evaluate(basket(CHEESE, BREAD), customer(), rules, MONDAY_MORNING)
    assert by_sku(quote)["bread-1"].discount == 0
    assert by_sku(quote)["cheese-1"].discount == 4_000


VODKA = line("vodka-05", 40_000, category="vodka", name="Водка 0,5 л")
FLOOR = {"categories": ["vodka"], "min_unit_price": 34_900, "label": "МРЦ на водку"}


def test_a_percent_discount_is_cut_at_the_floor_and_the_quote_says_so() -> None:
    rules = guarded(discount_rule("card-20", percent=20), price_floors=[FLOOR])
    quote = evaluate(basket(VODKA, BREAD), customer(), rules, MONDAY_MORNING)
    lines = by_sku(quote)
    assert lines["vodka-05"].total == 34_900  # 20 % would be 320,00 ₽
    assert lines["bread-1"].discount == 1_000  # bread still gets its 20 %
    [notice] = quote.notices
    assert (notice.code, notice.rule_id, notice.sku, notice.amount) == (
        "price_floor",
        "card-20",
        "vodka-05",
        8_000 - 5_100,
    )
    assert notice.message == (
        "«Скидка card-20»: на 29,00\u00a0₽ меньше — «Водка 0,5 л» не дешевле "
        "349,00\u00a0₽ за единицу (МРЦ на водку)"
    )


def test_an_amount_goes_to_lines_with_room_and_points_stop_at_the_floor() -> None:
    rules = guarded(price_floors=[FLOOR])
    quote = evaluate(
        basket(VODKA, BREAD, points_to_redeem=200),
        customer(points_balance=500),
        rules,
        MONDAY_MORNING,
        coupons=[coupon(amount_off=7_000)],
    )
    lines = by_sku(quote)
    assert lines["vodka-05"].total >= 34_900
    # 5 100 of room on vodka and 5 000 on bread: the coupon takes 7 000, points the rest
    assert quote.discount_total == 7_000
    assert quote.points.burn == 31 and quote.points.burn_limited_by == "price_floor"
    assert lines["vodka-05"].total == 34_900 and lines["bread-1"].total == 0
    assert quote.points.burn_limited_message == (
        "списано 31 балл: больше нельзя, цена не может быть ниже минимальной"
    )


def test_a_sku_floor_wins_over_its_category_and_weighed_goods_use_the_kilo_price() -> None:
    rules = guarded(
        discount_rule("card-50", percent=50),
        price_floors=[FLOOR, {"skus": ["vodka-05"], "min_unit_price": 30_000}],
    )
    quote = evaluate(basket(VODKA), customer(), rules, MONDAY_MORNING)
    assert quote.total == 30_000
    floors = guarded(
        discount_rule("card-50", percent=50),
        price_floors=[{"categories": ["cheese"], "min_unit_price": 80_000}],
    )
    weighed = evaluate(
        basket(line("cheese-kg", 100_000, "0.5", category="cheese")), None, floors, MONDAY_MORNING
    )
    assert weighed.total == 40_000


def test_a_coupon_with_no_room_left_is_refused_and_not_redeemed() -> None:
    rules = guarded(price_floors=[{"categories": ["vodka"], "min_unit_price": 40_000}])
    quote = evaluate(basket(VODKA), customer(), rules, MONDAY_MORNING, coupons=[coupon()])
    assert quote.coupons.applied == ()
    assert [(c.reason, c.message) for c in quote.coupons.rejected] == [
        ("price_floor", "товары уже по минимальной цене")
    ]
    assert [n.code for n in quote.notices] == ["price_floor"]


def test_the_rules_version_of_a_program_without_them_is_unchanged() -> None:
    plain = RulesConfig.from_dict({"rules": [discount_rule("card-10")]})
    before = plain.model_dump(
        mode="json",
        by_alias=True,
        exclude={
            "no_rewards": True,
            "price_floors": True,
            "refunds": True,
            "points": {"pending_days"},
        },
    )
    canonical = json.dumps(before, sort_keys=True, ensure_ascii=False).encode("utf-8")
    assert compile_rules(plain).version == hashlib.sha256(canonical).hexdigest()[:16]
    assert guarded(discount_rule("card-10")).version != compile_rules(plain).version
