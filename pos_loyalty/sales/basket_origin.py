"""Where a basket says it comes from: this store, and a lane declared in its configuration.

A till that sends another store's id or a lane nobody declared would otherwise price, sell and
print in the wrong place; both are refused before anything is read or written. A till without
devices is a lane declared with its id alone (`[[lanes]] id = "lane-3"`).
"""

from __future__ import annotations

from pos_loyalty.errors import InvalidInput
from pos_loyalty.settings import Settings


def check_basket_origin(*, settings: Settings, store_id: str, lane_id: str) -> None:
    """Refuse (422) a basket from another store or from a lane this store does not declare."""
    if store_id != settings.store.id:
        raise InvalidInput(
            f"store_id: this is store {settings.store.id!r}, not {store_id!r}",
            code="store_mismatch",
            details={"field": "store_id", "expected": settings.store.id},
        )
    if not any(lane.id == lane_id for lane in settings.lanes):
        raise InvalidInput(
            f"lane_id: no lane {lane_id!r} in this store's configuration",
            code="lane_unknown",
            details={"field": "lane_id"},
        )
