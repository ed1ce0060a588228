"""Parsing and checking what a customer presents, without touching storage.

Every rejection is an `InvalidInput` with a distinct code, so a till (and support) can tell a
mistyped phone from a forged QR: `phone_invalid`, `card_malformed`, `card_bad_checksum`,
`qr_malformed`, `qr_forged`, `qr_expired`.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import phonenumbers

from pos_loyalty.errors import InvalidInput
from pos_loyalty.security import StoreSecret

QR_PREFIX = "PLQ1"
QR_MAC_PURPOSE = "loyalty-qr"
PHONE_HASH_PURPOSE = "phone"
# A rotating QR may come from a phone whose clock runs a little fast.
QR_CLOCK_SKEW_S = 120

# ASCII digits only: `\d` and str.isdigit() also take "٤" or "²", which are not card digits.
_TRACK1 = re.compile(r"^%B(?P<pan>[0-9]{8,19})\^[^^]{0,26}\^[^?]*\?.?$")
_TRACK2 = re.compile(r"^;(?P<pan>[0-9]{8,19})=[^?]*\?.?$")
_CARD_DIGITS = re.compile(r"^[0-9]{8,19}$")
_AIM_ID = re.compile(r"^\][A-Za-z][0-9A-Za-z]")
_QR = re.compile(r"^PLQ1\.(?P<ref>[0-9a-f]{32})\.(?P<issued>[0-9]{1,12})\.(?P<mac>[A-Z2-7]{16})$")


# --- phone -------------------------------------------------------------------------------------


def normalise_phone(raw: str, region: str) -> str:
    """E.164 for any human spelling of a number in the store's region ("8 (916) 123-45-67")."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise InvalidInput(
            f"{raw!r} is not a phone number", code="phone_invalid", details={"field": "phone"}
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(
            f"{raw!r} is not a valid phone number for region {region}",
            code="phone_invalid",
            details={"field": "phone"},
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(e164: str) -> str:
    """`+7 *** ***-45-67`: enough for the customer to recognise, useless to anyone else."""
    number = phonenumbers.parse(e164)
    national = str(number.national_number)
    tail = national[-4:]
    return f"+{number.country_code} *** ***-{tail[:2]}-{tail[2:]}"


def phone_lookup_hash(secret: StoreSecret, e164: str) -> str:
    return secret.keyed_hash(PHONE_HASH_PURPOSE, e164)


# --- cards -------------------------------------------------------------------------------------


def luhn_check_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return (
        len(number) >= 2
        and number.isascii()
        and number.isdigit()
        and luhn_check_digit(number[:-1]) == number[-1]
    )


def issue_card_number(prefix: str, length: int) -> str:
    body_len = length - len(prefix) - 1
    body = "".join(secrets.choice("0123456789") for _ in range(body_len))
    return prefix + body + luhn_check_digit(prefix + body)


def parse_card(raw: str) -> str:
    """The card number from a typed number, a barcode scan or a magnetic-stripe track 1 or 2."""
    text = raw.strip()
    match = _TRACK1.match(text) or _TRACK2.match(text)
    if match:
        number = match["pan"]
    elif text.startswith(("%", ";")):
        raise InvalidInput(
            "the magnetic-stripe track is garbled; swipe the card again",
            code="card_malformed",
            details={"field": "card"},
        )
    else:
        text = _AIM_ID.sub("", text)  # a scanner may prefix the symbology, e.g. "]E0"
        number = re.sub(r"[\s-]", "", text)
    if not _CARD_DIGITS.match(number):
        raise InvalidInput(
            "a card number is 8 to 19 digits 0-9", code="card_malformed", details={"field": "card"}
        )
    if not luhn_valid(number):
        raise InvalidInput(
            "the card number's check digit is wrong (mistyped or misread)",
            code="card_bad_checksum",
            details={"field": "card"},
        )
    return number


# --- loyalty QR --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoyaltyQr:
    customer_id: str
    issued_at: int


def mint_qr(secret: StoreSecret, customer_id: str, issued_at: int) -> str:
    """`PLQ1.<customer_ref>.<issued_at>.<mac>`; issued_at is Unix seconds."""
    body = f"{QR_PREFIX}.{customer_id}.{issued_at}"
    return f"{body}.{secret.mac_b32(QR_MAC_PURPOSE, body)}"


def verify_qr(secret: StoreSecret, payload: str, *, now: datetime, max_age_s: int) -> LoyaltyQr:
    """Check shape, MAC (constant time) and age; never guesses a customer from a bad token."""
    match = _QR.match(payload.strip())
    if not match:
        raise InvalidInput(
            "not a loyalty QR code (expected PLQ1.<ref>.<issued_at>.<mac>)",
            code="qr_malformed",
            details={"field": "qr"},
        )
    body = f"{QR_PREFIX}.{match['ref']}.{match['issued']}"
    if not secret.verify_mac_b32(QR_MAC_PURPOSE, body, match["mac"]):
        raise InvalidInput(
            "the loyalty QR code's signature does not match: it was not issued by this store",
            code="qr_forged",
            details={"field": "qr"},
        )
    issued_at = int(match["issued"])
    if max_age_s:
        age = now.timestamp() - issued_at
        if age > max_age_s or age < -QR_CLOCK_SKEW_S:
            raise InvalidInput(
                "the loyalty QR code has expired; ask the customer to refresh it in the app",
                code="qr_expired",
                details={"field": "qr", "max_age_s": max_age_s},
            )
    return LoyaltyQr(customer_id=match["ref"], issued_at=issued_at)
