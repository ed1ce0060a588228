"""The basket as a till sends it (JSON), validated strictly before it reaches the engine.

Refuses what the issue lists as bad input — qty ≤ 0 or with more than 3 places, negative prices,
more than 1000 lines, amounts beyond 10^12 minor units, missing fields, strings where numbers go —
with pydantic errors that name the field. The HTTP adapter and `rules explain` both use it.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from pos_loyalty.money import Qty, line_amount, parse_qty
from pos_loyalty.plain_text import PlainText
from pos_loyalty.rules.config import MAX_AMOUNT
from pos_loyalty.rules.inputs import (
    Basket,
    BasketLine,
    CouponSnapshot,
    CustomerSnapshot,
    PresentedCoupon,
)
from pos_loyalty.rules.promo import TypedCode, normalise_code
from pos_loyalty.strict import StrictModel

MAX_LINES = 1000


def _invalid(code: str, message: str) -> PydanticCustomError:
    """An error whose message reaches the till as written (no "Value error, " in front)."""
    return PydanticCustomError(code, message.replace("{", "{{").replace("}", "}}"))


def _qty(value: Any) -> Qty:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise _invalid("qty_type", f"must be a number, got {value!r}")
    if isinstance(value, float):
        value = Decimal(repr(value))  # JSON 1.235 arrives as a float; its repr is exact
    try:
        return parse_qty(value)
    except ValueError as exc:
        raise _invalid("qty_value", str(exc)) from None


QtyField = Annotated[
    Qty,
    PlainValidator(_qty),
    WithJsonSchema({"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.001}),
]
MoneyField = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT)]
Text = Annotated[str, Field(min_length=1, max_length=200)]


class BasketLineIn(StrictModel):
    # Names are printed and every field is stored: no control characters (422 naming the field).
    sku: Annotated[PlainText, Field(min_length=1, max_length=64)]
    name: Annotated[PlainText, Field(max_length=200)]
    category: Annotated[PlainText, Field(max_length=100)]
    qty: QtyField
    unit_price: MoneyField

    @model_validator(mode="after")
    def _amount_in_range(self) -> BasketLineIn:
        if line_amount(self.unit_price, self.qty) > MAX_AMOUNT:
            raise _invalid(
                "amount_too_large", f"unit_price × qty is beyond {MAX_AMOUNT} minor units"
            )
        return self


class BasketIn(StrictModel):
    """`POST /v1/baskets/evaluate` body; `customer` (a token) is resolved by the service."""

    store_id: Annotated[PlainText, Field(min_length=1, max_length=64)]
    lane_id: Annotated[PlainText, Field(min_length=1, max_length=64)]
    customer: dict[PlainText, PlainText] | None = None
    lines: Annotated[list[BasketLineIn], Field(max_length=MAX_LINES)]
    coupons: Annotated[
        list[Annotated[PlainText, Field(min_length=1, max_length=64)]], Field(max_length=20)
    ] = []
    points_to_redeem: MoneyField = 0
    # promo codes the cashier typed ("ЛЕТО25"): any case, spaces and hyphens ignored
    promo_codes: Annotated[list[TypedCode], Field(max_length=5)] = []

    @field_validator("lines")
    @classmethod
    def _subtotal_in_range(cls, lines: list[BasketLineIn]) -> list[BasketLineIn]:
        """On `lines`, so the 422 names the field that is too big."""
        if sum(line_amount(ln.unit_price, ln.qty) for ln in lines) > MAX_AMOUNT:
            raise _invalid(
                "amount_too_large", f"the lines add up to more than {MAX_AMOUNT} minor units"
            )
        return lines

    def to_basket(self) -> Basket:
        return Basket(
            store_id=self.store_id,
            lane_id=self.lane_id,
            lines=tuple(
                BasketLine(ln.sku, ln.name, ln.category, ln.qty, ln.unit_price) for ln in self.lines
            ),
            points_to_redeem=self.points_to_redeem,
            promo_codes=frozenset(normalise_code(code) for code in self.promo_codes),
        )


class CustomerIn(StrictModel):
    """A customer snapshot as JSON, for dry runs (`rules explain --customer-json`) and tests."""

    id: Text
    lifetime_spend: MoneyField = 0
    points_balance: MoneyField = 0
    segments: list[Text] = []
    first_purchase: StrictBool = False
    stamps: dict[str, Annotated[StrictInt, Field(ge=0)]] = {}
    birthday: date | None = None

    def to_snapshot(self) -> CustomerSnapshot:
        return CustomerSnapshot(
            id=self.id,
            lifetime_spend=self.lifetime_spend,
            points_balance=self.points_balance,
            segments=frozenset(self.segments),
            first_purchase=self.first_purchase,
            stamps=dict(self.stamps),
            birthday=self.birthday,
        )


class CouponIn(StrictModel):
    """A coupon as storage would return it, for dry runs."""

    code: Text
    label: Text
    amount_off: MoneyField | None = None
    percent_off: Annotated[StrictInt, Field(ge=1, le=100)] | None = None
    min_subtotal: MoneyField = 0
    skus: list[Text] = []
    categories: list[Text] = []
    stack_group: str | None = "coupon"
    valid_from: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None
    owner_customer_id: str | None = None
    problem: str | None = None

    def to_presented(self) -> PresentedCoupon:
        if self.problem:
            return PresentedCoupon(self.code, None, self.problem)
        return PresentedCoupon(
            self.code,
            CouponSnapshot(
                code=self.code,
                label=self.label,
                amount_off=self.amount_off,
                percent_off=self.percent_off,
                min_subtotal=self.min_subtotal,
                skus=frozenset(self.skus),
                categories=frozenset(self.categories),
                stack_group=self.stack_group,
                valid_from=self.valid_from,
                expires_at=self.expires_at,
                owner_customer_id=self.owner_customer_id,
            ),
        )
