"""What a till may send to identify a customer, parsed without storage."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.schemas import CARD_PATTERN, PHONE_PATTERN
from pos_loyalty.errors import InvalidInput
from pos_loyalty.identity.tokens import (
    issue_card_number,
    luhn_valid,
    mask_phone,
    mint_qr,
    normalise_phone,
    parse_card,
    verify_qr,
)
from pos_loyalty.security import StoreSecret

SECRET = StoreSecret(b"k" * 32)
OTHER_SECRET = StoreSecret(b"x" * 32)
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
CUSTOMER = "0123456789abcdef0123456789abcdef"
CARD = "4561261212345467"  # passes Luhn


@pytest.mark.parametrize(
    "spelling", ["8 (916) 123-45-67", "+7 916 1234567", "9161234567", "+7(916)123-45-67"]
)
def test_russian_phone_spellings_are_one_number(spelling: str) -> None:
    assert normalise_phone(spelling, "RU") == "+79161234567"


@pytest.mark.parametrize("bad", ["12", "not a phone", "+7 916", "8 800 000"])
def test_bad_phone_is_refused_with_code(bad: str) -> None:
    with pytest.raises(InvalidInput) as err:
        normalise_phone(bad, "RU")
    assert err.value.code == "phone_invalid"


def test_phone_mask_keeps_only_the_last_four_digits() -> None:
    assert mask_phone("+79161234567") == "+7 *** ***-45-67"


def test_issued_card_numbers_have_prefix_length_and_luhn() -> None:
    numbers = {issue_card_number("2775", 16) for _ in range(50)}
    assert len(numbers) == 50
    assert all(n.startswith("2775") and len(n) == 16 and luhn_valid(n) for n in numbers)


@pytest.mark.parametrize(
    "presented",
    [
        CARD,
        f" {CARD} ",
        "4561 2612 1234 5467",
        f"]E0{CARD}",
        f"%B{CARD}^PETROV/IVAN^29121010000000000000?",
        f";{CARD}=29121010000000000?",
    ],
)
def test_card_forms_reduce_to_the_number(presented: str) -> None:
    assert parse_card(presented) == CARD


@pytest.mark.parametrize(
    ("presented", "code"),
    [
        ("4561261212345468", "card_bad_checksum"),
        ("45612612ABCD5467", "card_malformed"),
        ("1234", "card_malformed"),
        (f"%B{CARD}^PETROV", "card_malformed"),
        (";4561261212345467", "card_malformed"),
        (f";{CARD[:-1]}8=2912?", "card_bad_checksum"),
        ("²" * 16, "card_malformed"),  # str.isdigit() is true for these, int() refuses them
        ("４５６１２６１２１２３４５４６７", "card_malformed"),  # full-width digits of CARD
        (";٤٥٦١٢٦١٢١٢٣٤٥٤٦٧=2912?", "card_malformed"),  # Arabic-Indic digits in a track
    ],
)
def test_bad_cards_are_refused_with_distinct_codes(presented: str, code: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_card(presented)
    assert err.value.code == code


def test_qr_round_trip() -> None:
    payload = mint_qr(SECRET, CUSTOMER, int(NOW.timestamp()))
    assert payload.startswith(f"PLQ1.{CUSTOMER}.")
    token = verify_qr(SECRET, payload, now=NOW, max_age_s=0)
    assert token.customer_id == CUSTOMER


def test_qr_from_another_store_is_forged() -> None:
    payload = mint_qr(OTHER_SECRET, CUSTOMER, int(NOW.timestamp()))
    with pytest.raises(InvalidInput) as err:
        verify_qr(SECRET, payload, now=NOW, max_age_s=0)
    assert err.value.code == "qr_forged"


def test_qr_with_customer_swapped_is_forged() -> None:
    payload = mint_qr(SECRET, CUSTOMER, int(NOW.timestamp()))
    swapped = payload.replace(CUSTOMER, "f" * 32)
    with pytest.raises(InvalidInput) as err:
        verify_qr(SECRET, swapped, now=NOW, max_age_s=0)
    assert err.value.code == "qr_forged"


@pytest.mark.parametrize(
    "bad", ["", "PLQ1", "PLQ2.abc.1.AAAA", "PLQ1.xyz.1.AAAAAAAAAAAAAAAA", "x" * 500]
)
def test_malformed_qr(bad: str) -> None:
    with pytest.raises(InvalidInput) as err:
        verify_qr(SECRET, bad, now=NOW, max_age_s=0)
    assert err.value.code == "qr_malformed"


def test_rotating_qr_expires_after_max_age() -> None:
    issued = NOW - timedelta(seconds=301)
    payload = mint_qr(SECRET, CUSTOMER, int(issued.timestamp()))
    assert verify_qr(SECRET, payload, now=NOW, max_age_s=0).customer_id == CUSTOMER
    assert verify_qr(SECRET, payload, now=NOW, max_age_s=600).customer_id == CUSTOMER
    with pytest.raises(InvalidInput) as err:
        verify_qr(SECRET, payload, now=NOW, max_age_s=300)
    assert err.value.code == "qr_expired"


def test_the_secret_never_shows_in_its_repr() -> None:
    """A secret that reaches a log line or a traceback through repr() stays hidden."""
    assert "kkkk" not in repr(SECRET) and "kkkk" not in str(SECRET)


# The formats the OpenAPI publishes (api/schemas.py) say what the server takes: a client generated
# from the schema neither sends a card the server calls malformed nor refuses one it would take.
CARD_LIKE = st.text(alphabet=st.sampled_from("0123456789 -]EAe%B^;=?/XY\t"), max_size=40)


@given(raw=CARD_LIKE | st.from_regex(CARD_PATTERN, fullmatch=True) | st.sampled_from([CARD]))
@settings(max_examples=200, deadline=None)
def test_the_published_card_pattern_is_the_format_parse_card_takes(raw: str) -> None:
    try:
        parse_card(raw)
        well_formed = True
    except InvalidInput as err:
        well_formed = err.code == "card_bad_checksum"  # the right form, a wrong check digit
    assert well_formed == bool(re.search(CARD_PATTERN, raw)), raw


@pytest.mark.parametrize(
    "spelling", ["8 (916) 123-45-67", "+7 916 1234567", "9161234567", "+7(916)123-45-67"]
)
def test_every_phone_spelling_the_server_takes_fits_the_published_pattern(spelling: str) -> None:
    assert normalise_phone(spelling, "RU") and re.search(PHONE_PATTERN, spelling)
