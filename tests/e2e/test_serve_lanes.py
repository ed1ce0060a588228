"""`pos-loyalty serve` runs every lane's devices: a real server process, real wires to simulators.

The camera is a video file (looped) holding a customer's loyalty QR, the scanner a pseudo-terminal
driven from this process, the printer the virtual ESC/POS printer on TCP; the till is an HTTP
client following the lane's server-sent events. Nothing of the server runs in this process.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware_sim.printer import PrinterServer, VirtualPrinter
from firmware_sim.scanner import Framing, VirtualScanner
from tests.e2e.store_setup import EXE, IVAN, MARIA, prepare_store, write_qr_clip
from tests.factories import basket_json, commit_json, evaluate_json, line_json
from tests.serving import SAFETY_S, wait_serving, wait_until

Event = dict[str, Any]


class Reply:
    """What the till got back: status, body (the shape the tests.factories helpers read)."""

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self.text = body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.text)


class Till:
    """A till's HTTP client on the standard library, as a thin till would be."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token

    def request(self, method: str, path: str, body: Any = None, **headers: str) -> Reply:
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
            | headers,
        )
        try:
            with urllib.request.urlopen(request, timeout=SAFETY_S) as reply:
                return Reply(reply.status, reply.read())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.read())

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, json: Any, headers: dict[str, str] | None = None) -> Reply:
        return self.request("POST", path, json, **(headers or {}))


class Follower:
    """A till display following `GET /v1/lanes/{id}/events` on its own thread."""

    def __init__(self, base_url: str, token: str, lane_id: str, last_event_id: int = 0) -> None:
        self.events: queue.Queue[Event] = queue.Queue()
        self._request = urllib.request.Request(
            f"{base_url}/v1/lanes/{lane_id}/events",
            headers={"Authorization": f"Bearer {token}", "Last-Event-ID": str(last_event_id)},
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            with urllib.request.urlopen(self._request, timeout=60) as stream:
                for raw in stream:
                    line = raw.decode("utf-8").rstrip("\r\n")
                    if line.startswith(":"):
                        continue
                    if line:
                        key, _, value = line.partition(": ")
                        fields[key] = value
                    elif "data" in fields:
                        self.events.put({**json.loads(fields["data"]), "_sse_id": fields.get("id")})
                        fields = {}
        except OSError:
            pass  # the server stopped; the test decides whether that was expected

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = SAFETY_S) -> Event:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.1)
            except queue.Empty:
                continue
            seen.append((event["type"], event.get("code") or event.get("status")))
            if predicate(event):
                return event
        raise AssertionError(f"no matching lane event within {timeout} s; saw {seen}")


class Service:
    """One `pos-loyalty serve` process on the store's config file."""

    def __init__(self, workdir: Path, config: Path, token: str, *options: str) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("POS_LOYALTY_")}
        self.proc = subprocess.Popen(
            [EXE, "serve", "--config", str(config), "--port", str(self.port), *options],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.client = Till(self.base_url, token)
        wait_serving(self.base_url, self.proc, self.output)

    def device(self, name: str) -> dict[str, Any]:
        devices = self.client.get("/v1/devices").json()["devices"]
        return next(d for d in devices if d["name"] == name)

    def wait_device(self, name: str, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        state: dict[str, Any] = {}

        def reached() -> bool:
            nonlocal state
            state = self.device(name)
            return predicate(state)

        wait_until(reached, f"{name} never got there", diagnose=lambda: str(state))
        return state

    def output(self) -> str:
        if self.proc.stdout is None or self.proc.poll() is None:
            return ""
        return self.proc.stdout.read().decode(errors="replace")

    def stop(self) -> str:
        """SIGTERM, as a service manager stops it, with a till still following the lane."""
        self.proc.terminate()
        try:
            out = self.proc.communicate(timeout=SAFETY_S)[0]
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out = self.proc.communicate()[0]
            raise AssertionError(f"serve did not stop on SIGTERM within {SAFETY_S} s") from None
        text = out.decode(errors="replace")
        # A clean stop: streams closed, devices and database shut down, nothing crashed.
        assert self.proc.returncode == 0 and "Traceback" not in text, text[-3000:]
        return text


@pytest.fixture
def printer(tmp_path: Path) -> Iterator[VirtualPrinter]:
    return VirtualPrinter("TM-T88V", paper_mm=5_000.0, out_dir=tmp_path / "receipts")


@pytest.fixture
def printer_server(printer: VirtualPrinter) -> Iterator[PrinterServer]:
    with PrinterServer(printer, "127.0.0.1", 0) as server:
        yield server


@pytest.fixture
def scanner(tmp_path: Path) -> Iterator[VirtualScanner]:
    scanner = VirtualScanner(
        tmp_path / "ttyACM0", baudrate=115200, framing=Framing.with_suffix("crlf")
    ).start()
    yield scanner
    scanner.close()


@pytest.fixture
def lane2_scanner(tmp_path: Path) -> Iterator[VirtualScanner]:
    scanner = VirtualScanner(tmp_path / "ttyACM1", framing=Framing.with_suffix("cr")).start()
    yield scanner
    scanner.close()


def write_store(tmp_path: Path, printer_url: str, scanner_port: Path, lane2_port: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[store]
id = "msk-001"
name = "Магазин у дома"
database_url = "sqlite:///./store.db"
secret_file = "./secret.key"

[[lanes]]
id = "lane-1"
customer_ttl_s = 120
camera = {{ source = "lane-1.avi", loop = true, debounce_s = 3.0 }}  # beside this file
scanner = {{ port = "{scanner_port}", baudrate = 115200, framing = "crlf" }}
[lanes.printer]
connection = "{printer_url}"
timeout_s = 1.0
retry_initial_s = 0.1
retry_max_s = 0.5

[[lanes]]
id = "lane-2"
scanner = {{ port = "{lane2_port}", framing = "cr" }}
""",
        encoding="utf-8",
    )
    return config


def test_serve_runs_the_lane_devices_end_to_end(
    tmp_path: Path,
    printer: VirtualPrinter,
    printer_server: PrinterServer,
    scanner: VirtualScanner,
    lane2_scanner: VirtualScanner,
) -> None:
    config = write_store(tmp_path, printer_server.url, scanner.link, lane2_scanner.link)
    prepared = prepare_store(config, IVAN, MARIA)
    (ivan, maria), token = prepared.customers, prepared.token
    # Ivan holds his phone up for a second of a 2.5 s clip the camera replays forever.
    write_qr_clip(tmp_path / "lane-1.avi", prepared.qr)
    basket = basket_json(line_json(unit_price=45_000, name="Сыр"))
    basket["customer"] = None  # the lane's current customer prices it

    elsewhere = tmp_path / "run"  # the service manager starts serve in another folder
    elsewhere.mkdir()
    service = Service(elsewhere, config, token)
    try:
        lane = Follower(service.base_url, token, "lane-1")
        seen = lane.wait_for(lambda e: e["type"] == "customer_identified")
        assert (seen["method"], seen["source"]) == ("qr", "lane-1/camera")
        assert seen["customer"]["id"] == ivan.id and seen["customer"]["name"] == "Иван П."
        assert evaluate_json(service.client, basket)["customer"]["id"] == ivan.id
        # A till that starts following the lane now learns at once who is there.
        late = Follower(service.base_url, token, "lane-1")
        state = late.wait_for(lambda e: True)
        assert state["type"] == "lane_state" and state["_sse_id"] is None
        assert state["customer"]["id"] == ivan.id and state["customer"]["method"] == "qr"
        assert {d["name"] for d in state["devices"]} == {
            "lane-1/camera", "lane-1/printer", "lane-1/scanner"
        }  # fmt: skip

        camera = service.wait_device("lane-1/camera", lambda d: d["frames_grabbed"] > 2 * 38)
        assert camera["connected"] and not camera["ended"] and camera["fps"] > 5
        assert camera["decoder"] == "zxing" and camera["decode_ms_median"] > 0
        assert camera["readings"] == 1  # replayed twice over, debounced: one identification

        service.wait_device("lane-1/scanner", lambda d: d["connected"])
        scanner.scan_garbled(maria.card_numbers[0], errors=3)
        scanner.swipe(maria.card_numbers[0], name="IVANOVA/MARIA")
        swiped = lane.wait_for(lambda e: e["type"] == "customer_identified")
        assert (swiped["method"], swiped["source"]) == ("card", "lane-1/scanner")
        assert swiped["customer"]["id"] == maria.id
        quote = evaluate_json(service.client, basket)
        assert quote["customer"]["id"] == maria.id
        state = service.device("lane-1/scanner")
        assert state["connected"] and state["frames_ok"] == 1 and state["frames_dropped"] == 1

        # Every [[lanes]] entry's devices run; a scan at lane-2 is lane-2's alone.
        devices = service.client.get("/v1/devices").json()["devices"]
        assert [(d["name"], d["connected"]) for d in devices] == [
            ("lane-1/camera", True),
            ("lane-1/printer", True),
            ("lane-1/scanner", True),
            ("lane-2/scanner", True),
        ]
        lane2 = Follower(service.base_url, token, "lane-2")
        lane2_scanner.scan(ivan.card_numbers[0], symbology="ean13")
        at_lane2 = lane2.wait_for(lambda e: e["type"] == "customer_identified")
        assert at_lane2["customer"]["id"] == ivan.id and at_lane2["source"] == "lane-2/scanner"
        assert evaluate_json(service.client, basket)["customer"]["id"] == maria.id  # lane-1

        scanner.unplug()
        fault = lane.wait_for(lambda e: e["type"] == "device_fault")
        assert fault["device"] == "lane-1/scanner"
        scanner.replug()
        lane.wait_for(lambda e: e["type"] == "device_restored" and e["device"] == "lane-1/scanner")

        first = commit_json(service.client, {"quote_id": quote["quote_id"]})
        assert first.status_code == 201, first.text
        done = lane.wait_for(lambda e: e["type"] == "print_result")
        assert done["status"] == "printed"
        assert done["transaction_id"] == first.json()["transaction_id"]

        printer.set_unplugged(True)  # the printer's cable is pulled
        second = commit_json(
            service.client, {"quote_id": evaluate_json(service.client, basket)["quote_id"]}
        )
        assert second.status_code == 201, second.text
        waiting = lane.wait_for(lambda e: e["type"] == "print_result")
        assert (waiting["status"], waiting["code"]) == ("waiting", "printer_offline")
        assert waiting["transaction_id"] == second.json()["transaction_id"]
        last_seen = int(waiting["_sse_id"])
        offline = service.wait_device("lane-1/printer", lambda d: d["queue_length"] == 1)
        assert offline["connected"] is False and offline["state"] == "printer_offline"
    finally:
        output = service.stop()
    assert token not in output

    printer.set_unplugged(False)  # plugged back in while the service was down, out of paper
    printer.set_paper_remaining(0)
    service = Service(tmp_path, config, token)
    try:
        # The display reconnects as EventSource does, with the last id it saw before the restart.
        lane = Follower(service.base_url, token, "lane-1", last_event_id=last_seen)
        waiting = lane.wait_for(lambda e: e["type"] == "print_result")
        assert (waiting["status"], waiting["code"]) == ("waiting", "paper_out")
        assert int(waiting["_sse_id"]) > last_seen
        assert waiting["transaction_id"] == second.json()["transaction_id"]
        state = service.wait_device("lane-1/printer", lambda d: d["state"] == "paper_out")
        assert state["connected"] and state["queue_length"] == 1
        assert printer.receipt_count == 1

        printer.refill()
        done = lane.wait_for(lambda e: e["type"] == "print_result")
        assert (done["status"], done["transaction_id"]) == (
            "printed",
            second.json()["transaction_id"],
        )
        service.wait_device("lane-1/printer", lambda d: d["queue_length"] == 0)

        tid = first.json()["transaction_id"]  # the customer asks for a copy of the first one
        assert service.client.post(f"/v1/receipts/{tid}/print", json={}).status_code == 202
        again = lane.wait_for(lambda e: e["type"] == "print_result")
        assert (again["status"], again["transaction_id"]) == ("printed", tid)
    finally:
        service.stop()
    receipts = printer.wait_for_receipts(3)
    assert len(printer.receipts) == 3 and all(r.complete for r in receipts)
    assert all(any("Сыр" in line for line in r.lines) for r in receipts)
    # the copy is the original, line for line, under a "КОПИЯ" mark
    marks = [line for line in receipts[2].lines if "КОПИЯ" in line]
    assert len(marks) == 1 and not any("КОПИЯ" in line for line in receipts[0].lines)
    assert [line for line in receipts[2].lines if line not in marks] == receipts[0].lines
