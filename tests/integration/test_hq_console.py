"""The head-office console (`/hq`) on both databases: sign-in by a key of scope hq only, the
compiler's messages at the rule and key, publish, diff, roll back, the dry run with its chart,
the fleet, and the reports built from what the stores send with their pulls; every form refuses
a post without its token or from another site, and outside text is escaped."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.pages.session import CSRF_FIELD
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.hq.figures import StoreFigures, figures_from_query
from pos_loyalty.hq.fleet import register_store
from pos_loyalty.hq.publish import list_bundles
from pos_loyalty.hq.signing import create_signing_key
from pos_loyalty.store import Store
from tests.conftest import make_settings, new_key
from tests.factories import SALE_RULES, basket_json, enrol_json, line_json, sell_json

SCRIPT = "<script>alert(1)</script>"
GOOD = """
[points]
point_value_minor = 100

[[rules]]
id = "bonus-5"
kind = "points"
label = "Бонусы 5%"
earn_percent = 5
"""
BAD = (
    GOOD
    + """
[[rules]]
id = "promo"
kind = "discount"
label = "Скидка"
applies_to = "basket"
percent = 150
"""
)


@pytest.fixture
def config_extra(tmp_path: Path) -> dict[str, Any]:
    create_signing_key(tmp_path / "hq.key")
    return {**SALE_RULES, "head_office": {"signing_key": str(tmp_path / "hq.key")}}


def csrf_of(page: Any) -> str:
    match = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


def sign_in(client: TestClient, key: str, next_path: str = "/hq") -> Any:
    token = csrf_of(client.get("/login"))
    return client.post(
        "/login", data={CSRF_FIELD: token, "key": key, "next": next_path}, follow_redirects=False
    )


@pytest.fixture
def console(anon_client: TestClient, store: Store) -> TestClient:
    assert sign_in(anon_client, new_key(store, Scope.HQ)).status_code == 303
    return anon_client


def upload(console: TestClient, program: str, action: str = "check", **fields: str) -> Any:
    token = csrf_of(console.get("/hq"))
    body = {CSRF_FIELD: token, "program": program, "action": action, **fields}
    return console.post("/hq/bundles", data=body, follow_redirects=False)


def versions(store: Store) -> list[int]:
    with store.uow() as uow:
        return [row.version for row in list_bundles(uow=uow)]


def a_till(client: TestClient, store: Store) -> TestClient:
    """The same app as a till calls it, with its own headers (the console keeps its cookie)."""
    key = new_key(store, Scope.TILL)
    return TestClient(client.app, headers={"Authorization": f"Bearer {key}"})


def register(store: Store, store_id: str, name: str = "", region: str = "") -> str:
    with store.uow(write=True) as uow:
        return register_store(uow=uow, store_id=store_id, name=name, region=region)


def test_only_a_signed_in_hq_key_opens_the_console(anon_client: TestClient, store: Store) -> None:
    reply = anon_client.get("/hq", follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == "/login?next=/hq"
    assert anon_client.get("/", follow_redirects=False).headers["location"] == "/hq"

    assert sign_in(anon_client, new_key(store, Scope.TILL)).status_code == 303
    refused = anon_client.get("/hq")
    assert refused.status_code == 403 and "нужна область: hq" in refused.text
    assert "Версии программы" not in refused.text
    assert anon_client.get("/hq/fleet").status_code == 403
    assert anon_client.get("/hq/reports").status_code == 403

    assert sign_in(anon_client, new_key(store, Scope.HQ)).status_code == 303
    page = anon_client.get("/hq")
    assert page.status_code == 200
    assert "Версии программы" in page.text and "Ещё ничего не опубликовано." in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_the_console_is_only_on_head_office(tmp_path: Path, store: Store) -> None:
    settings = make_settings(tmp_path, str(store.engine.url), {})
    other = Store.open(settings)
    try:
        with TestClient(create_app(settings, store=other)) as client:
            assert sign_in(client, new_key(other, Scope.HQ)).status_code == 303
            assert client.get("/hq").status_code == 404
            assert client.get("/", follow_redirects=False).headers["location"] == "/store"
    finally:
        other.close()


def test_an_invalid_rule_shows_the_compilers_message_at_its_rule_and_key(
    console: TestClient, store: Store
) -> None:
    reply = upload(console, BAD, action="publish")
    assert reply.status_code == 422
    problem = re.search(r'<tr data-test="problem">(.*?)</tr>', reply.text, re.S)
    assert problem, reply.text
    cells = re.findall(r"<td[^>]*>(.*?)</td>", problem.group(1), re.S)
    line = BAD.splitlines().index("percent = 150") + 1
    assert cells[0] == "<code>rules[1] (&#34;promo&#34;)</code>"
    assert cells[1] == "<code>percent</code>" and cells[2] == str(line)
    assert "150" in cells[3]  # the compiler's own words
    assert f'<li value="{line}" class="bad"><code>percent = 150</code>' in reply.text
    assert versions(store) == []  # nothing published

    toml = upload(console, "[[rules]\nid = 1")
    assert toml.status_code == 422 and "not valid TOML" in toml.text


def test_check_publish_diff_and_roll_back(console: TestClient, store: Store) -> None:
    register(store, "msk-001", region="msk")
    checked = upload(console, GOOD)
    assert checked.status_code == 200 and versions(store) == []
    assert "Программа верна: 1 правил(а)." in checked.text
    assert "5\xa0% оплаченного деньгами — баллами" in checked.text  # the rule in words

    published = upload(
        console,
        GOOD,
        action="publish",
        effective_from="2030-01-01T09:00",
        stores="msk-001",
        note=f"Осень {SCRIPT}",
    )
    assert published.status_code == 303 and published.headers["location"] == "/hq?published=1"
    page = console.get("/hq?published=1")
    assert "Опубликована версия v1." in page.text
    assert "01.01.2030 09:00" in page.text and "магазины: msk-001" in page.text
    assert "Осень &lt;script&gt;alert(1)&lt;/script&gt;" in page.text and SCRIPT not in page.text
    assert "«test hq»" in page.text  # who published

    unknown = upload(console, GOOD, action="publish", stores="spb-404")
    assert unknown.status_code == 422 and "unknown targets: store &#39;spb-404&#39;" in unknown.text

    assert upload(console, GOOD.replace("= 5\n", "= 7\n"), action="publish").status_code == 303
    again = upload(console, GOOD)
    assert "Отличия от v2" in again.text
    assert 'earn_percent changed from "7" to "5"' in html.unescape(again.text)
    diff = console.get("/hq/diff?old=1&new=2")
    assert 'rule "bonus-5": earn_percent changed from "5" to "7"' in html.unescape(diff.text)

    token = csrf_of(console.get("/hq"))
    back = console.post("/hq/bundles/1/rollback", data={CSRF_FIELD: token}, follow_redirects=False)
    assert back.headers["location"] == "/hq?published=3"
    assert "откат к v1" in console.get("/hq").text and versions(store) == [3, 2, 1]


def test_forms_without_the_token_or_from_another_site_change_nothing(
    console: TestClient, store: Store
) -> None:
    form = {"program": GOOD, "action": "publish"}
    missing = console.post("/hq/bundles", data=form)
    wrong = console.post("/hq/bundles", data={**form, CSRF_FIELD: "x" * 43})
    token = csrf_of(console.get("/hq"))
    elsewhere = console.post(
        "/hq/bundles", data={**form, CSRF_FIELD: token}, headers={"Origin": "https://evil.example"}
    )
    for reply in (missing, wrong, elsewhere):
        assert reply.status_code == 403 and "Форма устарела" in reply.text
    assert versions(store) == []
    assert upload(console, GOOD, action="publish").status_code == 303
    rollback = console.post("/hq/bundles/1/rollback", data={})
    assert rollback.status_code == 403 and versions(store) == [1]


def test_the_dry_run_replays_sales_per_rule_with_a_chart(
    console: TestClient, anon_client: TestClient, store: Store
) -> None:
    assert upload(console, GOOD, action="publish").status_code == 303
    richer = GOOD.replace("earn_percent = 5", "earn_percent = 10")
    assert upload(console, richer, action="publish").status_code == 303
    till = TestClient(
        anon_client.app, headers={"Authorization": f"Bearer {new_key(store, Scope.TILL)}"}
    )
    enrol_json(till)
    sell_json(till, basket_json(line_json(unit_price=50_000), customer={"phone": "9161234567"}))

    page = console.get("/hq/bundles/2/dry-run?since=30d")
    assert page.status_code == 200
    assert "Прогноз v2 против v1" in page.text and "Продаж пересчитано: 1" in page.text
    row = re.search(r"<tr><td><b>Бонусы 5%</b>.*?</tr>", page.text, re.S)
    assert row, page.text
    numbers = re.findall(r'<td class="num">([^<]*)</td>', row.group(0))
    assert numbers[:6] == ["1", "1", "0,00\xa0₽", "0,00\xa0₽", "25", "50"]
    assert '<svg class="chart"' in page.text and "<script" not in page.text.split("</head>")[1]
    assert console.get("/hq/bundles/9/dry-run").status_code == 404


def _pull(client: TestClient, key: str, store_id: str, **query: str) -> None:
    reply = client.get(
        "/v1/hq/bundles/current",
        params={"store": store_id, **query},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert reply.status_code in (200, 404), reply.text


def test_the_fleet_shows_each_store_its_version_and_failures(
    console: TestClient, store: Store
) -> None:
    north = register(store, "spb-001", name=f"Невский {SCRIPT}", region="north")
    register(store, "krd-001", region="south")
    assert upload(console, GOOD, action="publish").status_code == 303
    _pull(console, north, "spb-001", active="1", software="0.9", error=f"disk {SCRIPT}")

    page = console.get("/hq/fleet")
    assert page.status_code == 200 and 'data-fragment="/hq/fleet/live"' in page.text
    live = console.get("/hq/fleet/live").text
    spb = re.search(r'<tr data-store="spb-001".*?</tr>', live, re.S)
    krd = re.search(r'<tr data-store="krd-001".*?</tr>', live, re.S)
    assert spb and krd
    assert '<td class="num" data-test="active">v1</td>' in spb.group(0)
    assert "Невский &lt;script&gt;" in spb.group(0) and SCRIPT not in live
    assert "Ошибка: disk &lt;script&gt;" in spb.group(0)
    assert "не выходил на связь" in krd.group(0)


def test_reports_sum_what_the_stores_sent_and_the_results_of_this_database(
    console: TestClient, anon_client: TestClient, store: Store
) -> None:
    page = console.get("/hq/reports")
    assert "Магазины ещё не прислали отчётов." in page.text  # nothing invented
    north = register(store, "spb-001")
    south = register(store, "krd-001")
    twin = register(store, "krd-002")  # on krd-001's database: its books are the same
    figures = StoreFigures(
        liability_points=1234,
        liability=123_400,
        coupons_issued=10,
        coupons_redeemed=4,
        coupons_expired=3,
        customers=50,
        segments={"champions": 5, "lapsed": 7},
        database="postgresql://db.krd:5432/chain",
    )
    _pull(console, south, "krd-001", **figures.to_query())
    _pull(console, twin, "krd-002", **figures.to_query())
    small = StoreFigures(100, 10_000, 2, 1, 0, 5, {"champions": 1}, database="sqlite:spb-001")
    _pull(console, north, "spb-001", **small.to_query())
    till = TestClient(
        anon_client.app, headers={"Authorization": f"Bearer {new_key(store, Scope.TILL)}"}
    )
    sell_json(till, basket_json(line_json(unit_price=80_000)))

    page = console.get("/hq/reports")
    assert page.status_code == 200
    liability = re.search(r'data-test="liability">(.*?)</p>', page.text)
    assert liability, page.text
    # krd-002 is not counted again
    assert liability.group(1) == "1\xa0334 балла на 1\xa0334,00\xa0₽"
    funnel = re.search(r'<dl class="figures" data-test="funnel">(.*?)</dl>', page.text, re.S)
    assert funnel and re.findall(r"<dd>(\d+)</dd>", funnel.group(1)) == ["12", "5", "3"]
    rfm = re.search(r'<table class="small" data-test="rfm">(.*?)</table>', page.text, re.S)
    assert rfm and '<td>Чемпионы</td><td class="num">6</td>' in rfm.group(1)
    assert 'data-test="liability-chart"' in page.text and "<polyline" in page.text
    results = re.search(r'data-test="results">(.*?)</table>', page.text, re.S)
    assert results and "<code>spend-700-get-70</code>" in results.group(1)  # the 800 ₽ sale
    assert 'data-test="results-chart"' in page.text


def test_a_malformed_report_is_ignored_and_the_pull_still_counts() -> None:
    good = StoreFigures(1, 100, 0, 0, 0, 1, {"new": 1}).to_query()
    assert figures_from_query(good) == StoreFigures(1, 100, 0, 0, 0, 1, {"new": 1})
    assert figures_from_query({}) is None  # an older store
    assert figures_from_query({**good, "liability": "-5"}) is None
    assert figures_from_query({**good, "segments": "<b>:1"}) is None
