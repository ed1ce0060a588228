"""Lanes end to end over the simulators: real frames for the camera, a real pty for the scanner.

The device manager runs the real drivers; the simulators sit at the far end of the wire.
"""

from __future__ import annotations

import json
import queue
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from drivers.manager import DeviceManager
from firmware_sim.camera import (
    Scenario,
    VirtualCameraDevice,
    register_device,
    unregister_device,
    write_video,
)
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.apikeys.service import create_key
from pos_loyalty.cli.simulation import SimulatedDevices, simulated_devices
from pos_loyalty.customers.service import CustomerProfile, enrol_customer, loyalty_qr
from pos_loyalty.identity.tokens import mint_qr
from pos_loyalty.lanes import LaneEvent, LaneHub
from pos_loyalty.security import StoreSecret
from pos_loyalty.store import Store
from tests.conftest import make_settings
from tests.serving import SAFETY_S

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def lane_store(tmp_path: Path, db_url: str) -> Iterator[Store]:
    settings = make_settings(
        tmp_path,
        db_url,
        {
            "lanes": [
                {
                    "id": "lane-1",
                    "camera": {"source": "sim://camera/lane-1", "debounce_s": 3.0},
                    "scanner": {"port": "sim://scanner", "framing": "crlf"},
                }
            ]
        },
    )
    store = Store.open(settings)
    yield store
    store.close()


def enrol_ivan(store: Store) -> CustomerProfile:
    with store.uow(write=True) as uow:
        return enrol_customer(
            uow=uow,
            settings=store.settings,
            secret=store.secret,
            phone="+7 916 123-45-67",
            name="Иван Петров",
        )


class Lane:
    """The running lane: hub, simulators and an event queue to wait on."""

    def __init__(self, hub: LaneHub, sims: SimulatedDevices) -> None:
        self.hub = hub
        self.sims = sims
        self.events: queue.Queue[LaneEvent] = queue.Queue()
        hub.add_listener(self.events.put)

    @property
    def scanner(self) -> Any:
        return self.sims.scanners["lane-1"]

    def wait_connected(self, kind: str, timeout: float = SAFETY_S) -> None:
        """Scans sent before the driver opened the port are flushed by the open, as on hardware."""
        deadline = time.monotonic() + timeout
        while not any(d["kind"] == kind and d["connected"] for d in self.hub.devices()):
            assert time.monotonic() < deadline, f"no {kind} connected: {self.hub.devices()}"
            time.sleep(0.02)

    def wait_for(
        self, predicate: Callable[[LaneEvent], bool], timeout: float = SAFETY_S
    ) -> LaneEvent:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.1)
            except queue.Empty:
                continue
            seen.append((event.type, event.data.get("code"), event.data.get("device")))
            if predicate(event):
                return event
        raise AssertionError(f"no matching lane event within {timeout} s; saw {seen}")

    def drain(self, seconds: float) -> list[LaneEvent]:
        time.sleep(seconds)
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out


def start_lane(store: Store, tmp_path: Path, camera_payload: str | None) -> Iterator[Lane]:
    device = VirtualCameraDevice(
        Scenario(payload=camera_payload, width=640, height=480, show_from_s=0.3, show_until_s=60),
        seed=1,
    )
    register_device("lane-1", device)
    hub = LaneHub(store)
    try:
        with simulated_devices(store.settings, tmp_path / "sim") as sims:
            lane = Lane(hub, sims)
            lane.camera = device  # type: ignore[attr-defined]
            with DeviceManager(
                store.settings, hub, scanner_ports=sims.scanner_ports, watch_interval_s=0.1
            ):
                yield lane
    finally:
        unregister_device("lane-1")


def test_loyalty_qr_shown_to_the_camera_identifies_the_customer(
    lane_store: Store, tmp_path: Path
) -> None:
    ivan = enrol_ivan(lane_store)
    qr = loyalty_qr(secret=lane_store.secret, customer_id=ivan.id, now=lane_store.now())
    for lane in start_lane(lane_store, tmp_path, qr):
        event = lane.wait_for(lambda e: e.type == "customer_identified")
        assert event.data["method"] == "qr"
        assert event.data["source"] == "lane-1/camera"
        assert event.data["customer"]["id"] == ivan.id
        current = lane.hub.current_customer("lane-1")
        assert current is not None and current.customer_id == ivan.id
        # Held in view for a while: debounced, reported once.
        again = [e for e in lane.drain(1.0) if e.type == "customer_identified"]
        assert again == []
        camera = next(d for d in lane.hub.devices() if d["kind"] == "camera")
        assert camera["connected"] is True and camera["readings"] == 1 and camera["fps"] > 0


def test_camera_identification_reaches_the_event_stream_and_the_next_evaluate(
    lane_store: Store, tmp_path: Path
) -> None:
    """What the till sees: the SSE event, then an evaluate without a customer is priced for them."""
    ivan = enrol_ivan(lane_store)
    qr = loyalty_qr(secret=lane_store.secret, customer_id=ivan.id, now=lane_store.now())
    with lane_store.uow(write=True) as uow:
        key = create_key(uow=uow, scope=Scope.TILL)
    for lane in start_lane(lane_store, tmp_path, None):
        app = create_app(lane_store.settings, store=lane_store, hub=lane.hub)
        with TestClient(app) as client:
            client.headers["Authorization"] = f"Bearer {key}"
            with client.stream("GET", "/v1/lanes/lane-1/events") as stream:
                lines = stream.iter_lines()
                assert next(lines) == ": connected"
                first = next(line for line in lines if line.startswith("data: "))
                state = json.loads(first.removeprefix("data: "))
                assert state["type"] == "lane_state" and state["customer"] is None
                assert "lane-1/camera" in [device["name"] for device in state["devices"]]
                lane.camera.show(  # type: ignore[attr-defined]
                    Scenario(payload=qr, width=640, height=480, show_from_s=0.2, show_until_s=30)
                )
                data = next(line for line in lines if line.startswith("data: "))
            event = json.loads(data.removeprefix("data: "))
            assert event["type"] == "customer_identified"
            assert event["customer"]["id"] == ivan.id and event["method"] == "qr"
            basket = {
                "store_id": "msk-001",
                "lane_id": "lane-1",
                "lines": [
                    {"sku": "1", "name": "Хлеб", "category": "bakery", "qty": 1, "unit_price": 5000}
                ],
            }
            quote = client.post("/v1/baskets/evaluate", json=basket).json()
            assert quote["customer"]["id"] == ivan.id


@pytest.mark.parametrize(
    ("shown", "code"),
    [
        ("forged", "qr_forged"),  # Ivan's id under another store's key
        ("cut", "qr_malformed"),  # a loyalty QR missing its MAC
        ("https://example.com/promo", "token_unrecognised"),  # someone else's QR code
    ],
)
def test_forged_or_foreign_qr_at_the_camera_identifies_nobody(
    lane_store: Store, tmp_path: Path, shown: str, code: str
) -> None:
    ivan = enrol_ivan(lane_store)
    if shown == "forged":
        shown = mint_qr(StoreSecret(b"f" * 32), ivan.id, int(time.time()))
    elif shown == "cut":
        genuine = loyalty_qr(secret=lane_store.secret, customer_id=ivan.id, now=lane_store.now())
        shown = genuine.rpartition(".")[0]
    for lane in start_lane(lane_store, tmp_path, shown):
        event = lane.wait_for(lambda e: e.type != "device_restored")
        assert (event.type, event.data["code"]) == ("token_invalid", code)
        assert event.data["source"] == "lane-1/camera"
        assert lane.hub.current_customer("lane-1") is None


def test_card_swiped_on_the_scanner_identifies_and_garbage_is_dropped(
    lane_store: Store, tmp_path: Path
) -> None:
    ivan = enrol_ivan(lane_store)
    card = ivan.card_numbers[0]
    for lane in start_lane(lane_store, tmp_path, None):
        lane.scanner.scan_garbled(card, errors=3)
        lane.scanner.scan_truncated(card)
        # The truncated frame is called so once the line has been silent for the fallback timeout.
        wait_scanner(lane, lambda state: state["frames_dropped"] >= 2)
        lane.scanner.swipe(card, name="PETROV/IVAN")
        event = lane.wait_for(lambda e: e.type == "customer_identified")
        assert event.data["method"] == "card" and event.data["source"] == "lane-1/scanner"
        assert event.data["customer"]["id"] == ivan.id
        scanner = scanner_state(lane)
        assert scanner["frames_ok"] == 1
        assert scanner["frames_dropped"] >= 2


def scanner_state(lane: Lane) -> dict[str, Any]:
    return next(d for d in lane.hub.devices() if d["kind"] == "scanner")


def wait_scanner(lane: Lane, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The scanner's state once `done` holds (bounded by the suite's safety limit)."""
    deadline = time.monotonic() + SAFETY_S
    while not done(state := scanner_state(lane)):
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    return state


def test_unplug_and_replug_of_each_device(lane_store: Store, tmp_path: Path) -> None:
    ivan = enrol_ivan(lane_store)
    for lane in start_lane(lane_store, tmp_path, None):
        lane.wait_connected("scanner")  # both devices up and watched
        lane.wait_connected("camera")
        lane.scanner.unplug()
        fault = lane.wait_for(lambda e: e.type == "device_fault")
        assert fault.data["device"] == "lane-1/scanner"
        lane.scanner.replug()
        lane.wait_for(
            lambda e: e.type == "device_restored" and e.data["device"] == "lane-1/scanner"
        )
        lane.scanner.scan(ivan.card_numbers[0])
        assert lane.wait_for(lambda e: e.type == "customer_identified").data["method"] == "card"

        lane.camera.unplug()  # type: ignore[attr-defined]
        fault = lane.wait_for(lambda e: e.type == "device_fault")
        assert fault.data["device"] == "lane-1/camera"
        lane.camera.replug()  # type: ignore[attr-defined]
        lane.wait_for(lambda e: e.type == "device_restored" and e.data["device"] == "lane-1/camera")


def lane_with(tmp_path: Path, db_url: str, **devices: Any) -> Store:
    settings = make_settings(tmp_path, db_url, {"lanes": [{"id": "lane-1", **devices}]})
    return Store.open(settings)


def test_scanner_prefix_and_suffix_from_config_are_stripped(tmp_path: Path, db_url: str) -> None:
    """The scanner programmed to send `L1:<scan>#` then CR; config says so; the sim sends that."""
    store = lane_with(
        tmp_path,
        db_url,
        scanner={"port": "sim://scanner", "framing": "cr", "prefix": "L1:", "suffix": "#"},
    )
    try:
        ivan = enrol_ivan(store)
        card = ivan.card_numbers[0]
        for lane in start_lane(store, tmp_path, None):
            lane.wait_connected("scanner")
            assert lane.scanner.scan(card) == f"L1:{card}#\r".encode()
            event = lane.wait_for(lambda e: e.type == "customer_identified")
            assert event.data["customer"]["id"] == ivan.id and event.data["method"] == "card"
            lane.scanner.send_raw(f"{card}#\r".encode())  # not from this scanner: no prefix
            lane.scanner.send_raw(f"L1:{card}\r".encode())  # cut before its suffix
            scanner = wait_scanner(lane, lambda state: state["frames_dropped"] >= 2)
            assert [e.type for e in lane.drain(0.1) if e.type.startswith("customer")] == []
            assert scanner["frames_ok"] == 1
            assert scanner["drop_reasons"] == {"missing_prefix": 1, "missing_suffix": 1}
    finally:
        store.close()


def test_a_decoder_that_cannot_load_is_reported_and_the_lane_keeps_its_scanner(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyzbar", None)  # as on a machine without pyzbar/libzbar0
    store = lane_with(
        tmp_path,
        db_url,
        camera={"source": "sim://camera/lane-1", "decoder": "zbar"},
        scanner={"port": "sim://scanner", "framing": "crlf"},
    )
    try:
        ivan = enrol_ivan(store)
        for lane in start_lane(store, tmp_path, None):
            fault = lane.hub.history("lane-1")[0]
            assert (fault.type, fault.data["device"], fault.data["code"]) == (
                "device_fault",
                "lane-1/camera",
                "not_started",
            )
            assert "pip install pyzbar" in fault.data["message"]
            assert "apt-get install libzbar0" in fault.data["message"]
            camera = next(d for d in lane.hub.devices() if d["kind"] == "camera")
            assert camera["connected"] is False and camera["state"] == "not_started"
            assert "libzbar0" in camera["last_error"]

            lane.wait_connected("scanner")
            lane.scanner.scan(ivan.card_numbers[0])
            event = lane.wait_for(lambda e: e.type == "customer_identified")
            assert event.data["source"] == "lane-1/scanner"
        assert lane.hub.devices() == []  # everything the manager registered is gone on stop
    finally:
        store.close()


@pytest.mark.parametrize("loop", [False, True])
def test_a_camera_file_plays_once_or_forever_as_configured(
    tmp_path: Path, db_url: str, loop: bool
) -> None:
    clip = tmp_path / "lane-1.avi"
    write_video(clip, Scenario(payload=None, width=320, height=240, fps=25, duration_s=0.8))
    store = lane_with(tmp_path, db_url, camera={"source": str(clip), "loop": loop})
    try:
        for lane in start_lane(store, tmp_path, None):
            time.sleep(2.5)  # the clip's length three times over
            faults = [e for e in lane.drain(0.1) if e.type == "device_fault"]
            (camera,) = [d for d in lane.hub.devices() if d["kind"] == "camera"]
            if loop:
                assert faults == [] and camera["connected"] and not camera["ended"]
                assert camera["frames_grabbed"] > 2 * 20
            else:
                assert [e.data["message"] for e in faults] == [
                    "the video file has played to its end"
                ]
                assert camera["ended"] and camera["frames_grabbed"] == 20
    finally:
        store.close()


@pytest.mark.parametrize("decoder", ["zxing", "zbar", "opencv"])
def test_each_configured_decoder_identifies_at_the_lane(
    tmp_path: Path, db_url: str, decoder: str
) -> None:
    store = lane_with(
        tmp_path, db_url, camera={"source": "sim://camera/lane-1", "decoder": decoder}
    )
    try:
        ivan = enrol_ivan(store)
        qr = loyalty_qr(secret=store.secret, customer_id=ivan.id, now=store.now())
        for lane in start_lane(store, tmp_path, qr):
            event = lane.wait_for(lambda e: e.type == "customer_identified")
            assert event.data["customer"]["id"] == ivan.id and event.data["method"] == "qr"
            (camera,) = [d for d in lane.hub.devices() if d["kind"] == "camera"]
            assert camera["decoder"] == decoder and camera["decode_ms_median"] > 0
    finally:
        store.close()
