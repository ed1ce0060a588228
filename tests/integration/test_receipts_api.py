"""Receipts of committed sales over HTTP: the document, its text, a PNG whose coupon QR is then
redeemed at the till, and reprints queued in the outbox; on both databases."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import col, select

from api.app import create_app
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.cli.receipt_preview import render_receipt_png
from pos_loyalty.sales.models import ReceiptOutbox
from pos_loyalty.store import Store
from tests.conftest import new_key
from tests.factories import (
    SALE_RULES,
    basket_json,
    commit_json,
    enrol_json,
    evaluate_json,
    line_json,
    sell_json,
)

NBSP = "\u00a0"
MOSCOW = ZoneInfo("Europe/Moscow")


@pytest.fixture
def config_extra() -> dict[str, Any]:
    printer = {"connection": "tcp://127.0.0.1:9", "profile": "TM-T88V", "width_mm": 80}
    narrow = {"connection": "tcp://127.0.0.1:9", "profile": "POS-5890", "width_mm": 58}
    favourite_food = {
        "id": "fav-food",
        "kind": "personal",
        "trigger": "favourite",
        "label": "Любимый корм −10%",
        "percent_off": 10,
        "by": "sku",
        "min_purchases": 1,
        "lookback_days": 30,
        "when": {"categories": ["pet_food"]},
    }
    return {
        **SALE_RULES,
        "rules": [*SALE_RULES["rules"], favourite_food],
        "lanes": [
            {"id": "lane-1", "printer": printer},
            {"id": "lane-2", "printer": narrow},
            {"id": "lane-3"},
        ],
    }


@pytest.fixture
def preview_client(store: Store) -> Iterator[TestClient]:
    """A till's client on an app that can draw receipt previews (as `serve` builds it)."""
    app = create_app(store.settings, store=store, receipt_png=render_receipt_png)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {new_key(store, Scope.TILL)}"
        yield client


def big_sale(client: TestClient, lane_id: str = "lane-1") -> dict[str, Any]:
    """A customer's 800 ₽ sale that earns points and the 70 ₽ coupon."""
    customer_id = enrol_json(client)
    return sell_json(
        client,
        basket_json(
            line_json("4601234567890", 45000, 1, name="Сыр пармезан выдержанный 24 месяца"),
            line_json("cof", 17500, 2, category="coffee", name="Кофе в зёрнах 250 г"),
            customer={"id": customer_id},
            lane_id=lane_id,
        ),
    )


def last_moscow_day(expires_at: str) -> str:
    """The last Moscow date a coupon is good on (coupons expire at the midnight after it)."""
    local = datetime.fromisoformat(expires_at).astimezone(MOSCOW)
    assert (local.hour, local.minute, local.second) == (0, 0, 0), expires_at
    return (local - timedelta(days=1)).strftime("%d.%m.%Y")


def test_the_receipt_of_a_sale_as_json_and_text(client: TestClient) -> None:
    sale = big_sale(client)
    (issued,) = sale["coupons_issued"]
    transaction_id = sale["transaction_id"]

    document = client.get(f"/v1/receipts/{transaction_id}")
    assert document.status_code == 200, document.text
    body = document.json()
    assert body["transaction_id"] == transaction_id
    assert [i["name"] for i in body["items"]] == [
        "Сыр пармезан выдержанный 24 месяца",
        "Кофе в зёрнах 250 г",
    ]
    assert body["totals"]["total"] == sale["total"] == 80000
    assert body["loyalty"]["customer_name"] == "Иван П."
    assert body["loyalty"]["phone_masked"] == "+7 *** ***-45-67"
    assert body["loyalty"]["balance"] == sale["balance_after"] == 40
    assert body["loyalty"]["next_expiry"]["points"] == 40
    assert body["loyalty"]["stamps"][0]["count"] == 2
    assert body["coupons"][0]["qr"] == issued["qr"]
    assert body["coupons"][0]["display_code"] == issued["code"]

    text = client.get(f"/v1/receipts/{transaction_id}.txt")
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    lines = text.text.splitlines()
    assert max(len(line) for line in lines) <= 42
    plain = text.text.replace(NBSP, " ")
    for expected in (
        "Магазин у дома",
        "Касса lane-1",
        "Сыр пармезан выдержанный 24 месяца",
        "2 × 175,00 ₽",
        "ИТОГО",
        "Иван П.",
        "+7 *** ***-45-67",
        "40 баллов",
        "Купите на 700 ₽ — 70 ₽ на следующую",
        f"Действует до {last_moscow_day(issued['expires_at'])}",
        issued["code"],
    ):
        assert expected in plain, expected


def test_a_coupon_for_a_product_names_it_as_the_customer_bought_it(client: TestClient) -> None:
    customer = {"id": enrol_json(client)}
    food = line_json("cat-food", 45_000, category="pet_food", name="Корм для кошек Мурка 2 кг")
    first = sell_json(client, basket_json(food, customer=customer))
    assert first["coupons_issued"] == []  # no history yet
    second = sell_json(client, basket_json(line_json(), customer=customer))
    (issued,) = second["coupons_issued"]
    assert issued["rule_id"] == "fav-food"
    text = client.get(f"/v1/receipts/{second['transaction_id']}.txt").text
    flat = " ".join(text.split())
    assert "На товары: Корм для кошек Мурка 2 кг" in flat and "cat-food" not in text
    document = client.get(f"/v1/receipts/{second['transaction_id']}").json()
    assert document["coupons"][0]["skus"] == ["cat-food"]
    assert document["coupons"][0]["sku_names"] == ["Корм для кошек Мурка 2 кг"]


def test_text_width_follows_the_lane_printer_or_the_query(client: TestClient) -> None:
    transaction_id = big_sale(client, lane_id="lane-2")["transaction_id"]
    narrow = client.get(f"/v1/receipts/{transaction_id}.txt").text.splitlines()
    assert max(len(line) for line in narrow) == 32  # lane-2 has a 58 mm printer
    wide = client.get(f"/v1/receipts/{transaction_id}.txt", params={"columns": 48})
    assert max(len(line) for line in wide.text.splitlines()) == 48
    odd = client.get(f"/v1/receipts/{transaction_id}.txt", params={"columns": 40})
    assert odd.status_code == 422 and "32, 42, 48" in odd.json()["error"]["message"]


def test_png_coupon_is_scanned_and_redeemed_on_the_next_visit(
    preview_client: TestClient,
) -> None:
    client = preview_client
    sale = big_sale(client)
    (issued,) = sale["coupons_issued"]
    png = client.get(f"/v1/receipts/{sale['transaction_id']}.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(png.content))
    assert image.width == 512  # TM-T88V, 80 mm, 180 dpi
    (decoded,) = [r.text for r in zxingcpp.read_barcodes(image.convert("L"))]
    assert decoded == issued["qr"]

    customer_id = sale["customer"]["id"]
    quote = evaluate_json(
        client,
        basket_json(line_json(unit_price=30000), customer={"id": customer_id}, coupons=[decoded]),
    )
    assert [c["amount"] for c in quote["coupons"]["applied"]] == [7000]
    assert commit_json(client, {"quote_id": quote["quote_id"]}).status_code == 201
    status = client.get(f"/v1/coupons/{issued['code']}").json()
    assert status["status"] == "redeemed"


def test_png_on_a_narrow_printer_and_without_a_renderer(
    preview_client: TestClient, client: TestClient
) -> None:
    sale = big_sale(preview_client, lane_id="lane-2")
    png = preview_client.get(f"/v1/receipts/{sale['transaction_id']}.png")
    image = Image.open(io.BytesIO(png.content))
    assert image.width == 384  # POS-5890 on 58 mm paper; its QR is a raster image
    assert [r.text for r in zxingcpp.read_barcodes(image.convert("L"))] == [
        sale["coupons_issued"][0]["qr"]
    ]
    unknown = preview_client.get(
        f"/v1/receipts/{sale['transaction_id']}.png", params={"profile": "NO-SUCH-PRINTER"}
    )
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_profile"
    missing = client.get(f"/v1/receipts/{sale['transaction_id']}.png")
    assert missing.status_code == 501
    assert missing.json()["error"]["code"] == "preview_unavailable"


def test_print_again_queues_the_receipt(client: TestClient, store: Store) -> None:
    transaction_id = big_sale(client)["transaction_id"]
    again = client.post(f"/v1/receipts/{transaction_id}/print")
    assert again.status_code == 202, again.text
    queued = again.json()
    assert (queued["transaction_id"], queued["lane_id"], queued["status"]) == (
        transaction_id,
        "lane-1",
        "queued",
    )
    elsewhere = client.post(f"/v1/receipts/{transaction_id}/print", json={"lane_id": "lane-2"})
    assert elsewhere.status_code == 202 and elsewhere.json()["lane_id"] == "lane-2"
    with store.uow() as uow:
        rows = uow.session.exec(
            select(ReceiptOutbox)
            .where(col(ReceiptOutbox.transaction_id) == transaction_id)
            .order_by(col(ReceiptOutbox.id))
        ).all()
        assert [(r.lane_id, r.status, r.kind) for r in rows] == [
            ("lane-1", "queued", "sale"),  # the commit's own
            ("lane-1", "queued", "sale"),
            ("lane-2", "queued", "sale"),
        ]
        assert rows[1].id == queued["outbox_id"]

    no_printer = client.post(f"/v1/receipts/{transaction_id}/print", json={"lane_id": "lane-3"})
    assert no_printer.status_code == 422
    assert no_printer.json()["error"]["code"] == "no_printer"
    assert no_printer.json()["error"]["details"]["lanes_with_printers"] == ["lane-1", "lane-2"]
    typo = client.post(f"/v1/receipts/{transaction_id}/print", json={"lane": "lane-2"})
    assert typo.status_code == 422


def test_unknown_sales_and_missing_keys(client: TestClient) -> None:
    for path in ("/v1/receipts/nope", "/v1/receipts/nope.txt"):
        reply = client.get(path)
        assert reply.status_code == 404
        assert reply.json()["error"]["code"] == "transaction_not_found"
    assert client.post("/v1/receipts/nope/print").status_code == 404
    assert client.get("/v1/receipts/nope", headers={"Authorization": ""}).status_code == 401


def test_a_refund_prints_its_own_slip(client: TestClient, store: Store) -> None:
    sale = big_sale(client)
    transaction_id = sale["transaction_id"]
    refunded = client.post(
        f"/v1/transactions/{transaction_id}/refund",
        json={},
        headers={"Idempotency-Key": "refund-1"},
    )
    assert refunded.status_code == 200, refunded.text
    refund = refunded.json()
    slip = client.get(f"/v1/receipts/{transaction_id}", params={"refund_id": refund["refund_id"]})
    assert slip.status_code == 200, slip.text
    body = slip.json()
    assert body["kind"] == "refund" and body["refund"]["amount"] == 80000
    assert body["refund"]["coupons_cancelled"] == [sale["coupons_issued"][0]["code"]]
    assert body["refund"]["points_earn_reversed"] == 40
    assert body["loyalty"]["balance"] == 0

    text = client.get(
        f"/v1/receipts/{transaction_id}.txt", params={"refund_id": refund["refund_id"]}
    ).text.replace(NBSP, " ")
    for expected in (
        "ВОЗВРАТ",
        f"Возврат № {refund['refund_id']}",
        f"по чеку № {transaction_id}",
        "Кофе в зёрнах 250 г",
        "количество 2",
        "800,00 ₽",
        "Баллы за покупку списаны",
        "-40",
        "Аннулированы купоны:",
        sale["coupons_issued"][0]["code"],
    ):
        assert expected in text, expected
    assert "ВАШ КУПОН" not in text

    queued = client.post(
        f"/v1/receipts/{transaction_id}/print", json={"refund_id": refund["refund_id"]}
    )
    assert queued.status_code == 202
    assert (queued.json()["kind"], queued.json()["refund_id"]) == ("refund", refund["refund_id"])
    wrong = client.get(f"/v1/receipts/{transaction_id}", params={"refund_id": "nope"})
    assert wrong.status_code == 404 and wrong.json()["error"]["code"] == "refund_not_found"


def test_a_refund_slip_is_a_document_of_its_own_fetched_and_printed_by_the_refund_id(
    client: TestClient, preview_client: TestClient, store: Store
) -> None:
    sale = big_sale(client)
    transaction_id = sale["transaction_id"]
    refund = client.post(
        f"/v1/transactions/{transaction_id}/refund",
        json={"lines": [{"sku": "cof", "qty": 1}]},
        headers={"Idempotency-Key": "refund-own"},
    ).json()
    refund_id = refund["refund_id"]
    by_sale = client.get(f"/v1/receipts/{transaction_id}.txt", params={"refund_id": refund_id})
    own = client.get(f"/v1/receipts/{refund_id}.txt")
    assert own.status_code == 200, own.text
    assert own.text == by_sale.text and f"Возврат № {refund_id}" in own.text
    document = client.get(f"/v1/receipts/{refund_id}").json()
    assert document["kind"] == "refund" and document["refund"]["refund_id"] == refund_id
    png = preview_client.get(f"/v1/receipts/{refund_id}.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    queued = client.post(f"/v1/receipts/{refund_id}/print", json={})
    assert queued.status_code == 202, queued.text
    assert (queued.json()["kind"], queued.json()["refund_id"]) == ("refund", refund_id)
    with store.uow() as uow:
        rows = uow.session.exec(
            select(ReceiptOutbox.kind, ReceiptOutbox.lane_id).where(
                col(ReceiptOutbox.refund_id) == refund_id
            )
        ).all()
    # the slip the refund itself queued on the sale's lane, and the reprint
    assert [tuple(r) for r in rows] == [("refund", "lane-1"), ("refund", "lane-1")]
