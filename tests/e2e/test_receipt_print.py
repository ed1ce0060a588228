"""Receipts printed on the virtual printer over real TCP: Cyrillic on two models whose CP866 slots
differ (and with native or image QR), and coupon QR codes that decode back from the PNG."""

from __future__ import annotations

import io
import socket
from contextlib import closing
from pathlib import Path

import pytest
import zxingcpp
from escpos.printer import Network
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from drivers.print_queue import PrintWorker, store_receipt_renderer
from drivers.printer import EscPosPrinter
from drivers.receipt_escpos import (
    document_to_escpos,
    receipt_columns,
    render_escpos,
    supports_native_qr,
    write_receipt,
)
from firmware_sim.printer import PrinterServer, Receipt, VirtualPrinter
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.cli.receipt_preview import render_receipt_png
from pos_loyalty.coupons.codes import parse_presented
from pos_loyalty.lanes import LaneHub
from pos_loyalty.receipts import ReceiptDocument, layout_receipt
from pos_loyalty.receipts.media import print_width
from pos_loyalty.receipts.sample import sample_receipt
from pos_loyalty.security import StoreSecret
from pos_loyalty.store import Store
from tests.conftest import make_settings, new_key
from tests.factories import (
    SALE_RULES,
    basket_json,
    commit_json,
    enrol_json,
    evaluate_json,
    line_json,
    sell_json,
)

TIMEOUT = 5.0
SECRET = StoreSecret(b"e2e-receipt-secret-0123456789abc")
NBSP = "\u00a0"
# (model, paper, ESC t slot python-escpos uses for CP866 on it, QR drawn by the printer?,
#  Font A columns: 42/30 on a 180 dpi TM-T88V's 80/58 mm rolls, 48/32 at 203 dpi)
PRINTERS = [
    ("TM-T88V", 80, 17, True, 42),
    ("TM-T88V", 58, 17, True, 30),
    ("TM-T20II", 80, 17, True, 48),
    ("TM-T20II", 58, 17, True, 32),
    ("POS-5890", 58, 59, False, 32),
]


@pytest.fixture(scope="module")
def document() -> ReceiptDocument:
    return sample_receipt(lines=6, secret=SECRET)


def send_over_tcp(printer: VirtualPrinter, data: bytes) -> None:
    """Ask for paper status (DLE EOT 4) as a print worker does, send the job, hang up, and wait
    until the printer has printed everything it received."""
    with PrinterServer(printer, "127.0.0.1", 0) as server:
        with closing(socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)) as sock:
            sock.sendall(b"\x10\x04\x04")
            assert sock.recv(1) == b"\x12"  # paper present, not near its end
            sock.sendall(data)
        assert server.wait_idle(TIMEOUT)


def printed_receipt(printer: VirtualPrinter) -> Receipt:
    if not printer.receipts:  # a model without a cutter: the cashier tears the paper off
        torn = printer.tear_off()
        assert torn is not None
        return torn
    return printer.receipts[-1]


def decoded_qr_codes(receipt: Receipt) -> list[str]:
    return sorted(r.text for r in zxingcpp.read_barcodes(receipt.image.convert("L")))


@pytest.mark.parametrize(
    ("profile", "width_mm", "cp866_slot", "native_qr", "expected_columns"), PRINTERS
)
def test_receipt_prints_in_cyrillic_with_scannable_coupons(
    document: ReceiptDocument,
    profile: str,
    width_mm: int,
    cp866_slot: int,
    native_qr: bool,
    expected_columns: int,
) -> None:
    columns = receipt_columns(profile, width_mm)
    assert columns == expected_columns
    # The driver, the layout and the printer agree on the width: not one line wraps on paper.
    width = print_width(profile, width_mm)
    sim = VirtualPrinter(profile, paper_mm=None, paper_width_mm=float(width_mm))
    assert width.dots == sim.profile.dots_per_line and width.layout_columns == columns
    escpos_media = EscPosPrinter("tcp://127.0.0.1:9", profile=profile, width_mm=width_mm)
    assert escpos_media.make_escpos().profile.profile_data["media"]["width"]["pixels"] == width.dots
    assert supports_native_qr(profile) is native_qr
    data = document_to_escpos(document, profile=profile, width_mm=width_mm)
    assert bytes([0x1B, ord("t"), cp866_slot]) in data  # this model's CP866 slot
    assert (b"\x1d(k" in data) is native_qr and (b"\x1dv0" in data) is not native_qr

    printer = VirtualPrinter(profile, paper_mm=None, paper_width_mm=float(width_mm))
    send_over_tcp(printer, data)
    receipt = printed_receipt(printer)
    text_lines = [line for line in receipt.lines if not line.startswith("[")]  # not the codes
    assert max(len(line) for line in text_lines) <= columns

    # Every line the layout made comes back off the paper, in order, in Cyrillic.
    laid_out = layout_receipt(document, columns, for_printer=True)
    paper = [" ".join(ln.split()) for ln in receipt.text.splitlines() if ln.strip()]
    position = 0
    for line in laid_out.text_lines():
        expected = " ".join(line.text.split())
        if not expected:
            continue
        found = next((i for i in range(position, len(paper)) if paper[i] == expected), None)
        assert found is not None, f"{expected!r} not printed (after line {position})"
        position = found + 1
    assert "Программа лояльности" in receipt.text and "Иван П." in receipt.text
    assert "Действует до 05.12.2026" in receipt.text

    # The coupon QR codes read back from the picture, and they are this store's coupons.
    payloads = [coupon.qr_payload for coupon in document.coupons]
    assert decoded_qr_codes(receipt) == sorted(payloads)
    for coupon in document.coupons:
        assert parse_presented(SECRET, coupon.qr_payload).code == coupon.code


@pytest.mark.parametrize(("profile", "width_mm"), [("TM-T88V", 80), ("TM-T20II", 80)])
def test_the_printed_text_keeps_double_width_lines_where_the_paper_has_them(
    document: ReceiptDocument, profile: str, width_mm: int
) -> None:
    """The transcript the printer writes next to its PNG (what the demo shows) puts a
    double-width line over the columns it covers: the total flush right like every amount,
    the coupon code centred under "Код купона:"."""
    columns = receipt_columns(profile, width_mm)
    printer = VirtualPrinter(profile, paper_mm=None, paper_width_mm=float(width_mm))
    printer.feed(document_to_escpos(document, profile=profile, width_mm=width_mm))
    lines = printed_receipt(printer).lines
    laid_out = layout_receipt(document, columns, for_printer=True).text_lines()
    amount = next(ln for ln in laid_out if ln.text.startswith("ИТОГО")).text[5:].strip()
    total = next(line for line in lines if line.startswith("ИТОГО"))
    cash = next(line for line in lines if line.startswith("Наличные"))
    assert total.endswith(" " + amount)
    assert len(total) == len(cash) == columns  # both reach the right edge of the paper
    for coupon in document.coupons:
        code = next(line for line in lines if line.strip() == coupon.display_code)
        title = lines[lines.index(code) - 1]
        assert title.strip() == "Код купона:"
        middle = (len(code) - len(code.lstrip()) + len(code)) / 2
        title_middle = (len(title) - len(title.lstrip()) + len(title)) / 2
        assert abs(middle - title_middle) <= 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_committed_sale_prints_and_its_coupon_is_scanned_off_the_paper_and_redeemed(
    tmp_path: Path, db_url: str
) -> None:
    """The whole way: a commit queues the receipt, the lane's print worker sends it over TCP to
    the virtual printer, the coupon's QR is read off the printed picture, and at the next visit
    that scan takes the coupon's 70 ₽ off and spends it."""
    printer = VirtualPrinter("TM-T88V", paper_mm=None)
    with PrinterServer(printer, "127.0.0.1", 0) as server:
        fast = {"retry_initial_s": 0.05, "retry_max_s": 0.2, "timeout_s": 1.0}
        lane = {"id": "lane-1", "printer": {"connection": server.url, **fast}}
        settings = make_settings(tmp_path, db_url, {**SALE_RULES, "lanes": [lane]})
        store = Store.open(settings)
        lane_printer = settings.lanes[0].printer
        assert lane_printer is not None
        worker = PrintWorker(
            store=store,
            lane_id="lane-1",
            config=lane_printer,
            render=store_receipt_renderer(store),
            hub=LaneHub(store),
            poll_interval_s=0.05,
            probe_interval_s=None,
        ).start()
        try:
            with TestClient(create_app(settings, store=store)) as client:
                client.headers["Authorization"] = f"Bearer {new_key(store, Scope.TILL)}"
                customer = {"id": enrol_json(client)}
                cheese = line_json(unit_price=80_000, name="Сыр пармезан")
                sale = sell_json(client, basket_json(cheese, customer=customer, lane_id="lane-1"))
                (issued,) = sale["coupons_issued"]
                (receipt,) = printer.wait_for_receipts(1, timeout=TIMEOUT)
                picture = Image.open(io.BytesIO(receipt.png)).convert("L")
                scanned = [r.text for r in zxingcpp.read_barcodes(picture)]
                assert scanned == [issued["qr"]]
                assert issued["code"] in receipt.text and "Иван П." in receipt.text

                bread = line_json("bread", 30_000, name="Хлеб")
                quote = evaluate_json(
                    client, basket_json(bread, customer=customer, coupons=scanned)
                )
                assert [c["amount"] for c in quote["coupons"]["applied"]] == [7_000]
                assert commit_json(client, {"quote_id": quote["quote_id"]}).status_code == 201
                status = client.get(f"/v1/coupons/{issued['code']}").json()
                assert status["status"] == "redeemed"
        finally:
            worker.stop(timeout=5.0)
            store.close()


def test_a_python_escpos_network_printer_prints_the_same_receipt(
    document: ReceiptDocument,
) -> None:
    """`write_receipt` on a live python-escpos connection, as the print worker will use it."""
    laid_out = layout_receipt(document, receipt_columns("TM-T88V"), for_printer=True)
    printer = VirtualPrinter("TM-T88V", paper_mm=None)
    with PrinterServer(printer, "127.0.0.1", 0) as server:
        driver = Network("127.0.0.1", server.port, timeout=TIMEOUT, profile="TM-T88V")
        try:
            write_receipt(driver, laid_out)
            write_receipt(driver, laid_out)  # a worker keeps its connection for the next job
        finally:
            driver.close()
        first, second = printer.wait_for_receipts(2, timeout=TIMEOUT)
    reference = VirtualPrinter("TM-T88V", paper_mm=None)
    reference.feed(render_escpos(laid_out, profile="TM-T88V"))
    assert first.text == second.text == reference.receipts[-1].text
    assert "Магазин у дома" in second.text
    assert decoded_qr_codes(second) == sorted(c.qr_payload for c in document.coupons)


def test_png_preview_composition_decodes_to_the_coupon(document: ReceiptDocument) -> None:
    import io

    from PIL import Image

    png = render_receipt_png(document, profile="TM-T20II", width_mm=80)
    image = Image.open(io.BytesIO(png))
    assert image.width == 576  # 48 columns of Font A at 203 dpi
    found = sorted(r.text for r in zxingcpp.read_barcodes(image.convert("L")))
    assert found == sorted(c.qr_payload for c in document.coupons)
