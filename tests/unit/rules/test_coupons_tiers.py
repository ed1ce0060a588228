"""Presented coupons (checked again at `now`), the customer's tier, and the quote's JSON shape."""

import json

from pos_loyalty.rules import PresentedCoupon, evaluate
from tests.factories import (
    MONDAY_MORNING,
    at,
    basket,
    compiled,
    coupon,
    customer,
    discount_rule,
    line,
)

GROCERIES = (line("milk", 40000, 1, category="dairy"), line("bread", 10000, 1, category="bakery"))


def quote_for(*coupons, rules=(), who=None, lines=GROCERIES, now=MONDAY_MORNING):
    return evaluate(basket(*lines), who, compiled(*rules), now, coupons=coupons, explain=True)


def rejected(quote):
    return {c.code: c.reason for c in quote.coupons.rejected}


def test_valid_coupon_is_a_discount_spread_over_lines() -> None:
    quote = quote_for(coupon("AAA"))
    assert quote.discount_total == 7000
    assert [ln.discount for ln in quote.lines] == [5600, 1400]
    assert quote.coupons.applied[0].rule_id == "coupon:AAA"
    assert quote.applied[0].kind == "coupon"
    assert quote.lines[0].applied[0].rule_id == "coupon:AAA"


def test_coupon_problems_become_rejections_with_reasons() -> None:
    quote = quote_for(
        PresentedCoupon("FORGED", None, "forged"),
        PresentedCoupon("NOPE", None, None),
        coupon("OLD", expires_at=at("2026-05-04 09:30")),  # expires exactly now
        coupon("LATER", valid_from=at("2026-05-05 00:00")),
        coupon("MINE", owner_customer_id="someone-else"),
        coupon("BIG", min_subtotal=60000),
        coupon("TEA", categories=["tea"]),
        who=customer(),
    )
    assert rejected(quote) == {
        "FORGED": "forged",
        "NOPE": "unknown",
        "OLD": "expired",
        "LATER": "not_yet_valid",
        "MINE": "not_owned",
        "BIG": "below_min_subtotal",
        "TEA": "no_matching_lines",
    }
    assert quote.discount_total == 0
    messages = {c.code: c.message for c in quote.coupons.rejected}
    assert messages["BIG"] == "сумма меньше 600,00\u00a0₽: не хватает 100,00\u00a0₽"


def test_two_coupons_in_one_group_only_the_best_applies() -> None:
    quote = quote_for(
        coupon("SMALL", amount_off=5000), coupon("PCT", amount_off=None, percent_off=20)
    )
    assert [c.code for c in quote.coupons.applied] == ["PCT"]
    assert quote.discount_total == 10000
    assert rejected(quote) == {"SMALL": "lost_stack_group"}


def test_coupon_restricted_to_skus_and_after_card_discount() -> None:
    quote = quote_for(
        coupon("BREAD", amount_off=None, percent_off=50, skus=["bread"]),
        rules=(discount_rule("card", percent=10),),
    )
    # card 10 % first (rules before coupons), then 50 % of the bread's remaining 90,00 ₽
    assert {ln.sku: ln.discount for ln in quote.lines} == {"milk": 4000, "bread": 1000 + 4500}


def test_exclusive_rule_blocks_coupons_on_its_lines() -> None:
    quote = quote_for(coupon("AAA"), rules=(discount_rule("solo", percent=5, exclusive=True),))
    assert rejected(quote) == {"AAA": "excluded_by"}


def test_the_same_code_twice_is_rejected_once() -> None:
    quote = quote_for(coupon("AAA"), coupon("AAA"))
    assert rejected(quote) == {"AAA": "duplicate"} and quote.discount_total == 7000


def test_tier_and_spend_missing_to_the_next() -> None:
    quote = quote_for(who=customer(lifetime_spend=1_200_000))
    assert quote.tier is not None
    assert (quote.tier.name, quote.tier.next, quote.tier.missing) == ("silver", "gold", 1_800_000)
    top = quote_for(who=customer(lifetime_spend=5_000_000)).tier
    assert top is not None and (top.name, top.next, top.missing) == ("gold", None, None)
    assert quote_for().tier is None


def test_to_dict_is_json_ready_and_matches_the_issue_shape() -> None:
    lines = (*GROCERIES, line("cheese", 79900, "0.356", category="cheese"))
    quote = evaluate(
        basket(*lines, points_to_redeem=10),
        customer(points_balance=50),
        compiled(discount_rule("card", percent=10)),
        MONDAY_MORNING,
        coupons=(PresentedCoupon("X", None, "redeemed"),),
    )
    data = json.loads(json.dumps(quote.to_dict()))
    assert set(data) >= {
        "rules_version",
        "currency",
        "lines",
        "subtotal",
        "discount_total",
        "total",
        "applied",
        "points",
        "coupons",
        "hints",
        "tier",
        "stamps",
    }
    assert set(data["lines"][0]) >= {
        "sku",
        "qty",
        "unit_price",
        "subtotal",
        "discount",
        "total",
        "applied",
    }
    assert data["lines"][2]["qty"] == 0.356 and data["lines"][0]["qty"] == 1
    assert set(data["points"]) >= {
        "earn",
        "burn",
        "balance",
        "balance_after",
        "burn_requested",
        "burn_limited_by",
    }
    assert data["coupons"]["rejected"][0]["reason"] == "redeemed"
    assert data["evaluated_at"] == "2026-05-04T09:30:00+03:00"
    assert data["total"] == data["subtotal"] - data["discount_total"] - data["points"]["burn_value"]
    assert sum(ln["total"] for ln in data["lines"]) == data["total"]
