"""Pricing a basket: who the customer is, what they hold, and the engine's quote for the till.

Reads only; the quote the till may commit is kept by `sales.quotes`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pos_loyalty.coupons.service import look_up_presented
from pos_loyalty.customers.lookup import TOKEN_KINDS, CustomerRow, customer_snapshot, identify
from pos_loyalty.errors import InvalidInput
from pos_loyalty.money import qty_to_json
from pos_loyalty.rules.compiled import CompiledRules
from pos_loyalty.rules.engine import evaluate, tier_status
from pos_loyalty.rules.payload import BasketIn
from pos_loyalty.rules.quote import Quote
from pos_loyalty.sales.basket_origin import check_basket_origin
from pos_loyalty.sales.budgets import limits_reached  # issue 16
from pos_loyalty.sales.promo_codes import check_promo_codes  # issue 16
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.store import Store

# How long the till may commit a quote by its id.
QUOTE_TTL = timedelta(minutes=15)

# Given a lane id, the customer currently identified there (camera, scanner) or None; the lane
# piece installs one. Used when the basket names no customer but a lane.
LaneCustomerLookup = Callable[[str], str | None]


def basket_customer(
    *,
    uow: UnitOfWork,
    store: Store,
    token: Mapping[str, str] | None,
    lane_id: str | None = None,
    lane_customer: LaneCustomerLookup | None = None,
) -> CustomerRow | None:
    """The customer a basket names by phone, card, loyalty QR or id (one query); with no token,
    the lane's current customer when a lookup is installed."""
    if token is None:
        if lane_id and lane_customer is not None:
            customer_id = lane_customer(lane_id)
            if customer_id is None:
                return None
            return identify(
                uow=uow,
                settings=store.settings,
                secret=store.secret,
                kind="id",
                value=customer_id,
                now=store.now(),
            )
        return None
    given = [k for k in token if token[k] is not None]
    if len(given) != 1 or given[0] not in TOKEN_KINDS:
        raise InvalidInput(
            "customer: give exactly one of phone, card, qr, id (or null)",
            code="validation_error",
            details=[{"field": "customer", "message": "exactly one of phone, card, qr, id"}],
        )
    return identify(
        uow=uow,
        settings=store.settings,
        secret=store.secret,
        kind=given[0],
        value=token[given[0]],
        now=store.now(),
    )


def customer_json(customer: CustomerRow, rules: CompiledRules) -> dict[str, Any]:
    """The customer as the quote shows them to the till."""
    return {
        "id": customer.id,
        "name": customer.short_name,
        "phone": customer.phone_masked,
        "tier": tier_status(rules.tiers, customer.lifetime_spend).name,
        "balance": customer.points_balance,
        "lifetime_spend": customer.lifetime_spend,
    }


@dataclass(frozen=True, slots=True)
class Priced:
    """A priced basket: the engine's typed quote, and the answer the till gets for it."""

    quote_id: str
    quote: Quote
    customer_id: str | None
    result: dict[str, Any]  # the response body: the quote's JSON with id, expiry and customer

    def stored(self) -> dict[str, Any]:
        """What the `quotes` row keeps: the answer, plus what commit needs and the till never
        sees (`Quote.to_stored`); `from_stored` reads it back typed."""
        return self.quote.to_stored(self.result)

    @classmethod
    def from_stored(cls, *, quote_id: str, customer_id: str | None, stored: Any) -> Priced:
        result = {key: value for key, value in stored.items() if key != "kept"}
        return cls(quote_id, Quote.from_stored(stored), customer_id, result)


def price(
    *,
    uow: UnitOfWork,
    store: Store,
    basket: BasketIn,
    explain: bool,
    now: datetime,
    lane_customer: LaneCustomerLookup | None,
    rules: CompiledRules | None = None,
) -> Priced:
    """Price the basket in `uow` (evaluate's read transaction, or a commit's write one) under
    `rules` (default: the store's program now)."""
    rules = rules or store.rules  # once: a bundle activated meanwhile prices the next basket
    customer = basket_customer(
        uow=uow,
        store=store,
        token=basket.customer,
        lane_id=basket.lane_id,
        lane_customer=lane_customer,
    )
    snap = (
        customer_snapshot(
            uow=uow, customer=customer, rules=rules, now=now, tz=store.settings.store.tz
        )
        if customer
        else None
    )
    presented = look_up_presented(
        uow=uow,
        secret=store.secret,
        texts=basket.coupons,
        customer_id=customer.id if customer else None,
        now=now,
    )
    quote = evaluate(
        basket.to_basket(),
        snap,
        rules,
        now,
        coupons=presented,
        explain=explain,
        locale=store.settings.store.locale,
        currency=store.settings.store.currency,
        limits_reached=limits_reached(  # issue 16: rule budgets (sales/budgets.py)
            uow=uow,
            rules=rules,
            store_id=store.settings.store.id,
            customer_id=customer.id if customer else None,
            now=now,
            tz=store.settings.store.tz,
            currency=store.settings.store.currency,
            locale=store.settings.store.locale,
        ),
    )
    # -- issue 16: promo codes (sales/promo_codes.py): 422 if unknown or used up; the uses
    # travel in the typed quote to commit, which counts them
    if basket.promo_codes:
        quote = replace(
            quote,
            promo_codes=check_promo_codes(
                uow=uow,
                rules=rules,
                typed=basket.promo_codes,
                applied=[a.rule_id for a in quote.applied],
                customer_id=customer.id if customer else None,
            ),
        )
    quote_id = uuid.uuid4().hex
    result = {
        "quote_id": quote_id,
        "expires_at": (now + QUOTE_TTL).isoformat(),
        "customer": customer_json(customer, rules) if customer else None,
        **quote.to_dict(),
    }
    return Priced(quote_id, quote, customer.id if customer else None, result)


def basket_request_json(basket: BasketIn) -> dict[str, Any]:
    """The basket as the till sent it, canonical (kept with the quote for support)."""
    return {
        "store_id": basket.store_id,
        "lane_id": basket.lane_id,
        "customer": basket.customer,
        "lines": [
            {
                "sku": ln.sku,
                "name": ln.name,
                "category": ln.category,
                "qty": qty_to_json(ln.qty),
                "unit_price": ln.unit_price,
            }
            for ln in basket.lines
        ],
        "coupons": list(basket.coupons),
        "points_to_redeem": basket.points_to_redeem,
        **({"promo_codes": list(basket.promo_codes)} if basket.promo_codes else {}),  # issue 16
    }


def price_basket(
    *,
    store: Store,
    basket: BasketIn,
    explain: bool = False,
    lane_customer: LaneCustomerLookup | None = None,
    now: datetime | None = None,
) -> Priced:
    """Price the basket: reads only, nothing is written (see `quote_row` and `save_quotes`)."""
    # another store's basket or an undeclared lane is refused (422)
    check_basket_origin(settings=store.settings, store_id=basket.store_id, lane_id=basket.lane_id)
    with store.uow() as uow:
        return price(
            uow=uow,
            store=store,
            basket=basket,
            explain=explain,
            now=now or store.now(),
            lane_customer=lane_customer,
        )
