"""The head-office console in a real headless Chromium against a real `pos-loyalty hq serve`, with
a real store `serve` pulling from it: a program with an invalid rule (chosen as a file) is refused
with the compiler's message at its rule and key; a good one is published and the fleet page shows
the store running it, without a reload. Screenshots go where test_pages_browser.py puts its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.hq_fixtures import (
    HeadOffice,
    StoreProcess,
    discount_program,
    start_head_office,
    start_store,
    write_store_config,
)

# the same Chromium, screenshot folder and marks (slow, one browser at a time, skip without it)
from tests.e2e.test_pages_browser import chromium, pytestmark, shots  # noqa: F401

WAIT_MS = 90_000  # a readiness wait on the page's own content, not a pace the test expects
INVALID = discount_program(150)  # a percent over 100: the compiler refuses it


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[tuple[HeadOffice, StoreProcess]]:
    office = start_head_office(tmp_path / "hq")
    store: StoreProcess | None = None
    try:
        token = office.add_store("msk-001", region="msk")
        config = write_store_config(
            tmp_path / "msk-001",
            "msk-001",
            hq_url=office.url,
            public_key=office.public_key,
            api_key=token,
            region="msk",
        )
        store = start_store(config)
        yield office, store
    finally:
        if store is not None:
            store.stop()
        office.stop()


def fits_the_screen(page: Any) -> None:
    """Nothing wider than the 1366 px screen: no sideways scrolling."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366, f"{page.url} is {width}px wide"


def test_console_refuses_an_invalid_rule_then_publishes_and_the_fleet_follows(
    chromium: Any,  # noqa: F811
    chain: tuple[HeadOffice, StoreProcess],
    shots: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    office, store = chain
    # `hq serve` says where its console is
    assert f"head-office console: {office.url}/hq" in office.log.read_text(encoding="utf-8")
    page = chromium.new_context(viewport={"width": 1366, "height": 768}, locale="ru-RU").new_page()
    page.goto(office.url + "/hq")
    assert page.url.startswith(office.url + "/login?next=")  # the key first
    page.fill("#key", office.key)
    page.click("button[type=submit]")
    page.wait_for_url(office.url + "/hq")
    expect(page.locator("h2").first).to_have_text("Версии программы")

    bad = tmp_path / "invalid.toml"
    bad.write_text(INVALID, encoding="utf-8")
    page.set_input_files("#program-file", str(bad))  # read into the text area by the page
    expect(page.locator("#program")).to_have_value(INVALID, timeout=WAIT_MS)
    page.click("button[value=publish]")
    problem = page.locator("[data-test=problem]")
    expect(problem).to_have_count(1, timeout=WAIT_MS)
    expect(problem.locator("td").nth(0)).to_have_text('rules[1] ("promo")')
    expect(problem.locator("td").nth(1)).to_have_text("percent")
    expect(problem.locator("td").nth(3)).to_contain_text("150")
    line = INVALID.splitlines().index("percent = 150") + 1
    expect(problem.locator("td").nth(2)).to_have_text(str(line))
    expect(page.locator(".listing li.bad")).to_contain_text("percent = 150")
    fits_the_screen(page)
    page.screenshot(path=str(shots / "hq-invalid-rule.png"), full_page=True)
    assert office.fleet()[0]["target_version"] is None  # nothing was published

    page.fill("#program", discount_program(10))
    page.fill("input[name=note]", "Скидка 10 % <b>всем</b>")
    page.click("button[value=publish]")
    page.wait_for_url(office.url + "/hq?published=1")
    expect(page.locator("[data-test=published]")).to_have_text("Опубликована версия v1.")
    expect(page.locator("[data-test=versions]")).to_contain_text("Скидка 10 % <b>всем</b>")
    fits_the_screen(page)
    page.screenshot(path=str(shots / "hq-published.png"), full_page=True)

    page.goto(office.url + "/hq/fleet")
    row = page.locator("tr[data-store=msk-001]")
    expect(row).to_be_visible()
    page.evaluate("window.notReloaded = true")
    # the page refreshes its table by itself until the store reports running v1
    expect(row.locator("[data-test=active]")).to_have_text("v1", timeout=WAIT_MS)
    expect(row).to_contain_text("актуален")
    assert page.evaluate("window.notReloaded") is True
    assert store.version().startswith("v1-")  # and the store prices under it
    fits_the_screen(page)
    page.screenshot(path=str(shots / "hq-fleet.png"), full_page=True)

    page.goto(office.url + "/hq/reports")
    expect(page.locator("[data-test=reported]")).to_contain_text("msk-001", timeout=WAIT_MS)
    expect(page.locator("[data-test=liability]")).to_have_text("0 баллов на 0,00\xa0₽")
    fits_the_screen(page)
    page.screenshot(path=str(shots / "hq-reports.png"), full_page=True)
