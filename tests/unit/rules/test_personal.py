"""Personal offers (`kind = "personal"`): each trigger on a crafted history, and the limits."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from pos_loyalty.rules import RulesConfigError, compile_rules, evaluate, rules_config_from_dict
from pos_loyalty.rules.quote import Quote
from tests.factories import (
    MONDAY_MORNING,
    MOSCOW,
    at,
    basket,
    compiled,
    customer,
    line,
    personal_rule,
    purchase_history,
    rules_config,
    threshold_rule,
)

NOW = MONDAY_MORNING  # 2026-05-04 09:30 Moscow


def quote_for(
    *rules: dict[str, Any],
    history: Any = None,
    lines: tuple[Any, ...] = (),
    now: datetime = NOW,
    **customer_fields: Any,
) -> Quote:
    who = customer(history=history, **customer_fields) if history is not False else None
    return evaluate(basket(*(lines or (line(),))), who, compiled(*rules), now, explain=True)


def issued(quote: Quote) -> dict[str, dict[str, Any]]:
    return {c["rule_id"]: c for c in quote.to_dict()["coupons"]["to_issue"]}


def why_not(quote: Quote, rule_id: str) -> tuple[str, str]:
    found = [n for n in quote.not_applied or () if n.rule_id == rule_id]
    assert found, f"{rule_id} has no reason in not_applied"
    return found[0].code, found[0].message


# -- favourite -----------------------------------------------------------------------------------


def test_favourite_category_gets_percent_off_on_it() -> None:
    history = purchase_history(
        ("2026-03-01", "cat-food-1", "pet_food", 50_000),
        ("2026-03-20", "cat-food-1", "pet_food", 50_000),
        ("2026-04-10", "cat-food-2", "pet_food", 40_000),
        ("2026-04-10", "milk", "dairy", 9_000),
        ("2026-04-20", "milk", "dairy", 9_000),
    )
    rule = personal_rule(
        "fav", "favourite", percent_off=15, label="−15% на любимое: {item}", lookback_days=90
    )
    coupon = issued(quote_for(rule, history=history))["fav"]
    assert coupon["percent_off"] == 15
    assert coupon["categories"] == ["pet_food"] and "skus" not in coupon
    assert coupon["label"] == "−15% на любимое: pet_food"
    assert coupon["trigger"] == "favourite"
    assert coupon["reason"] == "вы часто покупаете: pet_food (3 раза за 90 дн.)"
    assert coupon["valid_from"] == NOW.isoformat()
    assert coupon["expires_at"] == at("2026-05-19 00:00").isoformat()  # 14 days, to the day's end


def test_favourite_sku_only_counts_the_lookback() -> None:
    history = purchase_history(
        # bought often, but long ago
        ("2025-10-01", "old-fav", "snacks", 5_000),
        ("2025-10-08", "old-fav", "snacks", 5_000),
        ("2025-10-15", "old-fav", "snacks", 5_000),
        ("2025-10-22", "old-fav", "snacks", 5_000),
        # recent
        ("2026-04-01", "coffee-beans", "coffee", 90_000),
        ("2026-04-15", "coffee-beans", "coffee", 90_000),
        ("2026-04-29", "coffee-beans", "coffee", 90_000),
        names={"coffee-beans": "Кофе в зёрнах 1 кг"},
    )
    rule = personal_rule("fav", "favourite", by="sku", label="−10% на {item}", lookback_days=60)
    coupon = issued(quote_for(rule, history=history))["fav"]
    assert coupon["skus"] == ["coffee-beans"]
    assert coupon["label"] == "−10% на Кофе в зёрнах 1 кг"


def test_favourite_needs_min_purchases() -> None:
    history = purchase_history(("2026-04-01", "milk", "dairy", 9_000))
    quote = quote_for(personal_rule("fav", "favourite", min_purchases=2), history=history)
    assert issued(quote) == {}
    assert why_not(quote, "fav") == (
        "no_favourite",
        "нет товара, купленного хотя бы 2 раза за 90 дн.",
    )


def test_favourite_respects_when_categories() -> None:
    history = purchase_history(
        *[(f"2026-04-0{d}", "beer", "alcohol", 20_000) for d in range(1, 6)],
        ("2026-04-01", "tea", "tea", 5_000),
        ("2026-04-08", "tea", "tea", 5_000),
        ("2026-04-15", "tea", "tea", 5_000),
    )
    rule = personal_rule("fav", "favourite", when={"categories": ["tea", "coffee"]})
    assert issued(quote_for(rule, history=history))["fav"]["categories"] == ["tea"]


# -- replenish -----------------------------------------------------------------------------------


PET_FOOD = [
    ("2026-01-04", "dog-food-10kg", "pet_food", 350_000),
    ("2026-03-05", "dog-food-10kg", "pet_food", 350_000),
]


def test_replenish_every_60_days_gives_a_coupon_from_day_45() -> None:
    history = purchase_history(*PET_FOOD)
    rule = personal_rule("pet", "replenish", amount_off=30_000, valid_days=30)
    quote = quote_for(
        rule,
        history=history,
        lines=(line("dog-food-10kg", 350_000, category="pet_food"),),
    )
    coupon = issued(quote)["pet"]
    # bought today (60 days after the last one): next expected on day 60 → valid from day 45
    assert coupon["valid_from"] == at("2026-06-18 00:00").isoformat()
    assert coupon["expires_at"] == at("2026-07-18 00:00").isoformat()
    assert coupon["skus"] == ["dog-food-10kg"] and coupon["amount_off"] == 30_000
    assert coupon["reason"] == "вы покупаете Товар dog-food-10kg примерно раз в 60 дн."


def test_replenish_lead_time_is_configurable_and_anchors_on_the_last_purchase() -> None:
    history = purchase_history(
        ("2026-01-19", "litter", "pet_care", 60_000),
        ("2026-02-18", "litter", "pet_care", 60_000),
        ("2026-03-20", "litter", "pet_care", 60_000),
        ("2026-04-19", "litter", "pet_care", 60_000),
    )
    rule = personal_rule("litter", "replenish", lead_days=5)
    # not in today's basket: next expected 30 days after 19.04 → 19.05, valid from 14.05
    coupon = issued(quote_for(rule, history=history))["litter"]
    assert coupon["valid_from"] == at("2026-05-14 00:00").isoformat()


def test_replenish_overdue_gives_a_coupon_valid_now() -> None:
    history = purchase_history(
        ("2026-02-01", "litter", "pet_care", 60_000),
        ("2026-03-01", "litter", "pet_care", 60_000),
        ("2026-03-29", "litter", "pet_care", 60_000),
    )
    coupon = issued(quote_for(personal_rule("litter", "replenish"), history=history))["litter"]
    assert coupon["valid_from"] == NOW.isoformat()


def test_replenish_skips_irregular_and_too_frequent_purchases() -> None:
    history = purchase_history(
        # irregular: gaps 5, 60, 9
        ("2026-01-01", "wine", "alcohol", 90_000),
        ("2026-01-06", "wine", "alcohol", 90_000),
        ("2026-03-07", "wine", "alcohol", 90_000),
        ("2026-03-16", "wine", "alcohol", 90_000),
        # daily bread: regular but below min_interval_days
        ("2026-05-01", "bread", "bakery", 5_000),
        ("2026-05-02", "bread", "bakery", 5_000),
        ("2026-05-03", "bread", "bakery", 5_000),
    )
    quote = quote_for(personal_rule("rep", "replenish"), history=history)
    assert issued(quote) == {}
    assert why_not(quote, "rep")[0] == "no_regular_purchase"


# -- cross-sell ----------------------------------------------------------------------------------


CAMERA = line("cam-1", 4_500_000, category="camera", name="Фотоаппарат")


def test_cross_sell_camera_then_lens() -> None:
    rule = personal_rule(
        "lens",
        "cross_sell",
        percent_off=20,
        if_bought=["camera"],
        offer=["lens"],
        label="−20% на объектив",
    )
    quote = quote_for(rule, history=purchase_history(), lines=(CAMERA,))
    coupon = issued(quote)["lens"]
    assert coupon["categories"] == ["lens"] and coupon["percent_off"] == 20
    assert coupon["reason"] == "к вашей покупке: camera"


def test_cross_sell_from_history_and_by_sku() -> None:
    history = purchase_history(("2026-04-30", "cam-1", "camera", 4_500_000))
    rule = personal_rule(
        "bag", "cross_sell", if_bought=["cam-1"], offer=["bag-7"], offer_by="sku", lookback_days=7
    )
    assert issued(quote_for(rule, history=history))["bag"]["skus"] == ["bag-7"]


def test_cross_sell_not_when_nothing_bought_or_offer_already_bought() -> None:
    rule = personal_rule("lens", "cross_sell", if_bought=["camera"], offer=["lens"])
    quote = quote_for(rule, history=purchase_history())
    assert why_not(quote, "lens") == ("not_bought", "не куплено ничего из: camera")
    had_lens = purchase_history(("2026-04-20", "lens-50", "lens", 2_000_000))
    quote = quote_for(rule, history=had_lens, lines=(CAMERA,))
    assert issued(quote) == {}
    assert why_not(quote, "lens") == ("offer_already_bought", "уже куплено: lens")


# -- winback -------------------------------------------------------------------------------------


def test_winback_after_inactive_days() -> None:
    history = purchase_history(("2026-01-02", "milk", "dairy", 9_000))
    rule = personal_rule(
        "back", "winback", amount_off=20_000, inactive_days=90, min_subtotal=100_000
    )
    coupon = issued(quote_for(rule, history=history))["back"]
    assert coupon["amount_off"] == 20_000 and coupon["min_subtotal"] == 100_000
    assert "categories" not in coupon and "skus" not in coupon  # the whole next basket
    assert coupon["reason"] == "с возвращением! Последняя покупка 122 дн. назад"


def test_winback_not_for_regulars_nor_first_visits() -> None:
    rule = personal_rule("back", "winback", inactive_days=90)
    recent = purchase_history(("2026-04-04", "milk", "dairy", 9_000))
    assert why_not(quote_for(rule, history=recent), "back") == (
        "not_inactive",
        "последняя покупка 30 дн. назад, нужно от 90 дн.",
    )
    assert why_not(quote_for(rule, history=purchase_history()), "back")[0] == (
        "no_previous_purchase"
    )


# -- birthday ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birthday", "today", "fires"),
    [
        (date(1990, 5, 6), "2026-05-04 09:30", True),  # two days before
        (date(1990, 5, 1), "2026-05-04 09:30", True),  # three days after
        (date(1990, 5, 10), "2026-05-04 09:30", False),
        (date(1990, 4, 30), "2026-05-04 09:30", False),
        (date(1988, 2, 29), "2027-02-27 12:00", True),  # celebrated on 28.02 in common years
        (date(1990, 1, 1), "2026-12-30 12:00", True),  # the window crosses the new year
    ],
)
def test_birthday_window(birthday: date, today: str, fires: bool) -> None:
    rule = personal_rule("bday", "birthday", amount_off=50_000, days_before=3, days_after=3)
    quote = quote_for(rule, history=purchase_history(), now=at(today), birthday=birthday)
    assert ("bday" in issued(quote)) is fires
    if not fires:
        assert why_not(quote, "bday")[0] == "not_birthday_window"


def test_birthday_once_per_window_and_needs_a_birthday() -> None:
    rule = personal_rule("bday", "birthday", amount_off=50_000)
    given = purchase_history(last_issued={"bday": at("2026-05-03 18:00")})
    quote = quote_for(rule, history=given, birthday=date(1990, 5, 5))
    assert why_not(quote, "bday")[0] == "birthday_already_issued"
    last_year = purchase_history(last_issued={"bday": at("2025-05-03 18:00")})
    assert "bday" in issued(quote_for(rule, history=last_year, birthday=date(1990, 5, 5)))
    quote = quote_for(rule, history=purchase_history())
    assert why_not(quote, "bday") == ("no_birthday", "день рождения не указан")


# -- limits --------------------------------------------------------------------------------------


def test_max_per_receipt_keeps_the_most_valuable() -> None:
    history = purchase_history(("2026-01-02", "milk", "dairy", 9_000))
    rules = [
        personal_rule("a-small", "winback", amount_off=10_000),
        personal_rule("b-big", "winback", amount_off=50_000),
        personal_rule("c-mid", "winback", amount_off=30_000),
    ]
    quote = quote_for(*rules, history=history)
    coupons = quote.to_dict()["coupons"]["to_issue"]
    assert [c["rule_id"] for c in coupons] == ["b-big", "c-mid"]
    assert why_not(quote, "a-small") == (
        "max_per_receipt",
        "на чеке не больше 2 персональных купонов; выгоднее: b-big, c-mid",
    )


def test_percent_coupons_are_valued_on_what_the_customer_spends() -> None:
    # 10 % of a 3 000 ₽ favourite (300 ₽) beats 100 ₽ off; max_per_receipt = 1 keeps one
    history = purchase_history(
        *[(f"2026-04-0{d}", "steak", "meat", 300_000) for d in (1, 3, 5)],
    )
    rules = [
        personal_rule("fav", "favourite", percent_off=10, max_per_receipt=1),
        personal_rule("back", "winback", amount_off=10_000, inactive_days=20),
    ]
    assert list(issued(quote_for(*rules, history=history))) == ["fav"]


def test_one_active_coupon_per_rule_and_cooldown() -> None:
    rule = personal_rule("back", "winback", cooldown_days=30)
    holds = purchase_history(("2026-01-02", "milk", "dairy", 9_000), active_coupons=("back",))
    quote = quote_for(rule, history=holds)
    assert issued(quote) == {}
    assert why_not(quote, "back")[0] == "coupon_active"
    recently = purchase_history(
        ("2026-01-02", "milk", "dairy", 9_000), last_issued={"back": at("2026-04-20 10:00")}
    )
    assert why_not(quote_for(rule, history=recently), "back") == (
        "cooldown",
        "следующий купон этой акции — не раньше 20.05.2026",
    )


def test_stack_group_keeps_the_best_personal_offer() -> None:
    history = purchase_history(("2026-01-02", "milk", "dairy", 9_000))
    rules = [
        personal_rule("w1", "winback", amount_off=10_000, stack_group="welcome"),
        personal_rule("w2", "winback", amount_off=20_000, stack_group="welcome"),
    ]
    quote = quote_for(*rules, history=history)
    assert list(issued(quote)) == ["w2"]
    assert why_not(quote, "w1")[0] == "lost_stack_group"


def test_needs_a_customer_and_a_history_and_honours_segments() -> None:
    rule = personal_rule("back", "winback", when={"segments": ["lapsed"]})
    assert why_not(quote_for(rule, history=False), "back")[0] == "no_customer"
    assert why_not(quote_for(rule, history=None, segments=["lapsed"]), "back")[0] == "no_history"
    history = purchase_history(("2026-01-02", "milk", "dairy", 9_000))
    assert why_not(quote_for(rule, history=history), "back")[0] == "segment_not_met"
    assert "back" in issued(quote_for(rule, history=history, segments=["lapsed"]))


def test_personal_coupons_follow_threshold_coupons_and_change_no_price() -> None:
    history = purchase_history(("2026-01-02", "milk", "dairy", 9_000))
    rules = [threshold_rule(), personal_rule("back", "winback", amount_off=20_000)]
    quote = quote_for(*rules, history=history, lines=(line(unit_price=80_000),))
    assert [c.rule_id for c in quote.coupons.to_issue] == ["spend-700-get-70", "back"]
    assert quote.discount_total == 0 and quote.total == 80_000
    assert "trigger" not in quote.to_dict()["coupons"]["to_issue"][0]  # threshold format kept


# -- the rule format -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"trigger": "winback", "lookback_days": 30}, "does not use 'lookback_days'"),
        ({"trigger": "cross_sell", "if_bought": ["camera"]}, "needs both 'if_bought' and 'offer'"),
        ({"trigger": "favourite", "amount_off": 100, "percent_off": None}, "percent_off"),
        ({"trigger": "birthday", "percent_off": 10, "amount_off": 100}, "exactly one of"),
        ({"trigger": "replenish", "lead_days": 5, "lead_percent": 20}, "at most one of"),
        ({"trigger": "horoscope"}, "trigger"),
        ({"trigger": "favourite", "percent_off": 150}, "100"),
    ],
)
def test_bad_personal_rules_are_refused_with_the_rule_id(
    fields: dict[str, Any], problem: str
) -> None:
    rule = {"id": "p-1", "kind": "personal", "label": "Персонально", "percent_off": 10, **fields}
    rule = {k: v for k, v in rule.items() if v is not None}
    with pytest.raises(RulesConfigError) as caught:
        rules_config_from_dict({"rules": [rule]})
    text = "\n".join(caught.value.problems)
    assert 'rules[0] (id "p-1")' in text and problem in text


def test_times_are_counted_in_russian_plural_forms() -> None:
    from pos_loyalty.rules.messages import times_word

    spoken = [times_word(n, "ru_RU") for n in (1, 3, 5, 11, 21, 22)]
    assert spoken == ["1 раз", "3 раза", "5 раз", "11 раз", "21 раз", "22 раза"]
    assert [times_word(n, "en_US") for n in (1, 4)] == ["once", "4 times"]


def test_a_personal_coupon_may_stack_with_every_discount() -> None:
    """`coupon_stack_group` is the issued coupon's group when presented ("" = none); the rule's
    own `stack_group` still decides among personal offers."""
    plain = personal_rule("bday", "birthday", amount_off=50_000)
    stacking = personal_rule("bday", "birthday", amount_off=50_000, coupon_stack_group="")
    card = personal_rule("bday", "birthday", amount_off=50_000, coupon_stack_group="card")
    birthday = {"history": purchase_history(), "birthday": date(1990, 5, 5)}
    assert "stack_group" not in issued(quote_for(plain, **birthday))["bday"]  # "coupon"
    assert issued(quote_for(stacking, **birthday))["bday"]["stack_group"] is None
    assert issued(quote_for(card, **birthday))["bday"]["stack_group"] == "card"


def test_cross_sell_names_the_category_as_the_store_does() -> None:
    rule = personal_rule(
        "coffee-dessert",
        "cross_sell",
        percent_off=25,
        if_bought=["coffee"],
        offer=["desserts"],
        label="К кофе ({item}) — десерт −25%",
    )
    rules = compile_rules(
        rules_config(rule), tz=MOSCOW, category_names={"coffee": "Кофе", "desserts": "Десерты"}
    )
    coffee = line("cap-1", 19_000, category="coffee", name="Капучино")
    quote = evaluate(basket(coffee), customer(history=purchase_history()), rules, NOW)
    coupon = issued(quote)["coffee-dessert"]
    assert coupon["reason"] == "к вашей покупке: Кофе"
    assert coupon["label"] == "К кофе (Десерты) — десерт −25%"
    assert coupon["categories"] == ["desserts"]  # the code stays the machine's key
