"""RFM segments: the `[segments]` config section and the per-customer table the rules read.

Scores are quintiles 1..5 (5 = bought most recently / most often / spent most). Named segments
are definitions checked in order, the first that matches wins; the last must match everyone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from sqlalchemy import BigInteger, Index, SmallInteger
from sqlmodel import Field as SqlField
from sqlmodel import SQLModel

from pos_loyalty.storage.types import UTCDateTime
from pos_loyalty.strict import StrictModel

Score = Annotated[int, Field(ge=1, le=5)]
SegmentName = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_-]+$")]


class SegmentDefinition(StrictModel):
    """`[[segments.definitions]]`: all given conditions must hold; none given = everyone."""

    name: SegmentName
    r: tuple[Score, Score] | None = None  # inclusive quintile range, e.g. [4, 5]
    f: tuple[Score, Score] | None = None
    m: tuple[Score, Score] | None = None
    min_days_since_last: Annotated[int, Field(ge=0, le=36500)] | None = None
    max_days_since_first: Annotated[int, Field(ge=0, le=36500)] | None = None

    @field_validator("r", "f", "m")
    @classmethod
    def _ordered(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and value[0] > value[1]:
            raise ValueError(f"range [{value[0]}, {value[1]}] is empty: give [low, high]")
        return value

    @property
    def matches_everyone(self) -> bool:
        return all(
            getattr(self, key) is None
            for key in ("r", "f", "m", "min_days_since_last", "max_days_since_first")
        )


DEFAULT_DEFINITIONS = (
    SegmentDefinition(name="lapsed", min_days_since_last=180),
    SegmentDefinition(name="new", max_days_since_first=30),
    SegmentDefinition(name="champions", r=(4, 5), f=(4, 5), m=(4, 5)),
    SegmentDefinition(name="loyal", r=(3, 5), f=(4, 5)),
    SegmentDefinition(name="at_risk", r=(1, 2), f=(3, 5)),
    SegmentDefinition(name="potential", r=(3, 5)),
    SegmentDefinition(name="hibernating"),
)

SEGMENT_TITLES_RU = {
    "champions": "Чемпионы",
    "loyal": "Лояльные",
    "potential": "Перспективные",
    "new": "Новые",
    "at_risk": "Под угрозой ухода",
    "hibernating": "Спящие",
    "lapsed": "Ушедшие",
}


class SegmentsConfig(StrictModel):
    """`[segments]`: how RFM scores become named segments, and who may be contacted."""

    # Frequency and monetary count the sales of the last `window_days`; recency is the last sale.
    window_days: Annotated[int, Field(ge=1, le=36500)] = 365
    # `segments export` and campaign coupons reach only customers with one of these consents set
    # to true (a campaign coupon also needs a channel: `sms` with a phone in clear, or `email`).
    contact_consents: list[Annotated[str, Field(min_length=1, max_length=32)]] = [
        "marketing",
        "sms",
        "email",
    ]
    definitions: list[SegmentDefinition] = list(DEFAULT_DEFINITIONS)

    @model_validator(mode="after")
    def _usable(self) -> SegmentsConfig:
        names = [d.name for d in self.definitions]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"segment names used twice: {', '.join(duplicates)}")
        if not self.definitions or not self.definitions[-1].matches_everyone:
            raise ValueError(
                "the last definition must have no conditions, so every customer gets a segment"
            )
        return self

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.definitions]


class CustomerSegment(SQLModel, table=True):
    """A customer's RFM scores and segment as of `computed_at` (replaced by each run)."""

    __tablename__ = "customer_segments"
    __table_args__ = (Index("ix_customer_segments_segment", "segment"),)

    customer_id: str = SqlField(primary_key=True, foreign_key="customers.id", max_length=32)
    segment: str = SqlField(max_length=32)
    r_score: int = SqlField(sa_type=SmallInteger)
    f_score: int = SqlField(sa_type=SmallInteger)
    m_score: int = SqlField(sa_type=SmallInteger)
    frequency: int  # sales within the window
    monetary: int = SqlField(sa_type=BigInteger)  # paid in money within the window, minor units
    first_purchase_at: datetime = SqlField(sa_type=UTCDateTime)
    last_purchase_at: datetime = SqlField(sa_type=UTCDateTime)
    computed_at: datetime = SqlField(sa_type=UTCDateTime)
