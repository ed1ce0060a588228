"""Coupon codes a cashier can type and a QR form a camera can trust.

A code is 10 random Crockford base32 characters and one check character, printed `XXXX-XXXX-XXX`.
The check character is Luhn mod 32 over the same alphabet (not Crockford's mod-37 symbols
`*~$=U`, which a till keypad cannot type); it catches every single mistyped character and every
swap of two neighbours except `0Z`↔`Z0` (Luhn's one blind spot, as `09`↔`90` in base 10).
Reading is forgiving as Crockford intends: any case, hyphens and spaces ignored, `I`/`L` read
as `1` and `O` as `0`. The QR form `PLC1.<code>.<mac>` adds a MAC under the
store's secret, so a QR can only come from this store.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from pos_loyalty.security import StoreSecret

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_READ_AS = str.maketrans({"I": "1", "L": "1", "O": "0"})
BODY_LENGTH = 10
CODE_LENGTH = BODY_LENGTH + 1
QR_PREFIX = "PLC1"
QR_MAC_PURPOSE = "coupon-qr"
QR_MAC_BYTES = 10  # 16 base32 characters
_SEPARATORS = re.compile(r"[\s\-]+")


class CouponCodeError(ValueError):
    """The text is not a coupon code: `reason` is malformed, bad_check or forged."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_character(body: str) -> str:
    """Luhn mod 32: double every second value from the right, sum the base-32 digits."""
    total = 0
    for index, char in enumerate(reversed(body)):
        value = _VALUE[char]
        if index % 2 == 0:
            value *= 2
            value = value // 32 + value % 32
        total += value
    return ALPHABET[(32 - total % 32) % 32]


def new_code() -> str:
    """A fresh random code (50 random bits) with its check character, without hyphens."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return body + check_character(body)


def format_code(code: str) -> str:
    """`ABCD-EFGH-JK2`: how the code is printed and shown."""
    return f"{code[:4]}-{code[4:8]}-{code[8:]}"


def normalise_code(text: str) -> str:
    """The canonical 11-character code from anything a cashier typed; refuses bad ones."""
    cleaned = _SEPARATORS.sub("", text).upper().translate(_READ_AS)
    if len(cleaned) != CODE_LENGTH or any(ch not in _VALUE for ch in cleaned):
        raise CouponCodeError(
            "malformed",
            "a coupon code is 11 characters of 0-9 and A-Z (without I, L, O, U), "
            "like ABCD-EFGH-JK2",
        )
    if check_character(cleaned[:BODY_LENGTH]) != cleaned[BODY_LENGTH]:
        raise CouponCodeError("bad_check", "the coupon code is mistyped (check character)")
    return cleaned


def coupon_qr(secret: StoreSecret, code: str) -> str:
    """The payload printed as a QR on the receipt."""
    return f"{QR_PREFIX}.{code}.{secret.mac_b32(QR_MAC_PURPOSE, code, length=QR_MAC_BYTES)}"


@dataclass(frozen=True, slots=True)
class ParsedCoupon:
    code: str
    from_qr: bool


def parse_presented(secret: StoreSecret, text: str) -> ParsedCoupon:
    """A typed code or a scanned `PLC1.` QR, checked (check character, MAC) and normalised."""
    stripped = text.strip()
    if stripped.upper().startswith(QR_PREFIX + "."):
        parts = stripped.split(".")
        if len(parts) != 3:
            raise CouponCodeError("malformed", "a coupon QR looks like PLC1.<code>.<mac>")
        code = normalise_code(parts[1])
        if not secret.verify_mac_b32(QR_MAC_PURPOSE, code, parts[2], length=QR_MAC_BYTES):
            raise CouponCodeError("forged", "the coupon QR was not issued by this store")
        return ParsedCoupon(code=code, from_qr=True)
    return ParsedCoupon(code=normalise_code(stripped), from_qr=False)
