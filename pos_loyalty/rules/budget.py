"""A rule's budget: caps on what it gives, per day, week or the whole campaign.

`budget = { period = "day", max_amount = 500000, max_uses = 0, per_customer = 1,
per_store = true }` on a discount, threshold, stamps or points rule. `max_amount` is money
(minor units) for a money rule and points for a points rule; `max_uses` counts sales the rule
gave something in; `per_customer` each customer's such sales in the period (then a card is
needed); `per_store` keeps each store's own counters instead of one for the chain. Once a cap is
reached the rule stops applying (`explain`: budget_reached) until the next period; the sale that
reaches it is the last, so a cap is passed by at most that sale's own reward.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Period = Literal["day", "week", "campaign"]


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    period: Period = "campaign"
    max_amount: Annotated[int, Field(ge=0, le=10**12)] = 0
    max_uses: Annotated[int, Field(ge=0, le=10**9)] = 0
    per_customer: Annotated[int, Field(ge=0, le=10**6)] = 0
    per_store: bool = False

    @model_validator(mode="after")
    def _some_cap(self) -> Budget:
        if not (self.max_amount or self.max_uses or self.per_customer):
            raise ValueError("give at least one of 'max_amount', 'max_uses', 'per_customer'")
        return self


def period_key(period: Period, day: date) -> str:
    """The store-local period a sale falls in: '2026-12-07', '2026-W50' or 'campaign'."""
    if period == "day":
        return day.isoformat()
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return "campaign"
