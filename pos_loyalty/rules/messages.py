"""Words the engine shows people: why a rule did not apply, why a coupon was refused, upsell hints.

Russian for Russian locales, English otherwise. Codes are stable (tills and support tools match on
them); texts may be reworded freely. Money arrives already formatted by `money.format_money`.
"""

from __future__ import annotations

from functools import lru_cache

from babel import Locale
from babel.numbers import format_decimal

REASONS: dict[str, tuple[str, str]] = {
    # code: (Russian, English)
    "not_active_date": ("действует с {start} по {end}", "runs from {start} to {end}"),
    "not_active_weekday": (
        "не действует в этот день недели (дни: {days})",
        "not on this weekday (days: {days})",
    ),
    "not_active_hours": ("действует только {hours}", "runs only {hours}"),
    "wrong_store": ("не для этого магазина", "not for this store"),
    "no_customer": ("нужна карта покупателя", "needs an identified customer"),
    "tier_not_met": (
        "только для уровней: {tiers} (у покупателя: {tier})",
        "only for tiers {tiers} (customer: {tier})",
    ),
    "segment_not_met": (
        "только для сегментов: {segments}",
        "only for segments {segments}",
    ),
    "first_purchase_only": ("только на первую покупку", "first purchase only"),
    "not_for_first_purchase": ("не на первую покупку", "not for a first purchase"),
    "below_min_subtotal": (
        "сумма меньше {min_subtotal}: не хватает {missing}",
        "subtotal below {min_subtotal}: {missing} short",
    ),
    "no_matching_lines": ("в корзине нет подходящих товаров", "no matching items in the basket"),
    "lines_taken": (
        "не суммируется: подходящие товары уже со скидкой ({by})",
        "exclusive, and the matching items already have a discount ({by})",
    ),
    "excluded_by": (
        "товары заняты акцией, которая не суммируется: {by}",
        "the items are taken by an exclusive rule: {by}",
    ),
    "lost_stack_group": (
        "в группе «{group}» выгоднее {by}",
        "lost stack group '{group}' to {by}",
    ),
    "nothing_to_discount": (
        "нечего скидывать: товары уже по нулевой цене",
        "nothing left to discount",
    ),
    "threshold_not_reached": (
        "до {min_subtotal} не хватает {missing}",
        "{missing} short of {min_subtotal}",
    ),
    "no_points_earned": ("оплачено слишком мало для баллов", "too little paid to earn points"),
    "code_not_presented": ("только по промокоду", "only with its promo code"),
    "budget_reached": ("лимит акции исчерпан: {limit}", "the rule's budget is spent: {limit}"),
    "bundle_not_complete": (
        "акция от {buy} шт.: в корзине {units} шт.",
        "needs {buy} units of these goods, the basket has {units}",
    ),
    "no_free_unit_yet": (
        "штамп {count}/{every}: бесплатная единица ещё не набрана",
        "stamp {count}/{every}: no free unit yet",
    ),
    # personal offers: why a personal rule gave no coupon
    "no_history": ("история покупок не загружена", "no purchase history loaded"),
    "coupon_active": (
        "у покупателя уже есть действующий купон этой акции",
        "the customer already holds an active coupon of this rule",
    ),
    "cooldown": ("следующий купон этой акции — не раньше {next}", "next coupon not before {next}"),
    "no_favourite": (
        "нет товара, купленного хотя бы {times} за {days} дн.",
        "nothing bought at least {times} in {days} days",
    ),
    "no_regular_purchase": (
        "нет товара, который покупают регулярно (от {min} покупок за {days} дн.)",
        "nothing bought at a regular interval ({min}+ purchases in {days} days)",
    ),
    "not_bought": ("не куплено ничего из: {items}", "none of {items} bought"),
    "offer_already_bought": ("уже куплено: {items}", "already bought: {items}"),
    "no_previous_purchase": ("раньше покупок не было", "no earlier purchase"),
    "not_inactive": (
        "последняя покупка {days} дн. назад, нужно от {inactive} дн.",
        "last purchase {days} days ago; needs {inactive}",
    ),
    "no_birthday": ("день рождения не указан", "no birthday on file"),
    "not_birthday_window": (
        "не в дни рождения (за {before} дн. до и {after} дн. после)",
        "outside the birthday window ({before} days before, {after} after)",
    ),
    "birthday_already_issued": (
        "купон ко дню рождения в этом году уже выдан",
        "this birthday's coupon was already issued",
    ),
    "max_per_receipt": (
        "на чеке не больше {max} персональных купонов; выгоднее: {by}",
        "at most {max} personal coupons per receipt; better: {by}",
    ),
    # personal offers: why a personal coupon was chosen (printed next to it)
    "personal_favourite": (
        "вы часто покупаете: {item} ({times} за {days} дн.)",
        "you often buy {item} ({times} in {days} days)",
    ),
    "personal_replenish": (
        "вы покупаете {item} примерно раз в {interval} дн.",
        "you buy {item} about every {interval} days",
    ),
    "personal_cross_sell": ("к вашей покупке: {items}", "goes with your purchase: {items}"),
    "personal_winback": (
        "с возвращением! Последняя покупка {days} дн. назад",
        "welcome back! Last purchase {days} days ago",
    ),
    "personal_birthday": ("с днём рождения!", "happy birthday!"),
    # coupons
    "unknown": ("купон не найден", "unknown coupon"),
    "forged": ("купон поддельный", "forged coupon"),
    "redeemed": ("купон уже использован", "coupon already used"),
    "expired": ("срок действия купона истёк", "coupon expired"),
    "cancelled": ("купон аннулирован", "coupon cancelled"),
    "not_owned": ("купон выдан другому покупателю", "coupon belongs to another customer"),
    "burn_balance": (
        "списано {accepted}: на счёте больше нет",
        "{accepted} redeemed: that is the whole balance",
    ),
    "burn_redeem_max_percent": (
        "списано {accepted}: баллами можно оплатить не больше {percent}\u00a0% суммы",
        "{accepted} redeemed: points may pay at most {percent}% of the amount",
    ),
    "burn_no_rewards": (
        "баллы не списаны: в чеке только товары, на которые баллы не тратятся",
        "no points redeemed: the basket holds only goods points may not pay for",
    ),
    "burn_price_floor": (
        "списано {accepted}: больше нельзя, цена не может быть ниже минимальной",
        "{accepted} redeemed: more would take goods below their minimum price",
    ),
    "no_rewards_goods": (
        "на эти товары купоны не действуют ({goods})",
        "coupons do not apply to these goods ({goods})",
    ),
    "price_floor": (
        "товары уже по минимальной цене",
        "the goods are at their minimum price already",
    ),
    "not_yet_valid": ("купон действует с {start}", "coupon valid from {start}"),
    "duplicate": ("купон уже предъявлен в этой корзине", "coupon presented twice"),
}


@lru_cache(maxsize=32)
def _parsed(locale: str) -> Locale:
    return Locale.parse(locale)


@lru_cache(maxsize=32)
def is_russian(locale: str) -> bool:
    try:
        return Locale.parse(locale).language == "ru"
    except (ValueError, TypeError):
        return False


def reason_text(code: str, locale: str, **params: object) -> str:
    """The human sentence for a reason code; unknown codes fall back to the code itself."""
    templates = REASONS.get(code)
    if templates is None:
        return code.replace("_", " ")
    template = templates[0] if is_russian(locale) else templates[1]
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        return template


def points_word(points: int, locale: str) -> str:
    """'1 балл', '3 балла', '1 334 балла' by CLDR plural rules, the number grouped as the
    locale groups money; English '1,334 points'."""
    number = format_decimal(points, locale=_parsed(locale))
    if not is_russian(locale):
        return f"{number} point" + ("" if points == 1 else "s")
    form = _parsed(locale).plural_form(points)
    word = {"one": "балл", "few": "балла"}.get(form, "баллов")
    return f"{number} {word}"


def times_word(count: int, locale: str) -> str:
    """'1 раз', '3 раза', '5 раз' by CLDR plural rules; English 'once', 'N times'."""
    if not is_russian(locale):
        return "once" if count == 1 else f"{count} times"
    form = _parsed(locale).plural_form(count)
    return f"{count} раза" if form == "few" else f"{count} раз"


def upsell_message(
    locale: str,
    missing: str,
    *,
    coupon_amount: str | None = None,
    coupon_percent: int | None = None,
    amount_off: str | None = None,
    points: int | None = None,
) -> str:
    """'Добавьте 85,00 ₽ — получите купон на 70,00 ₽' (money pre-formatted)."""
    ru = is_russian(locale)
    if coupon_amount is not None:
        prize = f"купон на {coupon_amount}" if ru else f"a {coupon_amount} coupon"
    elif coupon_percent is not None:
        prize = (
            f"купон на скидку {coupon_percent}\u00a0%" if ru else f"a {coupon_percent}% off coupon"
        )
    elif amount_off is not None:
        prize = f"скидку {amount_off}" if ru else f"{amount_off} off"
    else:
        prize = points_word(points or 0, locale)
    return f"Добавьте {missing} — получите {prize}" if ru else f"Add {missing} to get {prize}"
