"""`GET /v1/segments`: customers per RFM segment from the last `segments rfm` run (head office)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import HqScope, StoreDep
from pos_loyalty.segments.service import segment_summary

router = APIRouter(prefix="/v1", tags=["segments"])


class SegmentCountPublic(BaseModel):
    name: str
    customers: int
    share: float  # of the scored customers, 0..1
    avg_frequency: float
    avg_monetary: int  # minor units


class SegmentsPublic(BaseModel):
    computed_at: datetime | None  # null: RFM was never run
    customers: int  # enrolled
    scored: int  # with at least one purchase
    segments: list[SegmentCountPublic]


@router.get("/segments", response_model=SegmentsPublic)
def segments(store: StoreDep, _: HqScope) -> SegmentsPublic:
    with store.uow() as uow:
        summary = segment_summary(session=uow.session, config=store.settings.segments)
    return SegmentsPublic.model_validate(summary.to_dict())
