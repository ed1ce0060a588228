"""A lane's current customer and its live event stream."""

from __future__ import annotations

import json
import socket
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pos_loyalty.lanes import LaneHub
from pos_loyalty.store import Store
from tests.conftest import from_this_machine
from tests.serving import running_server, wait_until

IVAN = {"phone": "8 (916) 123-45-67", "name": "Иван Петров"}


@pytest.fixture
def config_extra() -> dict[str, Any]:
    return {"lanes": [{"id": "lane-1", "customer_ttl_s": 60}, {"id": "lane-2"}]}


def read_events(lines: Any, count: int) -> list[dict[str, Any]]:
    """Parse `count` SSE events (skipping comments) from a line iterator."""
    events: list[dict[str, Any]] = []
    current: dict[str, str] = {}
    for line in lines:
        if line.startswith(":"):
            continue
        if not line:
            if current:
                events.append({**json.loads(current["data"]), "_event": current["event"]})
                current = {}
                if len(events) == count:
                    return events
            continue
        key, _, value = line.partition(": ")
        current[key] = value
    return events


def test_identify_with_lane_sets_current_customer_and_streams_event(client: TestClient) -> None:
    ivan = client.post("/v1/customers", json=IVAN).json()
    hub: LaneHub = client.app.state.hub  # type: ignore[attr-defined]
    with client.stream("GET", "/v1/lanes/lane-1/events") as stream:
        lines = stream.iter_lines()
        assert next(lines) == ": connected"
        (state,) = read_events(lines, 1)  # nobody at the lane yet, and no devices configured
        assert (state["_event"], state["customer"], state["devices"]) == ("lane_state", None, [])
        reply = client.post("/v1/identify", json={"card": ivan["card_number"], "lane_id": "lane-1"})
        assert reply.status_code == 200
        (event,) = read_events(lines, 1)
    assert event["_event"] == "customer_identified"
    assert event["lane_id"] == "lane-1"
    assert event["method"] == "card"
    assert event["customer"] == {
        "id": ivan["id"],
        "name": "Иван П.",
        "phone": "+7 *** ***-45-67",
        "balance": 0,
    }
    current = hub.current_customer("lane-1")
    assert current is not None and current.customer_id == ivan["id"]
    assert hub.current_customer("lane-2") is None


def test_reader_tokens_become_events(client: TestClient, store: Store) -> None:
    ivan = client.post("/v1/customers", json=IVAN).json()
    hub: LaneHub = client.app.state.hub  # type: ignore[attr-defined]
    outcomes = [
        hub.identify_token("lane-2", ivan["qr"], source="lane-2/camera"),
        hub.identify_token("lane-2", ivan["qr"][:-3] + "AAA", source="lane-2/camera"),
        hub.identify_token("lane-2", "4561261212345467", source="lane-2/scanner"),
        hub.identify_token("lane-2", "hello world", source="lane-2/scanner"),
        hub.identify_token("lane-2", f";{ivan['card_number']}=2912101?", source="lane-2/scanner"),
    ]
    assert [(e.type, e.data.get("code")) for e in outcomes] == [
        ("customer_identified", None),
        ("token_invalid", "qr_forged"),
        ("customer_unknown", "customer_not_found"),
        ("token_invalid", "token_unrecognised"),
        ("customer_identified", None),
    ]
    metrics = from_this_machine(client).get("/metrics").text
    assert 'pos_loyalty_identifications_total{method="qr",outcome="qr_forged"} 1.0' in metrics
    assert 'pos_loyalty_identifications_total{method="card",outcome="identified"} 1.0' in metrics


def test_reconnect_with_last_event_id_replays_missed_events(client: TestClient) -> None:
    ivan = client.post("/v1/customers", json=IVAN).json()
    hub: LaneHub = client.app.state.hub  # type: ignore[attr-defined]
    first = hub.identify_token("lane-1", ivan["qr"], source="lane-1/camera")
    hub.identify_token("lane-1", "garbage", source="lane-1/scanner")
    headers = {"Last-Event-ID": str(first.id)}
    with client.stream("GET", "/v1/lanes/lane-1/events", headers=headers) as stream:
        state, missed = read_events(stream.iter_lines(), 2)
    assert missed["_event"] == "token_invalid" and missed["code"] == "token_unrecognised"
    # The stream starts with who is at the lane now: a till connecting late still knows.
    assert state["_event"] == "lane_state" and state["customer"]["id"] == ivan["id"]
    assert state["customer"]["name"] == "Иван П." and state["customer"]["method"] == "qr"
    assert "phone" in state["customer"] and "expires_at" in state["customer"]


def test_unknown_lane(client: TestClient) -> None:
    reply = client.post("/v1/identify", json={"phone": "9161234567", "lane_id": "lane-9"})
    assert reply.status_code == 422 and reply.json()["error"]["code"] == "lane_unknown"
    events = client.get("/v1/lanes/lane-9/events")
    assert events.status_code == 404 and events.json()["error"]["code"] == "lane_not_found"


def test_devices_report_registered_status(client: TestClient) -> None:
    hub: LaneHub = client.app.state.hub  # type: ignore[attr-defined]
    assert client.get("/v1/devices").json() == {"devices": []}
    hub.register_device("lane-1/scanner", "lane-1", "scanner", lambda: {"connected": True})
    hub.register_device("lane-1/camera", "lane-1", "camera", lambda: 1 / 0)  # type: ignore[arg-type,return-value]
    devices = client.get("/v1/devices").json()["devices"]
    assert devices[1] == {
        "name": "lane-1/scanner",
        "lane_id": "lane-1",
        "kind": "scanner",
        "connected": True,
    }
    assert devices[0]["connected"] is False and "status unavailable" in devices[0]["last_error"]


def test_the_lane_customer_lasts_customer_ttl_s_then_evaluate_is_anonymous(
    client: TestClient, store: Store
) -> None:
    """lane-1 keeps its customer 60 s (config); lane-2 the default 120 s."""
    ivan = client.post("/v1/customers", json=IVAN).json()
    started = store.now()
    store.clock = lambda: started
    basket = {
        "store_id": "msk-001",
        "lane_id": "lane-1",
        "lines": [{"sku": "1", "name": "Хлеб", "category": "bakery", "qty": 1, "unit_price": 5000}],
    }
    for lane_id in ("lane-1", "lane-2"):
        reply = client.post("/v1/identify", json={"card": ivan["card_number"], "lane_id": lane_id})
        assert reply.status_code == 200

    store.clock = lambda: started + timedelta(seconds=59)
    assert client.post("/v1/baskets/evaluate", json=basket).json()["customer"]["id"] == ivan["id"]
    store.clock = lambda: started + timedelta(seconds=61)
    assert client.post("/v1/baskets/evaluate", json=basket).json()["customer"] is None
    hub: LaneHub = client.app.state.hub  # type: ignore[attr-defined]
    assert hub.current_customer("lane-1") is None
    current = hub.current_customer("lane-2")
    assert current is not None and current.expires_at == started + timedelta(seconds=120)


def test_streams_end_when_the_service_stops(client: TestClient) -> None:
    """`serve` ends the lane streams on SIGTERM, after what was already published."""
    ivan = client.post("/v1/customers", json=IVAN).json()
    hub: LaneHub = client.app.state.hub  # type: ignore[attr-defined]
    with client.stream("GET", "/v1/lanes/lane-1/events") as stream:
        lines = stream.iter_lines()
        assert next(lines) == ": connected"
        hub.identify_token("lane-1", ivan["qr"], source="lane-1/camera")
        hub.end_streams()
        rest = list(lines)  # returns: the server closed the stream
    assert [line for line in rest if line.startswith("event: ")] == [
        "event: lane_state",
        "event: customer_identified",
    ]
    with client.stream("GET", "/v1/lanes/lane-2/events") as late:  # a follower during shutdown
        lines = list(late.iter_lines())
    assert lines[:2] == [": connected", ""]  # the lane's state, then the end
    assert [line for line in lines if line.startswith("event: ")] == ["event: lane_state"]


@pytest.mark.parametrize("value", ["²", "٣", "-1", "1e3", " 12", "0x10", "1" * 21, "12abc"])
def test_a_bad_last_event_id_is_a_400_and_leaves_no_subscription(
    client: TestClient, value: str
) -> None:
    hub: LaneHub = client.app.state.hub  # type: ignore[attr-defined]
    for _ in range(3):
        headers = {"Last-Event-ID": value.encode()}  # raw UTF-8 bytes, as the attack sent them
        reply = client.get("/v1/lanes/lane-1/events", headers=headers)
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["code"] == "last_event_id_invalid"
        assert "ASCII digits" in reply.json()["error"]["message"]
    assert hub.subscriber_count() == 0


def test_no_path_leaves_a_lane_subscription(client: TestClient) -> None:
    """Refusals (no key, unknown lane, bad header), followers that hang up mid-stream and streams
    that end: on a real server and real sockets, the hub is left with no subscriber after each."""
    hub: LaneHub = client.app.state.hub  # type: ignore[attr-defined]
    token = client.headers["Authorization"]
    with running_server(client.app) as port:  # type: ignore[arg-type]

        def request(path: str, **headers: str) -> socket.socket:
            sock = socket.create_connection(("127.0.0.1", port))
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: till\r\n{head}\r\n".encode())
            return sock

        def answer(sock: socket.socket, until: bytes) -> bytes:
            got = b""
            while until not in got:
                chunk = sock.recv(4096)
                assert chunk, got
                got += chunk
            return got

        for path, headers, status in [
            ("/v1/lanes/lane-9/events", {"Authorization": token}, b"404"),
            ("/v1/lanes/lane-1/events", {}, b"401"),
            ("/v1/lanes/lane-1/events", {"Authorization": token, "Last-Event-ID": "²"}, b"400"),
        ]:
            with request(path, **headers) as sock:
                assert answer(sock, b"\r\n").split()[1] == status
        assert hub.subscriber_count() == 0
        for _ in range(5):
            sock = request("/v1/lanes/lane-1/events", Authorization=token, **{"Last-Event-ID": "1"})
            answer(sock, b": connected")
            assert hub.subscriber_count("lane-1") == 1
            sock.close()  # the follower hangs up; no event comes to wake its stream
            wait_until(lambda: hub.subscriber_count() == 0, "a closed stream kept its subscription")
        sock = request("/v1/lanes/lane-1/events", Authorization=token)
        answer(sock, b": connected")
        hub.end_streams()
        assert answer(sock, b"0\r\n\r\n")  # the chunked stream ended
        sock.close()
        wait_until(lambda: hub.subscriber_count() == 0, "an ended stream kept its subscription")
