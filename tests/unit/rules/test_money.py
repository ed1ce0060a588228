"""Money helpers: exact to the kopeck, half-up once, parts that add up."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pos_loyalty.money import (
    allocate,
    format_money,
    line_amount,
    parse_qty,
    percent_of,
    qty_to_json,
)
from pos_loyalty.rules.messages import points_word


@pytest.mark.parametrize(
    ("amount", "percent", "expected"),
    [
        (8995, 10, 900),  # 899.5 → 900
        (8994, 10, 899),
        (17980, 10, 1798),
        (105, Decimal("7.5"), 8),  # 7.875 → 8
        (15, "10", 2),  # 1.5 → 2
        (0, 30, 0),
        (12345, 100, 12345),
    ],
)
def test_percent_of_rounds_half_up_once(amount: int, percent: object, expected: int) -> None:
    assert percent_of(amount, percent) == expected  # type: ignore[arg-type]


def test_percent_of_refuses_floats() -> None:
    with pytest.raises(TypeError):
        percent_of(100, 7.5)  # type: ignore[arg-type]


def test_allocate_gives_leftover_to_largest_remainders() -> None:
    assert allocate(100, [100, 100, 100]) == [34, 33, 33]
    assert allocate(10, [5000, 3000, 2000]) == [5, 3, 2]
    assert allocate(7, [1, 2, 4]) == [1, 2, 4]
    assert allocate(0, [3, 4]) == [0, 0]
    assert allocate(5, [0, 10]) == [0, 5]


def test_allocate_refuses_more_than_the_weights() -> None:
    with pytest.raises(ValueError):
        allocate(11, [5, 5])


@settings(max_examples=200)
@given(st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=40), st.data())
def test_allocate_parts_sum_exactly_and_never_exceed_a_weight(
    weights: list[int], data: st.DataObject
) -> None:
    total = data.draw(st.integers(min_value=0, max_value=sum(weights)))
    parts = allocate(total, weights)
    assert sum(parts) == total
    assert all(0 <= p <= w for p, w in zip(parts, weights, strict=True))


def test_format_money_uses_babel_with_no_break_spaces() -> None:
    assert format_money(123450, "RUB", "ru_RU") == "1\u00a0234,50\u00a0₽"
    assert format_money(8500, "RUB", "ru_RU") == "85,00\u00a0₽"
    assert format_money(123450, "USD", "en_US") == "$1,234.50"
    assert format_money(1234, "JPY", "ja_JP") == "￥1,234"


def test_weighed_line_amount_rounds_half_up() -> None:
    assert line_amount(59990, Decimal("0.350")) == 20997  # 20996.5 → 20997
    assert line_amount(8990, 2) == 17980
    assert line_amount(79900, Decimal("0.356")) == 28444


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(2, 2), ("1.235", Decimal("1.235")), ("2.000", 2), (Decimal("0.5"), Decimal("0.5"))],
)
def test_parse_qty_accepts_whole_and_three_places(raw: object, expected: object) -> None:
    parsed = parse_qty(raw)  # type: ignore[arg-type]
    assert parsed == expected and type(parsed) is type(expected)


@pytest.mark.parametrize("raw", [0, -1, "1.2345", "abc", "NaN"])
def test_parse_qty_refuses_bad_quantities(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_qty(raw)  # type: ignore[arg-type]


def test_qty_to_json_keeps_whole_units_integers() -> None:
    assert qty_to_json(3) == 3
    assert qty_to_json(Decimal("1.235")) == 1.235
    assert qty_to_json(Decimal("2.000")) == 2


@pytest.mark.parametrize(
    ("points", "locale", "expected"),
    [
        (1, "ru_RU", "1 балл"),
        (3, "ru_RU", "3 балла"),
        (435, "ru_RU", "435 баллов"),
        (1334, "ru_RU", "1\xa0334 балла"),  # grouped as money is: "1 334,00 ₽"
        (12345, "ru_RU", "12\xa0345 баллов"),
        (1, "en_US", "1 point"),
        (1334, "en_US", "1,334 points"),
    ],
)
def test_points_are_counted_in_words_and_grouped_like_money(
    points: int, locale: str, expected: str
) -> None:
    assert points_word(points, locale) == expected
