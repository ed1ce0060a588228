"""Enrolment and identification through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import func, select

from api.app import create_app
from pos_loyalty.apikeys.models import ApiKey, Scope
from pos_loyalty.customers.models import Card, Customer
from pos_loyalty.identity.tokens import mint_qr
from pos_loyalty.security import StoreSecret
from pos_loyalty.settings import Settings
from pos_loyalty.store import Store
from tests.conftest import from_this_machine, make_settings, new_key
from tests.factories import basket_json

EXE = str(Path(sys.executable).with_name("pos-loyalty"))
IVAN = {"phone": "8 (916) 123-45-67", "name": "Иван Петров", "birthday": "1985-03-14"}


def enrol(client: TestClient, body: dict[str, Any] | None = None) -> dict[str, Any]:
    reply = client.post("/v1/customers", json=body or IVAN)
    assert reply.status_code == 201, reply.text
    data: dict[str, Any] = reply.json()
    return data


def customer_count(store: Store) -> int:
    with store.uow() as uow:
        return uow.session.exec(select(func.count()).select_from(Customer)).one()


def test_enrol_returns_customer_with_card_and_qr(client: TestClient) -> None:
    data = enrol(client)
    assert data["phone"] == "+79161234567"
    assert data["name"] == "Иван Петров"
    assert data["birthday"] == "1985-03-14"
    assert data["card_number"].startswith("2775") and len(data["card_number"]) == 16
    assert data["qr"].startswith(f"PLQ1.{data['id']}.")
    assert data["balance"] == 0


def test_profile_masks_the_phone_unless_the_store_keeps_it(client: TestClient) -> None:
    data = enrol(client)
    profile = client.get(f"/v1/customers/{data['id']}").json()
    assert profile["phone"] == "+7 *** ***-45-67"
    assert profile["card_numbers"] == [data["card_number"]]


@pytest.mark.parametrize("config_extra", [{"privacy": {"store_plain_phone": True}}])
def test_plain_phone_kept_when_configured(client: TestClient) -> None:
    data = enrol(client)
    assert client.get(f"/v1/customers/{data['id']}").json()["phone"] == "+79161234567"


@pytest.mark.parametrize("spelling", ["+7 916 1234567", "9161234567", "+79161234567"])
def test_second_enrolment_of_the_same_number_is_409(client: TestClient, spelling: str) -> None:
    enrol(client)
    reply = client.post("/v1/customers", json={"phone": spelling, "name": "Другой"})
    assert reply.status_code == 409
    assert reply.json()["error"]["code"] == "phone_taken"


def test_given_card_must_pass_luhn_and_be_free(client: TestClient) -> None:
    ok = enrol(client, {**IVAN, "card_number": "4561 2612 1234 5467"})
    assert ok["card_number"] == "4561261212345467"
    bad = client.post(
        "/v1/customers",
        json={"phone": "9031112233", "name": "A", "card_number": "4561261212345468"},
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "card_bad_checksum"
    taken = client.post(
        "/v1/customers",
        json={"phone": "9031112233", "name": "A", "card_number": "4561261212345467"},
    )
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "card_taken"


def named_fields(error: dict[str, Any]) -> set[str]:
    """The fields an error names: each validation problem's, or a domain error's one field."""
    details = error["details"]
    if isinstance(details, list):
        return {problem["field"] for problem in details}
    if isinstance(details, dict) and "field" in details:
        return {details["field"]}
    return set()


def rows_written(store: Store) -> tuple[int, int]:
    with store.uow() as uow:
        cards = uow.session.exec(select(func.count()).select_from(Card)).one()
    return customer_count(store), cards


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**IVAN, "nickname": "Ваня"}, "nickname"),
        ({**IVAN, "name": 42}, "name"),
        ({**IVAN, "phone": 9161234567}, "phone"),
        ({**IVAN, "consents": ["sms"]}, "consents"),
        ({**IVAN, "consents": {"sms": "yes"}}, "consents.sms"),
        ({**IVAN, "birthday": 0}, "birthday"),
        ({**IVAN, "name": "я" * 201}, "name"),
        ({**IVAN, "phone": "9" * 33}, "phone"),
        ({**IVAN, "card_number": "1" * 65}, "card_number"),
        ({**IVAN, "birthday": "14.03.1985"}, "birthday"),
        ({**IVAN, "birthday": "2999-01-01"}, "birthday"),
        ({"name": "Иван"}, "phone"),
        ({**IVAN, "phone": "12345"}, "phone"),
        ({**IVAN, "card_number": "abcd-efgh"}, "card_number"),
        ({**IVAN, "card_number": "²" * 16}, "card_number"),  # str.isdigit() says yes
        ({**IVAN, "card_number": "４５６１２６１２１２３４５４６７"}, "card_number"),
        ({**IVAN, "name": "   "}, "name"),
        ({**IVAN, "name": "Иван\x00Петров"}, "name"),  # PostgreSQL cannot store a NUL
        ({**IVAN, "name": "Иван\x1b@"}, "name"),  # ESC @ would reset the receipt printer
    ],
)
def test_bad_enrolment_is_422_naming_the_field_and_writes_nothing(
    client: TestClient, store: Store, body: dict[str, Any], field: str
) -> None:
    reply = client.post("/v1/customers", json=body)
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert named_fields(error) == {field}, error
    assert rows_written(store) == (0, 0)


@pytest.mark.parametrize("path", ["/v1/customers", "/v1/identify"])
@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b"", "application/json"),
        (b"{not json", "application/json"),
        (b"[1,2]", "application/json"),
        (b"null", "application/json"),
        ('{"phone": "\u00e9'.encode(), "application/json"),
        (b"\xff\xfe", "application/json"),
        (b'{"phone": "9161234567", "name": "A"}', "text/plain"),
        (b"phone=9161234567&name=A", "application/x-www-form-urlencoded"),
    ],
)
def test_empty_or_non_json_body_is_422_naming_the_body(
    client: TestClient, store: Store, path: str, raw: bytes, content_type: str
) -> None:
    reply = client.post(path, content=raw, headers={"Content-Type": content_type})
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["code"] == "validation_error"
    assert named_fields(error) == {"body"} and error["message"].startswith("body: ")
    assert rows_written(store) == (0, 0)


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"phone": "9161234567", "lane": "lane-1"}, "lane", "validation_error"),
        ({"phone": 9161234567}, "phone", "validation_error"),
        ({"card": 4561261212345467}, "card", "validation_error"),
        ({"qr": ["PLQ1"]}, "qr", "validation_error"),
        ({"phone": "9" * 33}, "phone", "validation_error"),
        ({"card": "4" * 65}, "card", "validation_error"),
        ({"qr": "Q" * 513}, "qr", "validation_error"),
        ({"phone": ""}, "phone", "validation_error"),
        ({"card": "4561-ABCD-1234"}, "card", "card_malformed"),
        ({"card": "²" * 16}, "card", "card_malformed"),
        ({"card": "４５６１２６１２１２３４５４６７"}, "card", "card_malformed"),
        ({"card": "4561\x002612"}, "card", "card_malformed"),
        ({"card": "%B4561261212345467"}, "card", "card_malformed"),
        ({"qr": "PLQ1.\x00"}, "qr", "qr_malformed"),
        ({"phone": "дом"}, "phone", "validation_error"),  # not a phone spelling (schema pattern)
        ({}, "body", "validation_error"),
        ({"phone": "9161234567", "qr": "PLQ1.x"}, "body", "validation_error"),
    ],
)
def test_bad_identification_is_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str, code: str
) -> None:
    enrol(client)
    reply = client.post("/v1/identify", json=body)
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert (error["code"], named_fields(error)) == (code, {field}), error


@pytest.mark.parametrize("suffix", ["", "/qr.png", "/qr.svg", "/ledger"])
@pytest.mark.parametrize("customer_id", ["a%00b", "not-an-id", "F" * 32])
def test_malformed_customer_id_is_422_naming_it(
    client: TestClient, suffix: str, customer_id: str
) -> None:
    reply = client.get(f"/v1/customers/{customer_id}{suffix}")
    assert reply.status_code == 422, reply.text
    assert named_fields(reply.json()["error"]) == {"customer_id"}


def test_identify_by_every_spelling_and_form(client: TestClient) -> None:
    data = enrol(client)
    card = data["card_number"]
    for body in [
        {"phone": "8 (916) 123-45-67"},
        {"phone": "+7 916 1234567"},
        {"phone": "9161234567"},
        {"card": card},
        {"card": f"]E0{card}"},
        {"card": f"%B{card}^PETROV/IVAN^29121010000?"},
        {"card": f";{card}=2912101?"},
        {"qr": data["qr"]},
    ]:
        reply = client.post("/v1/identify", json=body)
        assert reply.status_code == 200, (body, reply.text)
        assert reply.json()["customer"]["id"] == data["id"]
        assert reply.json()["method"] == next(iter(body))


def test_identify_refusals_have_distinct_codes(client: TestClient, store: Store) -> None:
    data = enrol(client)
    foreign = mint_qr(StoreSecret(b"z" * 32), data["id"], 1_700_000_000)
    unknown_qr = mint_qr(store.secret, "f" * 32, 1_700_000_000)
    cases = [
        ({"qr": "PLQ1.garbage"}, 422, "qr_malformed"),
        ({"qr": foreign}, 422, "qr_forged"),
        ({"qr": unknown_qr}, 404, "customer_not_found"),
        (
            {
                "card": data["card_number"][:-1] + "0"
                if data["card_number"][-1] != "0"
                else data["card_number"][:-1] + "1"
            },
            422,
            "card_bad_checksum",
        ),
        ({"card": "12ab"}, 422, "card_malformed"),
        ({"card": "4561261212345467"}, 404, "customer_not_found"),
        ({"phone": "+7 999 000-00-00"}, 404, "customer_not_found"),
        ({"phone": "123"}, 422, "phone_invalid"),
        ({}, 422, "validation_error"),
        ({"phone": "9161234567", "card": data["card_number"]}, 422, "validation_error"),
        ({"qr": "Q" * 513}, 422, "validation_error"),
    ]
    for body, status, code in cases:
        reply = client.post("/v1/identify", json=body)
        assert (reply.status_code, reply.json()["error"]["code"]) == (status, code), body


@pytest.mark.parametrize("config_extra", [{"identity": {"qr_max_age_s": 300}}])
def test_rotating_qr_expires(client: TestClient, store: Store) -> None:
    data = enrol(client)
    old = mint_qr(store.secret, data["id"], int(store.now().timestamp()) - 3600)
    reply = client.post("/v1/identify", json={"qr": old})
    assert reply.status_code == 422 and reply.json()["error"]["code"] == "qr_expired"
    assert client.post("/v1/identify", json={"qr": data["qr"]}).status_code == 200


def test_qr_png_decodes_to_a_payload_that_identifies(client: TestClient) -> None:
    data = enrol(client)
    reply = client.get(f"/v1/customers/{data['id']}/qr.png")
    assert reply.headers["content-type"] == "image/png"
    import io

    image = Image.open(io.BytesIO(reply.content)).convert("L")
    decoded = zxingcpp.read_barcodes(np.asarray(image))
    assert len(decoded) == 1
    assert (
        client.post("/v1/identify", json={"qr": decoded[0].text}).json()["customer"]["id"]
        == data["id"]
    )
    svg = client.get(f"/v1/customers/{data['id']}/qr.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content


def test_unknown_customer_is_404(client: TestClient) -> None:
    reply = client.get("/v1/customers/" + "0" * 32)
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "customer_not_found"


def test_keys_and_scopes(anon_client: TestClient, store: Store) -> None:
    no_key = anon_client.post("/v1/identify", json={"phone": "9161234567"})
    assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "unauthorized"
    assert no_key.headers["www-authenticate"] == "Bearer"
    bad = anon_client.post(
        "/v1/identify", json={"phone": "9161234567"}, headers={"Authorization": "Bearer nope"}
    )
    assert bad.status_code == 401
    hq = new_key(store, Scope.HQ)
    wrong = anon_client.post(
        "/v1/identify", json={"phone": "9161234567"}, headers={"Authorization": f"Bearer {hq}"}
    )
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "forbidden"
    admin = new_key(store, Scope.ADMIN)
    ok = anon_client.post(
        "/v1/identify", json={"phone": "9161234567"}, headers={"Authorization": f"Bearer {admin}"}
    )
    assert ok.status_code == 404  # admitted, and nobody is enrolled


@pytest.mark.parametrize("path", ["/v1/baskets/evaluate", "/v1/transactions"])
def test_the_till_routes_admit_till_and_admin_keys_only(
    anon_client: TestClient, store: Store, path: str
) -> None:
    basket = basket_json()

    def post(scope: Scope) -> Any:
        headers = {"Authorization": f"Bearer {new_key(store, scope)}", "Idempotency-Key": scope}
        return anon_client.post(path, json=basket, headers=headers)

    for refused in (Scope.HQ, Scope.STORE):
        answer = post(refused)
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden"
    for admitted in (Scope.TILL, Scope.ADMIN):
        assert post(admitted).status_code in (200, 201)


def test_health_metrics_and_docs(client: TestClient) -> None:
    enrol(client)
    client.post("/v1/identify", json={"phone": "9161234567"})
    client.post("/v1/identify", json={"qr": "PLQ1.bad"})
    assert client.get("/healthz").json() == {"status": "ok"}
    text = from_this_machine(client).get("/metrics").text
    assert 'pos_loyalty_identifications_total{method="phone",outcome="identified"} 1.0' in text
    assert 'pos_loyalty_identifications_total{method="qr",outcome="qr_malformed"} 1.0' in text
    # The latency histogram is per route template (not per raw path) and status.
    assert (
        'pos_loyalty_http_request_duration_seconds_count{method="POST",route="/v1/identify",'
        'status="200"} 1.0' in text
    )
    assert 'le="0.005",method="POST",route="/v1/customers",status="201"' in text
    assert from_this_machine(client).get("/docs").status_code == 200
    assert "/v1/identify" in from_this_machine(client).get("/openapi.json").json()["paths"]


def test_unknown_route_and_method_use_the_error_shape(client: TestClient) -> None:
    assert client.get("/v1/nope").json()["error"]["code"] == "not_found"
    assert client.delete("/v1/identify").json()["error"]["code"] == "method_not_allowed"


def test_keys_create_prints_the_key_once_and_stores_only_its_hash(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[store]\nid = "msk-001"\nname = "Магазин"\ndatabase_url = "{settings.database_url}"\n'
        f'secret_file = "{settings.secret_path}"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("POS_LOYALTY_")}
    created = subprocess.run(
        [EXE, "keys", "create", "--scope", "hq", "--label", "office", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.splitlines()[-1]
    assert token.startswith("plk_hq_") and len(token) > 30
    assert (created.stdout + created.stderr).count(token) == 1
    with store.uow() as uow:
        keys = [key.model_dump() for key in uow.session.exec(select(ApiKey))]
    assert len(keys) == 1 and (keys[0]["scope"], keys[0]["label"]) == ("hq", "office")
    assert keys[0]["key_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(keys)
    if store.engine.dialect.name == "sqlite":
        stored = b"".join(p.read_bytes() for p in tmp_path.glob("store.db*"))
        assert token.encode() not in stored
    assert store.secret.key not in (created.stdout + created.stderr).encode()


@pytest.mark.pg
def test_a_value_postgresql_refuses_is_422_not_500(pg_database: str, tmp_path: Path) -> None:
    """The last line of defence: input no check caught, that PostgreSQL cannot store (a NUL)."""
    store = Store.open(make_settings(tmp_path, pg_database))
    app = create_app(store.settings, store=store)

    @app.get("/probe/{value}")
    def probe(value: str) -> dict[str, int]:
        with store.uow() as uow:
            found = uow.session.exec(select(Customer).where(Customer.name == value)).all()
        return {"found": len(found)}

    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.get("/probe/plain").json() == {"found": 0}
            reply = client.get("/probe/a%00b")
    finally:
        store.close()
    assert reply.status_code == 422
    assert reply.json()["error"]["code"] == "value_not_storable"


def test_a_customer_with_several_cards_is_found_by_each(client: TestClient, store: Store) -> None:
    data = enrol(client)
    cards = f"/v1/customers/{data['id']}/cards"
    handed = client.post(cards, json={"card_number": "4561 2612 1234 5467"})
    assert handed.status_code == 201, handed.text
    assert handed.json()["card_number"] == "4561261212345467"
    issued = client.post(cards, json={})  # none handed over: the store issues one
    assert issued.status_code == 201, issued.text
    new = issued.json()["card_number"]
    assert new.startswith("2775") and len(new) == 16 and new not in (data["card_number"],)
    assert sorted(issued.json()["customer"]["card_numbers"]) == sorted(
        [data["card_number"], "4561261212345467", new]
    )
    for card in (data["card_number"], "4561261212345467", new):
        reply = client.post("/v1/identify", json={"card": f";{card}=2912101?"})
        assert reply.json()["customer"]["id"] == data["id"]


def test_a_card_that_cannot_be_attached_is_refused_and_nothing_is_written(
    client: TestClient, store: Store
) -> None:
    data = enrol(client)
    other = enrol(client, {"phone": "9035556677", "name": "Пётр Сидоров"})
    cards = f"/v1/customers/{data['id']}/cards"
    refusals = [
        (cards, {"card_number": other["card_number"]}, 409, "card_taken"),
        (cards, {"card_number": "4561 2612 1234 5468"}, 422, "card_bad_checksum"),
        (cards, {"card_number": "45612612x"}, 422, "card_malformed"),
        (cards, {"card": "4561261212345467"}, 422, "validation_error"),  # unknown field
        ("/v1/customers/" + "0" * 32 + "/cards", {}, 404, "customer_not_found"),
    ]
    for path, body, status, code in refusals:
        reply = client.post(path, json=body)
        assert (reply.status_code, reply.json()["error"]["code"]) == (status, code), body
    with store.uow() as uow:
        numbers = uow.session.exec(select(Card.number)).all()
    assert sorted(numbers) == sorted([data["card_number"], other["card_number"]])


CUSTOMER_ROUTES = [
    ("POST", "/v1/customers", IVAN),
    ("POST", "/v1/identify", {"phone": "9161234567"}),
    ("GET", "/v1/customers/" + "0" * 32, None),
    ("GET", "/v1/customers/" + "0" * 32 + "/qr.png", None),
    ("GET", "/v1/customers/" + "0" * 32 + "/qr.svg", None),
    ("GET", "/v1/customers/" + "0" * 32 + "/ledger", None),
    ("POST", "/v1/customers/" + "0" * 32 + "/cards", {}),
]


@pytest.mark.parametrize(("method", "path", "body"), CUSTOMER_ROUTES)
def test_every_customer_route_needs_a_till_key(
    anon_client: TestClient, store: Store, method: str, path: str, body: Any
) -> None:
    hq, revoked = new_key(store, Scope.HQ), new_key(store, Scope.TILL)
    with store.uow(write=True) as uow:
        for key in uow.session.exec(select(ApiKey).where(ApiKey.key_hash == sha256(revoked))):
            key.revoked_at = store.now()
        uow.commit()
    for authorization, status in [
        (None, 401),
        ("Basic dXNlcjpwYXNz", 401),
        ("Bearer ", 401),
        (f"Bearer {revoked}", 401),
        (f"Bearer {hq}", 403),
    ]:
        headers = {"Authorization": authorization} if authorization else {}
        reply = anon_client.request(method, path, json=body, headers=headers)
        assert reply.status_code == status, (authorization, reply.text)
        assert reply.json()["error"]["code"] == {401: "unauthorized", 403: "forbidden"}[status]
    assert customer_count(store) == 0


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("before=0", "before"),
        (f"before={2**63}", "before"),
        ("limit=201", "limit"),
        ("limit=x", "limit"),
    ],
)
def test_bad_ledger_page_is_422_naming_the_parameter(
    client: TestClient, query: str, field: str
) -> None:
    data = enrol(client)
    reply = client.get(f"/v1/customers/{data['id']}/ledger?{query}")
    assert reply.status_code == 422, reply.text
    assert named_fields(reply.json()["error"]) == {field}
