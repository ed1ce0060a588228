"""Promo codes typed at the till ("ЛЕТО25"): how a rule with `trigger = "code"` names its codes
and limits, and the one spelling codes are compared in (any case, Cyrillic or Latin as typed,
spaces and hyphens ignored)."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pos_loyalty.plain_text import PlainText

CodeText = Annotated[str, Field(min_length=1, max_length=32)]
# A code as typed at the till: text from outside, so control characters get a 422 naming the field.
TypedCode = Annotated[PlainText, Field(min_length=1, max_length=32)]


def normalise_code(text: str) -> str:
    """'  лето-25 ' → 'ЛЕТО25': NFKC, upper case, without spaces and hyphens."""
    folded = unicodedata.normalize("NFKC", text).upper()
    return "".join(ch for ch in folded if not ch.isspace() and ch not in "-‐‑–—")


class PromoCodes(BaseModel):
    """`promo = { codes = ["ЛЕТО25"], max_uses = 0, per_customer = 1 }` on a discount rule with
    `trigger = "code"`. `max_uses` counts each code's uses in all stores (0: no limit; 1 makes
    every listed code single-use); `per_customer` each customer's uses of a code (0: no limit;
    any other value needs an identified customer)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    codes: Annotated[list[CodeText], Field(min_length=1, max_length=10_000)]
    max_uses: Annotated[int, Field(ge=0, le=10**9)] = 0
    per_customer: Annotated[int, Field(ge=0, le=10**6)] = 0

    @field_validator("codes")
    @classmethod
    def _printable_and_distinct(cls, codes: list[str]) -> list[str]:
        seen: set[str] = set()
        for code in codes:
            key = normalise_code(code)
            if not key or any(unicodedata.category(ch)[0] in "CZ" for ch in key):
                raise ValueError(f"code {code!r} must be letters and digits")
            if key in seen:
                raise ValueError(f"code {code!r} is listed twice (case and hyphens are ignored)")
            seen.add(key)
        return codes

    @property
    def normalised(self) -> frozenset[str]:
        return frozenset(normalise_code(code) for code in self.codes)
