"""What a lane's customer display shows now, read from the lane's own events.

The display keeps no state of its own: the lane hub remembers the last events (the till's quotes,
identifications at the camera or scanner, the end of a sale) and the current customer, so a
display that reloads, or a second display at the same lane, shows the same screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import segno

from pos_loyalty.customers.service import get_customer, loyalty_summary
from pos_loyalty.errors import NotFound
from pos_loyalty.lanes import CUSTOMER_CLEARED, CUSTOMER_IDENTIFIED, QUOTE, LaneHub
from pos_loyalty.rules.engine import tier_status
from pos_loyalty.store import Store


@dataclass(frozen=True, slots=True)
class ShownCustomer:
    """First name and masked phone only: the screen faces the queue."""

    first_name: str
    phone: str
    balance: int
    tier: str | None
    next_tier: str | None
    missing: int | None
    progress_percent: int  # towards next_tier, 0..100


@dataclass(frozen=True, slots=True)
class LaneScreen:
    lane_id: str
    customer: ShownCustomer | None
    quote: dict[str, Any] | None  # `lanes.quote_for_display` of the till's last quote
    enrol_qr_svg: str | None  # the idle screen's enrolment code, when the store has a URL

    @property
    def idle(self) -> bool:
        return self.customer is None and self.quote is None


def _progress(store: Store, lifetime_spend: int, next_tier: str | None) -> int:
    tiers = sorted(store.rules.tiers, key=lambda t: t.min_spend)
    target = next((t.min_spend for t in tiers if t.name == next_tier), None)
    if target is None:
        return 100
    floor = max((t.min_spend for t in tiers if t.min_spend <= lifetime_spend), default=0)
    span = max(target - floor, 1)
    return max(0, min(100, (lifetime_spend - floor) * 100 // span))


def _shown_customer(store: Store, customer_id: str) -> ShownCustomer | None:
    try:
        with store.uow() as uow:
            profile = get_customer(uow=uow, customer_id=customer_id)
            summary = loyalty_summary(uow=uow, rules=store.rules, customer_id=customer_id)
    except NotFound:
        return None
    parts = profile.name.split()
    status = tier_status(store.rules.tiers, summary.lifetime_spend)
    return ShownCustomer(
        first_name=parts[0] if parts else "",
        phone=profile.phone_masked,
        balance=summary.balance,
        tier=status.name,
        next_tier=status.next,
        missing=status.missing,
        progress_percent=_progress(store, summary.lifetime_spend, status.next),
    )


def enrol_qr_svg(url: str) -> str | None:
    """The enrolment link as an inline SVG QR (segno escapes nothing we did not give it)."""
    if not url:
        return None
    return str(segno.make_qr(url, error="m").svg_inline(scale=6, border=2))


def lane_screen(*, hub: LaneHub, store: Store, lane_id: str, now: datetime) -> LaneScreen:
    """The screen for `lane_id`: the customer at the lane and the till's last quote for them,
    or the idle screen once the sale is done or the customer's time at the lane ran out."""
    quote_event = identified = None
    for event in reversed(hub.history(lane_id)):
        if event.type == CUSTOMER_CLEARED:
            break
        if event.type == QUOTE and quote_event is None:
            quote_event = event
        elif event.type == CUSTOMER_IDENTIFIED and identified is None:
            identified = event
    ttl = hub.ttl(lane_id)
    if quote_event is not None and now - quote_event.at > ttl:
        quote_event = None  # a basket left on screen longer than a customer stays at a lane
    if quote_event is not None and identified is not None and identified.id > quote_event.id:
        quote_event = None  # someone new was recognised after that basket was priced
    current = hub.current_customer(lane_id)
    customer_id = None
    if quote_event is not None and quote_event.data.get("customer"):
        customer_id = quote_event.data["customer"].get("id")
    elif current is not None:
        customer_id = current.customer_id
    customer = _shown_customer(store, customer_id) if customer_id else None
    qr = enrol_qr_svg(store.settings.store.enrol_url) if customer is None else None
    return LaneScreen(
        lane_id=lane_id,
        customer=customer,
        quote=quote_event.data if quote_event is not None else None,
        enrol_qr_svg=qr,
    )
