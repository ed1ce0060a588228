"""The issue's attack, end to end: a till, the API, the lane's print worker and the virtual printer
over real TCP. The basket named `Milk ESC p 0 … GS V 0 END` is refused; store texts from the config
and a rule label carrying the same sequences, and a sale stored before the API refused them, print
as text: the cash drawer never opens and each receipt is cut exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from api.app import create_app
from drivers.print_queue import PrintWorker, store_receipt_renderer
from firmware_sim.printer import PrinterServer, VirtualPrinter
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.lanes import LaneHub
from pos_loyalty.sales.models import OutboxStatus, ReceiptOutbox, SaleTransaction
from pos_loyalty.store import Store
from tests.conftest import make_settings, new_key
from tests.factories import SALE_RULES, basket_json, discount_rule, line_json, sell_json

DRAWER_AND_CUT = "Milk\x1bp0\x19\x7f\x1dV0END"
CLEANED = "Milkp0 V0END"  # ESC, EM and DEL gone, GS (a separator) shown as a space
RULE_LABEL = "Скидка\x1bp0\x19\x7f\x1dV0дня"
STORE_NAME = "Магазин\x1bp\x00\x19\x7f у дома"
# Generous: the machine may be busy; every wait ends as soon as its condition holds.
TIMEOUT = 60.0

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def stored_before_the_fix(store: Store, sale_id: str) -> str:
    """A copy of a committed sale whose stored line name carries the attack, as a row written
    before the API refused control characters would, queued for the printer."""
    with store.uow(write=True) as uow:
        sale = uow.session.get(SaleTransaction, sale_id)
        assert sale is not None
        result = {**sale.result, "lines": [{**sale.result["lines"][0], "name": DRAWER_AND_CUT}]}
        uow.session.add(
            SaleTransaction(
                id="legacy-0001",
                store_id=sale.store_id,
                lane_id=sale.lane_id,
                rules_version=sale.rules_version,
                currency=sale.currency,
                subtotal=sale.subtotal,
                discount_total=sale.discount_total,
                total=sale.total,
                result=result,
            )
        )
        uow.flush()
        uow.session.add(ReceiptOutbox(transaction_id="legacy-0001", kind="sale", lane_id="lane-1"))
        uow.commit()
    return "legacy-0001"


def all_printed(store: Store) -> bool:
    with store.uow() as uow:
        statuses = list(uow.session.exec(select(ReceiptOutbox.status)))
    return len(statuses) == 2 and all(status == OutboxStatus.PRINTED for status in statuses)


def test_text_from_tills_config_and_storage_prints_as_text(tmp_path: Path, db_url: str) -> None:
    printer = VirtualPrinter("TM-T88V", paper_mm=None)
    with PrinterServer(printer, "127.0.0.1", 0) as server:
        fast = {"retry_initial_s": 0.05, "retry_max_s": 0.2, "timeout_s": 5.0}
        config = {
            **SALE_RULES,
            "rules": [*SALE_RULES["rules"], discount_rule("evil", percent=5, label=RULE_LABEL)],
            "store": {"name": STORE_NAME, "footer": "Спасибо!\n\x1dV\x00До встречи"},
            "lanes": [{"id": "lane-1", "printer": {"connection": server.url, **fast}}],
        }
        settings = make_settings(tmp_path, db_url, config)
        store = Store.open(settings)
        assert settings.lanes[0].printer is not None
        worker = PrintWorker(
            store=store,
            lane_id="lane-1",
            config=settings.lanes[0].printer,
            render=store_receipt_renderer(store),
            hub=LaneHub(store),
            poll_interval_s=0.05,
            probe_interval_s=None,
        ).start()
        try:
            with TestClient(create_app(settings, store=store)) as client:
                client.headers["Authorization"] = f"Bearer {new_key(store, Scope.TILL)}"
                attack = basket_json(line_json(name=DRAWER_AND_CUT), lane_id="lane-1")
                refused = client.post("/v1/baskets/evaluate", json=attack)
                assert refused.status_code == 422
                assert refused.json()["error"]["details"][0]["field"] == "lines.0.name"

                sale = sell_json(client, basket_json(line_json(name="Молоко"), lane_id="lane-1"))
                legacy = stored_before_the_fix(store, sale["transaction_id"])
                assert printer.wait_until(lambda: all_printed(store), timeout=TIMEOUT)
                assert server.wait_idle(TIMEOUT)

                document = client.get(f"/v1/receipts/{legacy}").json()
                text = client.get(f"/v1/receipts/{legacy}.txt").text
        finally:
            worker.stop(timeout=5.0)
            store.close()

    assert printer.drawer_kicks == 0
    assert len(printer.receipts) == 2  # one cut per receipt: no second slip
    old, fresh = sorted(printer.receipts, key=lambda r: "Молоко" in r.text)
    assert "Молоко" in fresh.text and CLEANED not in fresh.text
    assert CLEANED in old.text and "Молоко" not in old.text
    for receipt in (fresh, old):
        assert receipt.complete and receipt.cut == "full"
        assert "Магазинp у дома" in receipt.text
        assert "Скидкаp0 V0дня" in receipt.text
        assert "Спасибо!" in receipt.text and "VДо встречи" in receipt.text
    assert document["items"][0]["name"] == CLEANED
    assert document["header"]["store_name"] == "Магазинp у дома"
    assert document["discounts"][0]["label"] == "Скидкаp0 V0дня"
    assert document["footer"] == "Спасибо!\n VДо встречи"
    assert CLEANED in text and "\x1b" not in text and "\x1d" not in text
