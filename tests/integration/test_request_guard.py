"""What the API refuses before a route reads the body: requests without a valid key (401), bodies
over the route's cap (413, declared or chunked), bodies that are not UTF-8 JSON (422 naming the
body); and who may read `/docs`, `/openapi.json`, `/redoc` and `/metrics` (`[api] open_docs`).

The size and key checks are shown on a real uvicorn server over a real socket: the refusal
arrives while the client has sent only the first part of a body it announced as 500 MB."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.store import Store
from tests.conftest import from_this_machine, new_key
from tests.factories import basket_json, line_json

IVAN = {"phone": "9161234567", "name": "Иван Петров"}
DOCS = ["/docs", "/redoc", "/openapi.json", "/metrics"]
REMOTE = ("192.0.2.10", 41000)  # a till elsewhere on the store's network
TIMEOUT = 60.0  # generous: a busy machine; every wait ends as soon as its answer comes


@contextmanager
def serving(store: Store, **api: Any) -> Iterator[int]:
    """The app on a real uvicorn server on a free port of 127.0.0.1; yields the port."""
    settings = store.settings.model_copy(update={"api": store.settings.api.model_copy(update=api)})
    app = create_app(settings, store=store)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)


def status_of(raw: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body.startswith(b"{") else {}


def read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes or has sent a complete JSON answer."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep and b"content-length:" in head.lower():
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            if len(body) >= length:
                return data


def post_partly(
    port: int, path: str, headers: dict[str, str], first_part: bytes, *, chunked: bool = False
) -> tuple[int, dict[str, Any], int]:
    """Send a request's head and the start of its body, then keep sending body until the server
    answers; returns the status, the JSON body and how many body bytes were sent."""
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sent = 0
    with closing(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)) as sock:
        sock.sendall(head.encode("latin-1"))
        piece = first_part
        for _ in range(64):  # at most 64 pieces; the answer comes long before
            frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and hung up
            sent += len(piece)
            sock.settimeout(0.05)
            try:
                peek = sock.recv(1, socket.MSG_PEEK)
            except TimeoutError:
                continue
            finally:
                sock.settimeout(TIMEOUT)
            if peek:
                break
        status, body = status_of(read_answer(sock))
    return status, body, sent


def post_whole(port: int, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with closing(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)) as sock:
        sock.sendall(head.encode("latin-1") + body)
        return status_of(read_answer(sock))


def test_a_huge_body_without_a_key_is_401_before_it_is_read(store: Store) -> None:
    with serving(store) as port:
        status, body, sent = post_partly(
            port,
            "/v1/customers",
            {"Content-Type": "application/json", "Content-Length": str(500 * 2**20)},
            b"{" + b" " * (2**20),
        )
    # The answer came while at most 64 of the 500 MB announced had been sent: the server refused
    # without reading the body (before, it read all 500 MB and this never returned).
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert 0 < sent <= 64 * (2**20 + 1)


def test_a_body_over_the_cap_with_a_key_is_413(store: Store) -> None:
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {new_key(store, Scope.TILL)}",
    }
    with serving(store, max_body_bytes=4096) as port:
        declared = post_partly(
            port, "/v1/customers", {**headers, "Content-Length": str(500 * 2**20)}, b"{"
        )
        chunked = post_partly(
            port,
            "/v1/customers",
            {**headers, "Transfer-Encoding": "chunked"},
            b'{"name": "' + b"x" * 16384,
            chunked=True,
        )
        # A basket may be bigger than the small cap: evaluate has its own.
        basket = json.dumps(basket_json(*[line_json(f"sku-{n}") for n in range(100)])).encode()
        assert len(basket) > 4096
        fits = post_whole(
            port, "/v1/baskets/evaluate", {**headers, "Content-Length": str(len(basket))}, basket
        )
    for status, body, _ in (declared, chunked):
        assert status == 413, body
        assert body["error"]["code"] == "payload_too_large"
        assert body["error"]["details"] == {"max_bytes": 4096}
    assert declared[2] == 1  # refused on its Content-Length alone
    assert fits[0] == 200, fits[1]


def test_the_route_never_reads_a_body_sent_without_a_key(store: Store) -> None:
    """At the ASGI level: the app answers 401 without asking for a single body message."""
    app = create_app(store.settings, store=store)
    asked: list[str] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        asked.append("body")
        return {"type": "http.request", "body": b"{}" * 1000, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/baskets/evaluate",
        "raw_path": b"/v1/baskets/evaluate",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        "client": REMOTE,
        "server": ("127.0.0.1", 8080),
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 401
    assert asked == []


@pytest.mark.parametrize(
    ("path", "raw", "content_type"),
    [
        ("/v1/baskets/evaluate", json.dumps(basket_json()).encode(), "text/plain"),
        ("/v1/baskets/evaluate", json.dumps(basket_json()).encode(), None),
        ("/v1/customers", json.dumps(IVAN).encode("utf-16"), "application/json"),
        ("/v1/customers", json.dumps(IVAN).encode("utf-16-le"), "application/json"),
        ("/v1/customers", json.dumps(IVAN).encode(), "application/json; charset=utf-16"),
        (
            "/v1/customers",
            json.dumps(IVAN, ensure_ascii=False).encode("cp1251"),
            "application/json",
        ),
        ("/v1/identify", b'{"phone": "9161234567"}', "application/x-www-form-urlencoded"),
    ],
)
def test_only_utf8_json_bodies_are_read(
    client: TestClient, path: str, raw: bytes, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    if content_type is None:
        client.headers.pop("Content-Type", None)
    reply = client.post(path, content=raw, headers=headers)
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == "body"
    assert "application/json" in error["message"] or "UTF-8" in error["message"]


def test_json_with_an_explicit_utf8_charset_is_welcome(client: TestClient) -> None:
    raw = json.dumps(IVAN, ensure_ascii=False).encode()
    reply = client.post(
        "/v1/customers", content=raw, headers={"Content-Type": "application/json; charset=UTF-8"}
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["name"] == "Иван Петров"


# -- /docs, /redoc, /openapi.json, /metrics ---------------------------------------------------


def asked_from(client: TestClient, peer: tuple[str, int]) -> TestClient:
    return TestClient(client.app, client=peer, headers=client.headers)


@pytest.mark.parametrize("path", DOCS)
def test_docs_and_metrics_are_served_to_this_machine_only_by_default(
    anon_client: TestClient, path: str
) -> None:
    for peer in [("127.0.0.1", 5000), ("127.0.0.53", 5000), ("::1", 5000), ("::ffff:127.0.0.1", 1)]:
        assert asked_from(anon_client, peer).get(path).status_code == 200, peer
    for peer in [REMOTE, ("10.0.0.7", 5000), ("fe80::1", 5000), ("testclient", 50000)]:
        reply = asked_from(anon_client, peer).get(path)
        assert reply.status_code == 403, peer
        assert reply.json()["error"]["code"] == "forbidden"
        assert "open_docs" in reply.json()["error"]["message"]


@pytest.mark.parametrize("config_extra", [{"api": {"open_docs": "key"}}])
def test_docs_behind_a_key(anon_client: TestClient, store: Store) -> None:
    remote = asked_from(anon_client, REMOTE)
    for path in DOCS:
        assert remote.get(path).status_code == 401
        # Loopback is no exception in this mode.
        assert asked_from(anon_client, ("127.0.0.1", 1)).get(path).status_code == 401
    remote.headers["Authorization"] = f"Bearer {new_key(store, Scope.TILL)}"
    for path in DOCS:
        assert remote.get(path).status_code == 200


@pytest.mark.parametrize("config_extra", [{"api": {"open_docs": "open"}}])
def test_docs_open_to_anyone_when_the_store_says_so(anon_client: TestClient) -> None:
    for path in DOCS:
        assert asked_from(anon_client, REMOTE).get(path).status_code == 200


def test_a_real_connection_from_this_machine_reads_the_metrics(store: Store) -> None:
    """uvicorn gives the socket's real peer (127.0.0.1): loopback, so served without a key."""
    with (
        serving(store) as port,
        closing(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)) as sock,
    ):
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 200") and b"pos_loyalty_http_request" in answer


def test_the_helper_the_suite_uses_for_docs_is_loopback(client: TestClient) -> None:
    assert client.get("/openapi.json").status_code == 403  # "testclient" is not this machine
    assert from_this_machine(client).get("/openapi.json").status_code == 200
