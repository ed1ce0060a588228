"""The pages served by the service: sign-in, cookie flags, CSRF, escaping, the store's language,
the customer display fed by the lane's events, the back office, offline docs and metrics."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.pages.session import CSRF_COOKIE, CSRF_FIELD, KEY_COOKIE
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.hq.local import accept_bundle, apply_active, record_sync
from pos_loyalty.hq.signing import create_signing_key, public_key_text
from pos_loyalty.lanes import QUOTE, LaneHub
from pos_loyalty.sales.models import ReceiptOutbox
from pos_loyalty.settings import HqConfig
from pos_loyalty.store import Store
from tests.conftest import from_this_machine, make_settings, new_key
from tests.factories import (
    SALE_RULES,
    basket_json,
    enrol_json,
    line_json,
    refund_json,
    sell_json,
)
from tests.integration.test_hq_store_side import _signed

SCRIPT = "<script>alert(1)</script>"


PAGES_CONFIG: dict[str, Any] = {
    **SALE_RULES,
    "store": {"enrol_url": "https://example.ru/join"},
    "lanes": [
        {"id": "lane-1", "printer": {"connection": "tcp://127.0.0.1:9"}},  # never started
        {"id": "lane-2"},
    ],
}
RETURN_WINDOW = {**PAGES_CONFIG, "points": {**SALE_RULES["points"], "pending_days": 14}}


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return PAGES_CONFIG


def csrf_of(page: Any) -> str:
    match = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


def sign_in(client: TestClient, key: str) -> Any:
    token = csrf_of(client.get("/login"))
    return client.post(
        "/login",
        data={CSRF_FIELD: token, "key": key, "next": "/store"},
        follow_redirects=False,
    )


@pytest.fixture
def till(store: Store) -> str:
    return new_key(store, Scope.TILL)


@pytest.fixture
def browser(anon_client: TestClient, till: str) -> TestClient:
    """A signed-in browser: the key in its cookie, the API client's header unset."""
    assert sign_in(anon_client, till).status_code == 303
    return anon_client


def api(client: TestClient, key: str) -> TestClient:
    """The same app as a till calls it (bearer header), sharing the app's hub."""
    client.headers["Authorization"] = f"Bearer {key}"
    return client


def test_pages_need_a_signed_in_key(anon_client: TestClient) -> None:
    for path in ("/store", "/lanes/lane-1/display", "/store/live"):
        reply = anon_client.get(path, follow_redirects=False)
        assert reply.status_code == 303
        assert reply.headers["location"] == f"/login?next={path}"
    assert anon_client.get("/", follow_redirects=False).headers["location"] == "/store"
    # a bearer header is the API's way in, not the pages'
    fetch = anon_client.get("/store/live", headers={"X-Pages-Fetch": "1"})
    assert fetch.status_code == 401


def test_login_keeps_the_key_in_an_httponly_samesite_strict_cookie(
    anon_client: TestClient, till: str
) -> None:
    form = anon_client.get("/login")
    assert form.status_code == 200
    assert '<html lang="ru">' in form.text and "API-ключ" in form.text and "Войти" in form.text
    assert "script-src 'self'" in form.headers["content-security-policy"]
    csrf_cookie = form.headers["set-cookie"]
    assert csrf_cookie.startswith(f"{CSRF_COOKIE}=") and "HttpOnly" in csrf_cookie
    assert "SameSite=strict" in csrf_cookie

    reply = sign_in(anon_client, till)
    assert reply.status_code == 303 and reply.headers["location"] == "/store"
    cookie = reply.headers["set-cookie"]
    assert cookie.startswith(f"{KEY_COOKIE}={till};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    page = anon_client.get("/store")
    assert page.status_code == 200 and "Устройства" in page.text

    out = anon_client.post("/logout", data={CSRF_FIELD: csrf_of(page)}, follow_redirects=False)
    assert out.status_code == 303 and f'{KEY_COOKIE}=""' in out.headers["set-cookie"]
    assert anon_client.get("/store", follow_redirects=False).status_code == 303


def test_a_wrong_key_is_refused_in_russian_and_no_cookie_is_set(anon_client: TestClient) -> None:
    reply = sign_in(anon_client, "not-a-key")
    assert reply.status_code == 401
    assert "Ключ неверен или отозван." in reply.text
    assert KEY_COOKIE not in reply.headers.get("set-cookie", "")


def test_an_hq_key_may_not_open_the_store_pages(anon_client: TestClient, store: Store) -> None:
    assert sign_in(anon_client, new_key(store, Scope.HQ)).status_code == 303
    reply = anon_client.get("/store")
    assert reply.status_code == 403
    assert "нужна область: till" in reply.text


def test_forms_without_the_token_or_from_another_site_are_refused(
    browser: TestClient, store: Store, till: str
) -> None:
    enrol_json(api(browser, till))
    sale = sell_json(browser, basket_json(line_json(unit_price=50_000)))
    del browser.headers["Authorization"]
    token = csrf_of(browser.get("/store"))
    with store.uow() as uow:
        queued_before = uow.session.execute(select(func.count()).select_from(ReceiptOutbox))
        before = queued_before.scalar_one()
    form = {"transaction_id": sale["transaction_id"]}

    missing = browser.post("/store/reprint", data=form, follow_redirects=False)
    wrong = browser.post(
        "/store/reprint", data={**form, CSRF_FIELD: "x" * 43}, follow_redirects=False
    )
    elsewhere = browser.post(
        "/store/reprint",
        data={**form, CSRF_FIELD: token},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    for refused in (missing, wrong, elsewhere):
        assert refused.status_code == 403
        assert "Форма устарела или отправлена с другого сайта" in refused.text
    login_without_token = browser.post("/login", data={"key": till}, follow_redirects=False)
    assert login_without_token.status_code == 403
    with store.uow() as uow:
        after = uow.session.execute(select(func.count()).select_from(ReceiptOutbox)).scalar_one()
    assert after == before  # nothing was queued

    done = browser.post("/store/reprint", data={**form, CSRF_FIELD: token}, follow_redirects=True)
    assert done.status_code == 200, done.text[-1500:]
    assert f"Чек {sale['transaction_id']} поставлен в очередь печати на кассе lane-1" in done.text
    with store.uow() as uow:
        after = uow.session.execute(select(func.count()).select_from(ReceiptOutbox)).scalar_one()
    assert after == before + 1

    unknown = browser.post("/store/reprint", data={"transaction_id": "nope", CSRF_FIELD: token})
    assert unknown.status_code == 404 and "nope" in unknown.text


def test_evaluate_publishes_the_quote_to_the_lane_and_the_display_shows_it(
    browser: TestClient, till: str
) -> None:
    hub: LaneHub = browser.app.state.hub  # type: ignore[attr-defined]
    api(browser, till)
    ivan = browser.post("/v1/customers", json={"phone": "9161234567", "name": "Иван Петров"})
    reply = browser.post(
        "/v1/identify", json={"card": ivan.json()["card_number"], "lane_id": "lane-1"}
    )
    assert reply.status_code == 200
    basket = basket_json(
        line_json(unit_price=30_000, name=SCRIPT), line_json("2", unit_price=25_000, name="Сыр")
    )
    browser.post("/v1/baskets/evaluate", json=basket)
    del browser.headers["Authorization"]

    [event] = [e for e in hub.history("lane-1") if e.type == QUOTE]
    assert event.data["customer"]["first_name"] == "Иван"
    assert "name" not in event.data["customer"]  # the display gets no surname
    assert event.data["total"] == 55_000 and event.data["hints"]

    screen = browser.get("/lanes/lane-1/display/screen")
    assert screen.status_code == 200
    text = screen.text
    assert "Здравствуйте, Иван!" in text and "Петров" not in text
    assert "+7 *** ***-45-67" in text
    assert "550,00\xa0₽" in text  # babel's Russian money, as on the receipt
    assert "Добавьте 150,00\xa0₽ — получите купон на 70,00\xa0₽" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and SCRIPT not in text
    assert hub.history("lane-2") == []  # another lane's display shows nothing of it


def test_idle_display_shows_the_enrolment_qr(browser: TestClient) -> None:
    page = browser.get("/lanes/lane-2/display")
    assert page.status_code == 200
    assert 'data-state="idle"' in page.text and "<svg" in page.text
    assert "Станьте участником программы" in page.text
    assert 'data-events="/lanes/lane-2/display/events"' in page.text
    assert browser.get("/lanes/lane-9/display").status_code == 404


def test_display_events_are_the_lanes_stream_signed_in_by_cookie(
    browser: TestClient, till: str
) -> None:
    hub: LaneHub = browser.app.state.hub  # type: ignore[attr-defined]
    with browser.stream("GET", "/lanes/lane-1/display/events") as stream:
        lines = stream.iter_lines()
        assert next(lines) == ": connected"
        state = [line for line in (next(lines) for _ in range(3)) if line]
        assert state[0] == "event: lane_state"  # every stream opens with the lane as it is now
        hub.quote_evaluated("lane-1", {"quote_id": "q1", "total": 1, "lines": []})
        event = [line for line in (next(lines) for _ in range(4)) if line]
    assert event[0].startswith("id: ") and event[1] == "event: quote"
    assert '"quote_id":"q1"' in event[2]


def test_back_office_finds_a_customer_and_escapes_names(
    browser: TestClient, till: str, store: Store
) -> None:
    api(browser, till)
    customer_id = enrol_json(browser, name=f"{SCRIPT} Петров")
    sale = sell_json(
        browser, basket_json(line_json(unit_price=80_000), customer={"phone": "9161234567"})
    )
    del browser.headers["Authorization"]
    [coupon] = sale["coupons_issued"]
    last_day = date.fromisoformat(coupon["valid_until"])  # what the receipt prints
    assert datetime.fromisoformat(coupon["expires_at"]).date() == last_day + timedelta(days=1)

    page = browser.get("/store/customers", params={"q": "8 916 123-45-67"})
    assert page.status_code == 200, page.text[-800:]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and SCRIPT not in page.text
    assert "+7 *** ***-45-67" in page.text
    assert "40 баллов" in page.text  # 5 % of 800 ₽, in Russian plural
    assert "Купите на 700 ₽ — 70 ₽ на следующую покупку" in page.text  # the coupon it earned
    assert f"до {last_day:%d.%m.%Y}" in page.text  # its last valid day, as on paper
    assert "начисление" in page.text
    card = browser.get("/store/customers", params={"q": "0000 0000 0000 0000"})
    assert card.status_code == 404 and "Покупатель не найден" in card.text
    assert customer_id

    # the program in words and today's figures
    assert "от 700,00\xa0₽ — купон на 70,00\xa0₽ на следующую покупку (14 дн.)" in page.text
    assert "каждая 6-я единица бесплатно" in page.text
    live = browser.get("/store/live").text
    assert re.search(r"Продажи</dt><dd>1</dd>", live)
    assert "800,00\xa0₽" in live


@pytest.mark.parametrize("config_extra", [RETURN_WINDOW])
def test_back_office_shows_points_still_in_the_return_window(
    browser: TestClient, till: str, store: Store
) -> None:
    start = store.now()
    store.clock = lambda: start
    api(browser, till)
    who = {"phone": "9161234567"}
    enrol_json(browser)
    sell_json(browser, basket_json(line_json(unit_price=60_000), customer=who))  # 30 points
    store.clock = lambda: start + timedelta(days=3)
    second = sell_json(browser, basket_json(line_json(unit_price=60_000), customer=who))
    del browser.headers["Authorization"]

    def pending_on_page() -> list[str]:
        page = browser.get("/store/customers", params={"q": "8 916 123-45-67"})
        assert page.status_code == 200, page.text[-800:]
        assert "<dt>Ожидают</dt>" in page.text
        return re.findall(r'data-test="pending">(.*?)</dd>', page.text)

    def day(moment: datetime) -> str:
        return f"{moment.astimezone(store.settings.store.tz):%d.%m.%Y}"

    # both sales wait; the newer one is spendable last
    assert pending_on_page() == [f"60 баллов до {day(start + timedelta(days=17))}"]
    api(browser, till)
    refund_json(browser, second["transaction_id"])
    del browser.headers["Authorization"]
    # what a refund took back no longer waits, nor does its date
    assert pending_on_page() == [f"30 баллов до {day(start + timedelta(days=14))}"]


def test_program_panel_says_where_the_program_comes_from(
    browser: TestClient, store: Store, tmp_path: Path
) -> None:
    local = browser.get("/store").text
    assert "Программа из &lt;test&gt;, без головного офиса" in local  # the settings' source

    key = create_signing_key(tmp_path / "hq.key")  # where _signed reads it
    store.settings = store.settings.model_copy(
        update={"hq": HqConfig(url="http://127.0.0.1:9", public_key=public_key_text(key),
                               api_key="plk_store_12345678")}
    )  # fmt: skip
    waiting = browser.get("/store").text
    assert "Пакета от головного офиса ещё нет — программа из &lt;test&gt;" in waiting
    assert "Синхронизаций ещё не было" in waiting

    now = store.now()
    store.clock = lambda: now
    later = now + timedelta(days=2)
    accept_bundle(store=store, raw=_signed(store, tmp_path, 2), now=now)
    accept_bundle(store=store, raw=_signed(store, tmp_path, 3, effective_from=later), now=now)
    assert apply_active(store=store, now=now) == 2
    record_sync(store=store, now=now)

    def local_time(moment: datetime) -> str:
        return f"{moment.astimezone(store.settings.store.tz):%d.%m.%Y %H:%M}"

    page = browser.get("/store").text
    assert f"Пакет головного офиса v2, действует с {local_time(now)}" in page
    assert f"Ожидает вступления: v3 с {local_time(later)}" in page
    assert f"Последняя синхронизация: {local_time(now)}" in page
    assert "Скидка 10%" in page  # the bundle's rule, in words

    failed_at = now + timedelta(minutes=5)
    record_sync(store=store, now=failed_at, error=f"head office unreachable {SCRIPT}")
    page = browser.get("/store").text
    assert f"Последняя синхронизация: {local_time(now)}" in page
    failed = f"Последняя попытка {local_time(failed_at)} не удалась: head office unreachable"
    assert f"{failed} &lt;script&gt;alert(1)&lt;/script&gt;" in page and SCRIPT not in page


def test_english_store_speaks_english(tmp_path: Any, db_url: str) -> None:
    settings = make_settings(tmp_path, db_url, {"store": {"locale": "en_US", "currency": "USD"}})
    store = Store.open(settings)
    try:
        with TestClient(create_app(settings, store=store)) as client:
            assert sign_in(client, new_key(store, Scope.TILL)).status_code == 303
            page = client.get("/store")
            assert '<html lang="en">' in page.text and "Devices" in page.text
            assert "$0.00" in page.text
            assert "Program from &lt;test&gt;, no head office" in page.text
    finally:
        store.close()


def test_docs_are_served_without_internet(anon_client: TestClient) -> None:
    local = from_this_machine(anon_client)  # docs are served to this machine by default
    for path, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        page = local.get(path)
        assert page.status_code == 200
        assert f"/static/vendor/{asset}" in page.text
        assert "cdn" not in page.text.lower() and "fonts.googleapis" not in page.text
        assert local.get(f"/static/vendor/{asset}").status_code == 200
    assert local.get("/openapi.json").status_code == 200


def test_metrics_export_business_and_device_series(
    browser: TestClient, till: str, store: Store
) -> None:
    hub: LaneHub = browser.app.state.hub  # type: ignore[attr-defined]
    hub.register_device("lane-1/printer", "lane-1", "printer", lambda: {
        "connected": False, "state": "paper_out", "last_error": "paper out", "queue_length": 2
    })  # fmt: skip
    api(browser, till)
    enrol_json(browser)
    sell_json(browser, basket_json(line_json(unit_price=80_000), customer={"phone": "9161234567"}))
    text = from_this_machine(browser).get("/metrics").text  # metrics: this machine only
    assert "pos_loyalty_sales_total 1.0" in text
    assert "pos_loyalty_sales_amount_minor_total 80000.0" in text
    assert "pos_loyalty_points_issued_total 40.0" in text
    assert "pos_loyalty_coupons_issued_total 1.0" in text
    assert "pos_loyalty_coupons_redeemed_total 0.0" in text
    assert 'pos_loyalty_device_up{device="lane-1/printer",kind="printer",lane="lane-1"} 0.0' in text
    assert 'pos_loyalty_print_queue_depth{lane="lane-1"} 2.0' in text
    assert f'pos_loyalty_rules_info{{version="{store.rules.version}"}} 1.0' in text


def test_back_office_stream_merges_every_lane_but_not_quotes(browser: TestClient) -> None:
    hub: LaneHub = browser.app.state.hub  # type: ignore[attr-defined]
    with browser.stream("GET", "/store/events") as stream:
        lines = stream.iter_lines()
        assert next(lines) == ": connected"
        hub.quote_evaluated("lane-1", {"quote_id": "q1", "total": 1, "lines": []})
        hub.publish("lane-2", "device_fault", {"device": "lane-2/scanner", "message": "unplugged"})
        event = [line for line in (next(lines) for _ in range(4)) if line]
    assert event[1] == "event: device_fault"
    assert event[2] == 'data: {"lane_id": "lane-2", "type": "device_fault"}'
