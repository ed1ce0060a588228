"""The pages in a real headless Chromium against a real `pos-loyalty serve` with simulated devices.

The customer display (1024×600) shows the customer the lane's camera recognised, then the upsell
hint of the basket the till prices, and goes idle when the sale is done, all without a reload; the
back office (1366×768) shows the printer running out of paper and coming back. Screenshots go to
`$POS_LOYALTY_SCREENSHOTS` (or the test's tmp dir) to be looked at.

Chromium is Debian's (`scripts/bootstrap.sh` installs it); Playwright drives it by its path, as
Playwright's own browser download needs the internet.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_sim.printer import PrinterServer, VirtualPrinter
from tests.e2e.store_setup import prepare_store, write_qr_clip
from tests.e2e.test_serve_lanes import Follower, Service
from tests.factories import basket_json, commit_json, evaluate_json, line_json

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("browser"),  # one Chromium at a time on a 2-core machine
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and os.environ.get("POS_LOYALTY_REQUIRE_PG") != "1",
        reason="needs Debian's chromium (scripts/bootstrap.sh installs it)",
    ),
]
WAIT_MS = 30_000  # a readiness wait on the page's own content, not a pace the test expects


def store_config(tmp_path: Path, printer_url: str) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[store]
id = "msk-001"
name = "Магазин у дома"
database_url = "sqlite:///./store.db"
secret_file = "./secret.key"
enrol_url = "https://example.ru/loyalty/join"

[points]
point_value_minor = 100

[[tiers]]
name = "Базовый"
min_spend = 0
[[tiers]]
name = "Серебро"
min_spend = 500000

[[rules]]
id = "bonus-5"
kind = "points"
label = "Бонусы 5%"
earn_percent = 5

[[rules]]
id = "spend-700-get-70"
kind = "threshold"
label = "Купите на 700 ₽ — 70 ₽ на следующую покупку"
min_subtotal = 70000
reward = {{ coupon = {{ amount_off = 7000, valid_days = 14 }} }}
hint_within = 15000

[[lanes]]
id = "lane-1"
camera = {{ source = "lane-1.avi", loop = true, debounce_s = 3.0 }}
[lanes.printer]
connection = "{printer_url}"
timeout_s = 1.0
retry_initial_s = 0.1
retry_max_s = 0.5
""",
        encoding="utf-8",
    )
    return config


@pytest.fixture
def printer(tmp_path: Path) -> VirtualPrinter:
    return VirtualPrinter("TM-T88V", paper_mm=5_000.0, out_dir=tmp_path / "receipts")


@pytest.fixture
def printer_server(printer: VirtualPrinter) -> Iterator[PrinterServer]:
    with PrinterServer(printer, "127.0.0.1", 0) as server:
        yield server


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("POS_LOYALTY_SCREENSHOTS") or tmp_path / "screens")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def service(tmp_path: Path, printer_server: PrinterServer) -> Iterator[Service]:
    """serve with lane-1's camera looping a clip of Иван's loyalty QR, and its printer."""
    config = store_config(tmp_path, printer_server.url)
    prepared = prepare_store(config)
    write_qr_clip(tmp_path / "lane-1.avi", prepared.qr)
    running = Service(tmp_path, config, prepared.token)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def chromium() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            yield browser
        finally:
            browser.close()


def signed_in_page(chromium: object, service: Service, path: str, width: int, height: int):  # type: ignore[no-untyped-def]
    page = chromium.new_context(  # type: ignore[attr-defined]
        viewport={"width": width, "height": height}, locale="ru-RU"
    ).new_page()
    page.goto(f"{service.base_url}{path}")
    assert page.url.startswith(f"{service.base_url}/login?next=")  # the key first
    page.fill("#key", service.client.token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{service.base_url}{path}")
    return page


def test_customer_display_follows_the_lane_live(
    chromium: object, service: Service, shots: Path
) -> None:
    from playwright.sync_api import expect

    lane = Follower(service.base_url, service.client.token, "lane-1")
    lane.wait_for(lambda e: e["type"] == "customer_identified")  # the camera saw Иван's QR

    page = signed_in_page(chromium, service, "/lanes/lane-1/display", 1024, 600)
    screen = page.locator("#screen")
    expect(screen.locator("[data-test=hello]")).to_have_text("Здравствуйте, Иван!", timeout=WAIT_MS)
    expect(screen).to_contain_text("+7 *** ***-45-67")
    assert "Петров" not in screen.inner_text()
    expect(page.locator("body")).to_have_attribute("data-stream", "open", timeout=WAIT_MS)
    page.evaluate("window.notReloaded = true")
    page.screenshot(path=str(shots / "display-customer.png"))

    # The till prices 600 ₽: 100 ₽ short of the 700 ₽ coupon.
    basket = basket_json(line_json(unit_price=35_000, name="Сыр"), line_json("2", 25_000))
    basket["customer"] = None  # the lane's current customer
    quote = evaluate_json(service.client, basket)
    expect(screen.locator("[data-test=hint]")).to_have_text(
        "Добавьте 100,00\xa0₽ — получите купон на 70,00\xa0₽", timeout=WAIT_MS
    )
    expect(screen.locator("[data-test=total]")).to_have_text("600,00\xa0₽")
    expect(screen).to_contain_text("Сыр")
    expect(screen).to_contain_text("+30 баллов")
    assert page.evaluate("window.notReloaded") is True  # updated in place
    page.screenshot(path=str(shots / "display-hint.png"))
    assert page.evaluate("document.documentElement.scrollHeight") <= 600  # fits the screen

    sale = commit_json(service.client, {"quote_id": quote["quote_id"]})
    assert sale.status_code == 201, sale.text
    expect(screen.locator("[data-state=idle]")).to_be_visible(timeout=WAIT_MS)
    expect(screen.locator(".qr svg")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True
    page.screenshot(path=str(shots / "display-idle.png"))


def test_back_office_shows_the_printer_out_of_paper_and_back(
    chromium: object, service: Service, printer: VirtualPrinter, shots: Path
) -> None:
    from playwright.sync_api import expect

    page = signed_in_page(chromium, service, "/store", 1366, 768)
    row = page.locator('tr[data-device="lane-1/printer"]')
    expect(row).to_contain_text("на связи", timeout=WAIT_MS)
    expect(page.locator("body")).to_have_attribute("data-stream", "open", timeout=WAIT_MS)
    expect(page.locator("#live")).to_contain_text("Продажи")
    expect(page.locator(".program")).to_contain_text("от 700,00\xa0₽ — купон на 70,00\xa0₽")
    page.evaluate("window.notReloaded = true")

    printer.set_paper_remaining(0)  # the roll runs out; the worker's status probe notices
    state = row.locator("[data-test=state]")
    expect(state).to_have_attribute("data-state", "paper_out", timeout=WAIT_MS)
    expect(state).to_have_text("нет бумаги")
    expect(row).to_have_class("down")
    page.screenshot(path=str(shots / "store-paper-out.png"))

    printer.refill()
    expect(row).to_have_class("up", timeout=WAIT_MS)
    expect(state).to_have_text("готов")
    assert page.evaluate("window.notReloaded") is True
    page.screenshot(path=str(shots / "store-printer-back.png"))
