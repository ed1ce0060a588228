"""What every scene of the demo plays with: the till, the simulated devices, the store's
settings, the output folder and the narrator (who also keeps the list of failed steps)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pos_loyalty.cli.demo.narrator import Narrator
from pos_loyalty.cli.demo.wire import Reply, TillClient
from pos_loyalty.cli.simulation import SimulatedDevices
from pos_loyalty.settings import Settings


@dataclass
class Stage:
    till: TillClient
    sims: SimulatedDevices
    settings: Settings
    out: Path
    say: Narrator

    def basket(self, lane_id: str, lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {"store_id": self.settings.store.id, "lane_id": lane_id, "lines": lines, **extra}

    def evaluate(self, basket: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = self.till.call("POST", "/v1/baskets/evaluate", basket).body
        return body

    def commit(self, body: dict[str, Any], key: str | None = None) -> Reply:
        """`POST /v1/transactions` with an Idempotency-Key (a new one unless a retry's)."""
        return self.till.call(
            "POST", "/v1/transactions", body, {"Idempotency-Key": key or uuid.uuid4().hex}
        )

    def refund(self, transaction_id: str, body: dict[str, Any]) -> Reply:
        return self.till.call(
            "POST",
            f"/v1/transactions/{transaction_id}/refund",
            body,
            {"Idempotency-Key": uuid.uuid4().hex},
        )
