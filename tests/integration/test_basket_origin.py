"""A basket names this store and a declared lane, or it is refused before anything is written."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from pos_loyalty.sales.models import IdempotencyRecord, SaleTransaction, StoredQuote
from pos_loyalty.settings import settings_from_dict
from pos_loyalty.store import Store
from tests.conftest import base_config
from tests.factories import SALE_RULES, basket_json, commit_json, line_json


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return SALE_RULES


def rows(store: Store, model: Any) -> int:
    with store.uow() as uow:
        return int(uow.session.exec(select(func.count()).select_from(model)).one())


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"lane_id": "lane-7"}, "lane_unknown", "lane_id"),
        ({"store_id": "spb-002"}, "store_mismatch", "store_id"),
    ],
)
def test_evaluate_and_commit_refuse_with_nothing_written(
    client: TestClient, store: Store, change: dict[str, str], code: str, field: str
) -> None:
    body = {**basket_json(line_json(unit_price=80_000)), **change}
    evaluated = client.post("/v1/baskets/evaluate", json=body)
    committed = commit_json(client, body, key="k-1")
    for reply in (evaluated, committed):
        assert reply.status_code == 422, reply.text
        error = reply.json()["error"]
        assert error["code"] == code and error["details"]["field"] == field
    assert rows(store, StoredQuote) == rows(store, SaleTransaction) == 0
    assert rows(store, IdempotencyRecord) == 0
    # the same key with a declared lane is a new sale, not a replay of the refusal
    assert commit_json(client, basket_json(line_json()), key="k-1").status_code == 201


def test_a_till_without_devices_is_a_lane_with_its_id_alone() -> None:
    data = {**base_config(), "lanes": [{"id": "lane-3"}]}
    settings = settings_from_dict(data, source="<test>", environ={})
    [lane] = settings.lanes
    assert (lane.id, lane.camera, lane.scanner, lane.printer) == ("lane-3", None, None, None)
