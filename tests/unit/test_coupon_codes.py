"""Coupon codes: every single typo and neighbour swap is caught; forgiving reading; QR MACs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pos_loyalty.coupons.codes import (
    ALPHABET,
    CouponCodeError,
    check_character,
    coupon_qr,
    format_code,
    new_code,
    normalise_code,
    parse_presented,
)
from pos_loyalty.security import StoreSecret

SECRET = StoreSecret(b"s" * 32)
bodies = st.text(alphabet=ALPHABET, min_size=10, max_size=10)


@given(bodies)
def test_printed_code_reads_back_in_any_case_with_or_without_hyphens(body: str) -> None:
    code = body + check_character(body)
    printed = format_code(code)
    assert len(printed) == 13 and printed[4] == printed[9] == "-"
    for spelling in (printed, printed.lower(), code, f" {printed.replace('-', ' ')} "):
        assert normalise_code(spelling) == code


@given(bodies, st.integers(0, 10), st.sampled_from(ALPHABET))
def test_every_single_wrong_character_is_refused(body: str, index: int, wrong: str) -> None:
    code = body + check_character(body)
    if code[index] == wrong:
        return
    typo = code[:index] + wrong + code[index + 1 :]
    with pytest.raises(CouponCodeError) as refused:
        normalise_code(typo)
    assert refused.value.reason == "bad_check"


@given(bodies, st.integers(0, 9))
def test_every_swap_of_neighbours_is_refused_but_luhns_blind_spot(body: str, index: int) -> None:
    code = body + check_character(body)
    if code[index] == code[index + 1] or {code[index], code[index + 1]} == {"0", "Z"}:
        return
    swapped = code[:index] + code[index + 1] + code[index] + code[index + 2 :]
    with pytest.raises(CouponCodeError):
        normalise_code(swapped)


def test_crockford_look_alikes_are_read_as_digits() -> None:
    code = new_code()
    spoofed = code.replace("1", "l").replace("0", "O")
    assert normalise_code(spoofed) == code


@pytest.mark.parametrize("text", ["", "ABCD-EFGH-J", "ABCD-EFGH-JKUU", "ABCD*EFGH*JK2", "ЖЖЖЖ"])
def test_malformed_text_is_refused_as_malformed(text: str) -> None:
    with pytest.raises(CouponCodeError) as refused:
        normalise_code(text)
    assert refused.value.reason == "malformed"


def test_qr_form_carries_a_mac_of_this_store() -> None:
    code = new_code()
    qr = coupon_qr(SECRET, code)
    assert qr.startswith(f"PLC1.{code}.")
    assert parse_presented(SECRET, qr).code == code
    assert parse_presented(SECRET, qr).from_qr
    with pytest.raises(CouponCodeError) as forged:
        parse_presented(StoreSecret(b"x" * 32), qr)
    assert forged.value.reason == "forged"
    other = new_code()
    with pytest.raises(CouponCodeError):
        parse_presented(SECRET, qr.replace(code, other))
