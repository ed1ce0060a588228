"""Active windows: dates, weekdays and hours in the store's local time, across midnight too."""

from datetime import UTC, datetime

import pytest

from pos_loyalty.rules import evaluate
from tests.factories import at, basket, compiled, discount_rule, line

MILK = line("milk", 10000, 1)


def applies(active: dict, when: datetime) -> bool:
    quote = evaluate(
        basket(MILK), None, compiled(discount_rule("w", active=active)), when, explain=True
    )
    return quote.discount_total > 0


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2026-05-04 07:59", False),  # Monday, before
        ("2026-05-04 08:00", True),  # start is inside
        ("2026-05-04 10:59", True),
        ("2026-05-04 11:00", False),  # end is outside
        ("2026-05-09 09:00", False),  # Saturday
    ],
)
def test_weekday_morning_window(moment: str, expected: bool) -> None:
    active = {"weekdays": [1, 2, 3, 4, 5], "hours": "08:00-11:00"}
    assert applies(active, at(moment)) is expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2026-05-08 22:00", True),  # Friday night
        ("2026-05-09 01:59", True),  # after midnight: still Friday's window
        ("2026-05-09 02:00", False),
        ("2026-05-09 23:00", False),  # Saturday night is not in weekdays
        ("2026-05-04 01:00", False),  # Monday 01:00 belongs to Sunday night
        ("2026-05-05 01:00", True),  # Tuesday 01:00 belongs to Monday night
        ("2026-05-08 12:00", False),
    ],
)
def test_night_window_crossing_midnight_belongs_to_the_day_it_starts(
    moment: str, expected: bool
) -> None:
    active = {"weekdays": [1, 2, 3, 4, 5], "hours": "22:00-02:00"}
    assert applies(active, at(moment)) is expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2025-12-31 23:59", False),
        ("2026-01-01 00:00", True),
        ("2026-12-31 23:59", True),
        ("2027-01-01 00:00", False),
    ],
)
def test_dates_are_inclusive(moment: str, expected: bool) -> None:
    assert applies({"from": "2026-01-01", "until": "2026-12-31"}, at(moment)) is expected


def test_now_is_converted_to_the_store_time_zone() -> None:
    # 05:30 UTC is 08:30 in Moscow: inside a Moscow morning window.
    utc = datetime(2026, 5, 4, 5, 30, tzinfo=UTC)
    assert applies({"hours": "08:00-11:00"}, utc) is True


def test_reason_names_the_window() -> None:
    quote = evaluate(
        basket(MILK),
        None,
        compiled(discount_rule("morning", active={"hours": "08:00-11:00"})),
        at("2026-05-04 12:00"),
        explain=True,
    )
    assert quote.not_applied is not None
    assert (quote.not_applied[0].code, quote.not_applied[0].message) == (
        "not_active_hours",
        "действует только 08:00-11:00",
    )


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        evaluate(basket(MILK), None, compiled(), datetime(2026, 5, 4, 9, 0))
