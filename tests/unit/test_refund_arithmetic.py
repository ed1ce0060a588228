"""Refund slices: partial refunds never take more than the original and end exactly on it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pos_loyalty.money import cumulative_slice


@given(
    st.integers(0, 10**12),
    st.integers(1, 10**6),
    st.lists(st.integers(1, 10**6), min_size=1, max_size=20),
)
def test_slices_add_up_to_the_whole_and_never_exceed_it(
    amount: int, whole: int, steps: list[int]
) -> None:
    done, taken = 0, 0
    for step in steps:
        after = min(whole, done + step)
        piece = cumulative_slice(amount, done, after, whole)
        assert piece >= 0
        taken += piece
        assert taken <= amount
        done = after
    taken += cumulative_slice(amount, done, whole, whole)
    assert taken == amount
