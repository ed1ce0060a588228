"""Money as integer minor units (kopecks): percentages, exact allocation, display, weighed goods.

Every amount in the project is an `int` of minor units. Percentages go through `Decimal` and are
rounded half-up exactly once; splitting an amount over parts uses the largest-remainder method so
the parts always add up to the whole. Display goes through babel (ru_RU prints `1 234,50 ₽` with
U+00A0 NO-BREAK SPACE as the group separator and before the sign, exactly as babel returns it).
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from babel.numbers import format_currency, get_currency_precision

Qty = int | Decimal
"""A quantity: whole units as `int`, weighed goods as a `Decimal` with at most 3 places (kg, l)."""

MAX_QTY_PLACES = 3
_ONE = Decimal(1)
_HUNDRED = Decimal(100)


def _as_decimal(value: Decimal | int | str) -> Decimal:
    if isinstance(value, bool | float):
        raise TypeError(f"use int, str or Decimal for money arithmetic, not {type(value).__name__}")
    try:
        return value if isinstance(value, Decimal) else Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None


def round_half_up(value: Decimal) -> int:
    """Round a Decimal amount to a whole minor unit, halves away from zero."""
    return int(value.quantize(_ONE, rounding=ROUND_HALF_UP))


def percent_of(amount: int, percent: Decimal | int | str) -> int:
    """`percent` % of `amount`, rounded half-up to a minor unit once (10 % of 8 995 is 900)."""
    if isinstance(percent, int) and not isinstance(percent, bool):
        # Integer fast path: exact, half-up for non-negative amounts.
        numerator = amount * percent
        quotient, remainder = divmod(abs(numerator), 100)
        rounded = quotient + (1 if remainder * 2 >= 100 else 0)
        return rounded if numerator >= 0 else -rounded
    return round_half_up(Decimal(amount) * _as_decimal(percent) / _HUNDRED)


def percent_of_floor(amount: int, percent: Decimal | int | str) -> int:
    """`percent` % of `amount` rounded down: for limits that must never be exceeded."""
    value = Decimal(amount) * _as_decimal(percent) / _HUNDRED
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def share_of(amount: int, part: int, whole: int) -> int:
    """amount × part / whole rounded half-up (non-negative inputs, whole > 0)."""
    return (2 * amount * part + whole) // (2 * whole)


def cumulative_slice(amount: int, before: int, after: int, whole: int) -> int:
    """What taking the cumulative fraction from before/whole to after/whole of `amount` takes:
    each step rounds on the running total, so the slices of successive refunds add up to
    exactly `amount` when `after` reaches `whole`."""
    return share_of(amount, after, whole) - share_of(amount, before, whole)


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split `total` over `weights` in proportion; the parts sum exactly to `total`.

    Largest remainder: each part gets the floor of its share, the units left go to the largest
    remainders (ties: the earlier weight). No part exceeds its weight, so a discount spread over
    lines never takes a line below zero. Requires 0 <= total <= sum(weights), weights >= 0.
    """
    weight_sum = sum(weights)
    if total < 0 or (weights and min(weights) < 0):
        raise ValueError("allocate needs a non-negative total and weights")
    if total > weight_sum:
        raise ValueError(f"cannot allocate {total} over weights summing to {weight_sum}")
    if total == 0:
        return [0] * len(weights)
    if total == weight_sum:
        return list(weights)
    parts: list[int] = []
    remainders: list[tuple[int, int]] = []
    for index, weight in enumerate(weights):
        part, remainder = divmod(total * weight, weight_sum)
        parts.append(part)
        remainders.append((-remainder, index))
    left = total - sum(parts)
    if left:
        remainders.sort()
        for _, index in remainders[:left]:
            parts[index] += 1
    return parts


def allocate_within(total: int, weights: list[int], caps: list[int]) -> list[int]:
    """Split `total` over `weights` like `allocate`, but no part above its cap: what a capped
    part cannot take is spread again over the parts with room (largest remainder each round).
    Requires 0 <= total <= sum(min(weight, cap)), caps >= 0."""
    room = [min(w, c) for w, c in zip(weights, caps, strict=True)]
    if total > sum(room):
        raise ValueError(f"cannot allocate {total} within caps summing to {sum(room)}")
    parts = [0] * len(weights)
    left = total
    open_ = [i for i, r in enumerate(room) if r > 0]
    while left > 0:
        shares = allocate(left, [weights[i] - parts[i] for i in open_])
        for i, share in zip(open_, shares, strict=True):
            parts[i] += min(share, room[i] - parts[i])
        left = total - sum(parts)
        open_ = [i for i in open_ if parts[i] < room[i]]
    return parts


@lru_cache(maxsize=64)
def minor_unit_exponent(currency: str) -> int:
    """Digits after the decimal point for a currency (RUB 2, JPY 0), from CLDR via babel."""
    return int(get_currency_precision(currency))


def to_major(amount_minor: int, currency: str) -> Decimal:
    """1234 kopecks → Decimal('12.34') roubles; exact."""
    return Decimal(amount_minor).scaleb(-minor_unit_exponent(currency))


def format_money(amount_minor: int, currency: str, locale: str) -> str:
    """`format_money(123450, "RUB", "ru_RU") == "1\\xa0234,50\\xa0₽"` (babel's spacing kept)."""
    return str(format_currency(to_major(amount_minor, currency), currency, locale=locale))


def parse_qty(value: int | Decimal | str) -> Qty:
    """A positive quantity; whole numbers become `int`, others a Decimal with at most 3 places."""
    if isinstance(value, bool | float):
        raise TypeError(f"qty must be int, str or Decimal, not {type(value).__name__}")
    if isinstance(value, int):
        qty: Decimal = Decimal(value)
    else:
        qty = _as_decimal(value)
    if not qty.is_finite() or qty <= 0:
        raise ValueError(f"qty must be greater than 0, got {value}")
    exponent = qty.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent < -MAX_QTY_PLACES:
        raise ValueError(f"qty may have at most {MAX_QTY_PLACES} decimal places, got {value}")
    if qty == qty.to_integral_value():
        return int(qty)
    return qty.normalize()


def line_amount(unit_price: int, qty: Qty) -> int:
    """unit_price × qty rounded half-up to a minor unit (0,350 kg at 599,90 ₽ is 209,97 ₽)."""
    if isinstance(qty, int):
        return unit_price * qty
    return round_half_up(Decimal(unit_price) * qty)


def qty_to_json(qty: Qty) -> int | float:
    """Whole quantities as JSON integers, weighed ones as JSON numbers with ≤ 3 places (1.235).

    A float is safe here: a decimal with at most 3 places and < 15 significant digits prints back
    exactly (`json.dumps(1.235) == "1.235"`), and tills send quantities as JSON numbers too.
    """
    if isinstance(qty, int):
        return qty
    if qty == qty.to_integral_value():
        return int(qty)
    return float(qty)


def qty_to_milli(qty: int | float | Decimal) -> int:
    """A quantity in thousandths (1.235 kg → 1235), as sale and refund lines keep it."""
    return int(Decimal(str(qty)) * 1000)


def milli_to_json(milli: int) -> int | float:
    """Thousandths back to a JSON quantity (1235 → 1.235, 2000 → 2)."""
    return milli // 1000 if milli % 1000 == 0 else milli / 1000
