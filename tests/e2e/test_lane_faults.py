"""Every device fault at a lane, acted out through the simulators' control sockets against a real
`pos-loyalty serve` whose lane-1 printer, scanner and camera are `sim://` devices.

What is asserted is what the people at the lane see: each receipt on paper once (in two pieces
when the roll ran out part-way, or followed by a copy marked «КОПИЯ» when a job was lost
part-way), no coupon on two receipts that are not marked as a copy, and the lane events a till
needs. One service serves the whole module; each test first puts the hardware right again.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware_sim.control import send_command
from tests.e2e.store_setup import IVAN, MARIA, prepare_store
from tests.e2e.test_serve_lanes import EXE, Event, Follower, Service
from tests.factories import basket_json, line_json, sell_json
from tests.serving import SAFETY_S

CONFIG = """
[store]
id = "msk-001"
name = "Магазин у дома"
database_url = "sqlite:///./store.db"
secret_file = "./secret.key"

[[lanes]]
id = "lane-1"
camera = { source = "sim://camera/lane-1", debounce_s = 3.0 }
scanner = { port = "sim://scanner", baudrate = 115200, framing = "crlf" }
[lanes.printer]
connection = "sim://printer"
timeout_s = 2.0
retry_initial_s = 0.1
retry_max_s = 0.5

[[rules]]
id = "spend-700-get-70"
kind = "threshold"
label = "Купите на 700 ₽ — 70 ₽ на следующую покупку"
min_subtotal = 70000
reward = { coupon = { amount_off = 7000, valid_days = 14 } }
"""

COPY_MARK = "КОПИЯ"


class Lane:
    """The running service, its lane-1 devices' control sockets and a till following the lane."""

    def __init__(
        self, service: Service, sim_dir: Path, token: str, cards: tuple[str, str], qr: str
    ) -> None:
        self.service = service
        self.sim_dir = sim_dir
        self.token = token
        self.card, self.other_card = cards  # Иван's, read by most tests; Мария's, read once
        self.qr = qr
        self.receipts = sim_dir / "lane-1-receipts"
        self.follower = Follower(service.base_url, token, "lane-1")
        self.seen: list[Event] = []
        self.mark = 0

    def control(self, device: str, command: str) -> str:
        answer = send_command(self.sim_dir / f"lane-1-{device}.ctl", command)
        assert answer.startswith("ok"), f"{device} {command}: {answer}"
        return answer

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = SAFETY_S) -> Event:
        """The first event since the test began that matches (seen already, or to come)."""
        for event in self.seen[self.mark :]:
            if predicate(event):
                return event

        def record(event: Event) -> bool:
            self.seen.append(event)
            return predicate(event)

        return self.follower.wait_for(record, timeout)

    def sell(self) -> dict[str, Any]:
        """A 750 ₽ basket for the customer: it issues a 70 ₽ coupon that prints on the receipt."""
        basket = basket_json(line_json(unit_price=75_000, name="Сыр пармезан"))
        basket["customer"] = {"card": self.card}
        sale = sell_json(self.service.client, basket)
        assert len(sale["coupons_issued"]) == 1
        return sale

    def paper(self) -> list[str]:
        """The text of every piece of paper the printer has put out, in order."""
        return [path.read_text("utf-8") for path in sorted(self.receipts.glob("[0-9]*.txt"))]

    def pieces_since(self, count: int) -> list[str]:
        return self.paper()[count:]

    def reset(self) -> None:
        """The morning check: power on, cable in, cover shut, new roll, no error, camera in."""
        for command in ("power-on", "plug", "online", "feed-release", "cover-close"):
            self.control("printer", command)
        self.control("printer", "refill 80000")
        self.control("camera", "replug")
        self.control("scanner", "status")
        self.service.wait_device("lane-1/printer", lambda d: d["queue_length"] == 0)
        while not self.follower.events.empty():
            self.seen.append(self.follower.events.get_nowait())
        self.mark = len(self.seen)  # each test looks only at the events after this


def coupon_codes(sale: dict[str, Any]) -> list[str]:
    return [coupon["code"] for coupon in sale["coupons_issued"]]


def count_unmarked(pieces: list[str], text: str) -> int:
    return sum(text in piece for piece in pieces if COPY_MARK not in piece)


def printed(transaction_id: str) -> Callable[[Event], bool]:
    return lambda e: (
        e["type"] == "print_result"
        and e["status"] == "printed"
        and e["transaction_id"] == transaction_id
    )


def result(transaction_id: str, status: str) -> Callable[[Event], bool]:
    return lambda e: (
        e["type"] == "print_result"
        and e["status"] == status
        and e["transaction_id"] == transaction_id
    )


@pytest.fixture(scope="module")
def lane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lane]:
    root = tmp_path_factory.mktemp("faults")
    config = root / "config.toml"
    config.write_text(CONFIG, encoding="utf-8")
    prepared = prepare_store(config, IVAN, MARIA)
    (ivan, maria), token, qr = prepared.customers, prepared.token, prepared.qr
    sim_dir = root / "sim"
    service = Service(root, config, token, "--sim-dir", str(sim_dir))
    try:
        yield Lane(service, sim_dir, token, (ivan.card_numbers[0], maria.card_numbers[0]), qr)
    finally:
        service.stop()


@pytest.fixture
def ready(lane: Lane) -> Lane:
    lane.reset()
    return lane


def test_a_good_day_prints_each_receipt_once_at_once(ready: Lane) -> None:
    before = len(ready.paper())
    sale = ready.sell()
    ready.wait_for(printed(sale["transaction_id"]))
    (piece,) = ready.pieces_since(before)
    (code,) = coupon_codes(sale)
    assert code in piece and COPY_MARK not in piece


def test_paper_out_mid_receipt_the_rest_prints_on_the_new_roll(ready: Lane) -> None:
    before = len(ready.paper())
    ready.control("printer", "during-next paper_out 6")
    sale = ready.sell()
    tid = sale["transaction_id"]
    held = ready.wait_for(result(tid, "held"))
    assert held["code"] == "paper_out" and "rest of the receipt" in held["message"]
    fault = ready.wait_for(lambda e: e["type"] == "device_fault" and e["code"] == "paper_out")
    assert fault["device"] == "lane-1/printer"
    ready.control("printer", "refill")
    ready.wait_for(printed(tid))
    torn, rest = ready.pieces_since(before)
    (code,) = coupon_codes(sale)
    # One receipt in two pieces: the torn start and the rest from the new roll, the coupon once.
    assert COPY_MARK not in torn + rest and (torn + rest).count(code) == 1
    assert "Магазин у дома" in torn and "ИТОГО" not in torn and "ИТОГО" in rest and code in rest


def test_paper_near_end_prints_and_tells_the_till(ready: Lane) -> None:
    before = len(ready.paper())
    ready.control("printer", "paper-near-end")
    sale = ready.sell()
    done = ready.wait_for(printed(sale["transaction_id"]))
    assert done["paper_near_end"] is True
    (piece,) = ready.pieces_since(before)
    assert coupon_codes(sale)[0] in piece
    state = ready.service.device("lane-1/printer")
    assert state["paper_near_end"] is True


def test_cover_opened_mid_receipt_the_receipt_goes_on_when_it_closes(ready: Lane) -> None:
    before = len(ready.paper())
    ready.control("printer", "during-next cover_open 4")
    sale = ready.sell()
    tid = sale["transaction_id"]
    held = ready.wait_for(result(tid, "held"))
    assert held["code"] == "cover_open"
    ready.control("printer", "cover-close")
    ready.wait_for(printed(tid))
    (piece,) = ready.pieces_since(before)  # one piece: printing stopped, then went on
    assert piece.count(coupon_codes(sale)[0]) == 1 and COPY_MARK not in piece


def test_cutter_jam_once_cleared_is_recovered_and_cut_once(ready: Lane) -> None:
    before = len(ready.paper())
    ready.control("printer", "cutter-error")
    sale = ready.sell()
    tid = sale["transaction_id"]
    held = ready.wait_for(result(tid, "held"))
    assert held["code"] == "printer_error" and "autocutter" in held["message"]
    assert ready.pieces_since(before) == []  # the receipt hangs uncut in the printer
    ready.control("printer", "fix")  # the cashier frees the cutter; the driver sends DLE ENQ 1
    ready.wait_for(printed(tid))
    (piece,) = ready.pieces_since(before)
    assert piece.count(coupon_codes(sale)[0]) == 1 and COPY_MARK not in piece


def test_an_offline_printer_gets_nothing_until_it_is_back(ready: Lane) -> None:
    before = len(ready.paper())
    ready.control("printer", "offline")
    sale = ready.sell()
    tid = sale["transaction_id"]
    waiting = ready.wait_for(result(tid, "waiting"))
    assert waiting["code"] == "printer_not_ready"
    state = ready.service.wait_device("lane-1/printer", lambda d: d["queue_length"] == 1)
    assert state["connected"] is True  # it answers, it only does not print
    ready.control("printer", "online")
    ready.wait_for(printed(tid))
    (piece,) = ready.pieces_since(before)
    assert coupon_codes(sale)[0] in piece and COPY_MARK not in piece


def test_feed_button_held_the_receipt_waits_for_its_release(ready: Lane) -> None:
    before = len(ready.paper())
    ready.control("printer", "feed-press")
    sale = ready.sell()
    tid = sale["transaction_id"]
    assert ready.wait_for(result(tid, "waiting"))["code"] == "printer_not_ready"
    ready.control("printer", "feed-release")
    ready.wait_for(printed(tid))
    assert len(ready.pieces_since(before)) == 1


@pytest.mark.parametrize("fault", ["power_off", "unplug"])
def test_a_job_lost_part_way_is_reprinted_marked_as_a_copy(ready: Lane, fault: str) -> None:
    before = len(ready.paper())
    ready.control("printer", f"during-next {fault} 6")
    sale = ready.sell()
    tid = sale["transaction_id"]
    lost = ready.wait_for(result(tid, "interrupted"))
    assert "copy" in lost["message"]
    ready.wait_for(lambda e: e["type"] == "device_fault" and e["device"] == "lane-1/printer")
    ready.control("printer", "power-on" if fault == "power_off" else "plug")
    ready.wait_for(printed(tid))
    pieces = ready.pieces_since(before)
    (code,) = coupon_codes(sale)
    copies = [piece for piece in pieces if COPY_MARK in piece]
    assert len(copies) == 1 and code in copies[0]
    assert count_unmarked(pieces, code) <= 1  # never two originals with the coupon


def test_a_power_cut_before_the_sale_leaves_it_queued_then_prints_it_once(ready: Lane) -> None:
    before = len(ready.paper())
    ready.control("printer", "power-off")
    sale = ready.sell()
    tid = sale["transaction_id"]
    assert ready.wait_for(result(tid, "waiting"))["code"] == "printer_offline"
    state = ready.service.wait_device("lane-1/printer", lambda d: not d["connected"])
    assert state["queue_length"] == 1
    ready.control("printer", "power-on")
    ready.wait_for(printed(tid))
    (piece,) = ready.pieces_since(before)
    assert COPY_MARK not in piece


def identified(source: str) -> Callable[[Event], bool]:
    return lambda e: e["type"] == "customer_identified" and e["source"] == source


def test_scanner_garbled_then_good_read(ready: Lane) -> None:
    ready.control("scanner", f"garble {ready.card}")
    ready.control("scanner", f"scan {ready.card}")
    event = ready.wait_for(identified("lane-1/scanner"))
    assert event["method"] == "card"
    state = ready.service.wait_device("lane-1/scanner", lambda d: d["frames_dropped"] >= 1)
    assert state["drop_reasons"].get("garbled", 0) >= 1


def test_scanner_split_read_is_one_scan(ready: Lane) -> None:
    """A card read in two pieces half a second apart is one card: the customer is identified,
    and neither half was taken for a token of its own."""
    dropped = ready.service.device("lane-1/scanner")["frames_dropped"]
    ready.control("scanner", f"split {ready.other_card} 0.5")
    event = ready.wait_for(
        lambda e: (
            e["type"] in ("token_invalid", "customer_unknown") or identified("lane-1/scanner")(e)
        )
    )
    assert event["type"] == "customer_identified" and event["method"] == "card", event
    state = ready.service.wait_device("lane-1/scanner", lambda d: d["frames_ok"] > 0)
    assert state["frames_dropped"] == dropped


def test_scanner_repeated_read_identifies_once(ready: Lane) -> None:
    repeated = ready.service.device("lane-1/scanner")["frames_repeated"]
    ready.control("scanner", "repeat 2000000000008 5")  # not a card: one invalid token, not five
    event = ready.wait_for(lambda e: e["type"] in ("customer_unknown", "token_invalid"))
    assert event["source"] == "lane-1/scanner"
    state = ready.service.wait_device(
        "lane-1/scanner", lambda d: d["frames_repeated"] == repeated + 4
    )
    assert state["frames_repeated"] == repeated + 4


def test_gs1_data_reaches_the_lane_as_a_token(ready: Lane) -> None:
    ready.control("scanner", r"scan 0104601234567890\x1d10LOT42")
    event = ready.wait_for(lambda e: e["type"] == "token_invalid")
    assert event["code"] == "token_unrecognised" and event["source"] == "lane-1/scanner"


def test_camera_unplugged_reports_no_frame_rate_and_comes_back(ready: Lane) -> None:
    ready.control("camera", "unplug")
    ready.wait_for(lambda e: e["type"] == "device_fault" and e["device"] == "lane-1/camera")
    state = ready.service.wait_device("lane-1/camera", lambda d: not d["connected"])
    assert state["fps"] == 0
    ready.control("camera", "replug")
    ready.wait_for(lambda e: e["type"] == "device_restored" and e["device"] == "lane-1/camera")
    ready.control("camera", f"show {ready.qr}")
    event = ready.wait_for(identified("lane-1/camera"))
    assert event["method"] == "qr"
    ready.control("camera", "hide")


def test_a_till_connecting_late_learns_the_lane_state_first(ready: Lane) -> None:
    reply = ready.service.client.post("/v1/identify", {"card": ready.card, "lane_id": "lane-1"})
    assert reply.status_code == 200, reply.text
    late = Follower(ready.service.base_url, ready.token, "lane-1")
    state = late.wait_for(lambda e: True)
    assert state["type"] == "lane_state" and state["customer"]["method"] == "card"
    names = {device["name"]: device for device in state["devices"]}
    assert set(names) == {"lane-1/camera", "lane-1/printer", "lane-1/scanner"}
    assert names["lane-1/printer"]["state"] == "ready"


def test_the_cli_drives_the_same_controls(ready: Lane) -> None:
    socket_path = ready.sim_dir / "lane-1-printer.ctl"
    done = subprocess.run(
        [EXE, "sim", "control", str(socket_path), "status"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0 and re.match(r"ok dle_eot=12 12 12 12 ", done.stdout)
    bad = subprocess.run(
        [EXE, "sim", "control", str(socket_path), "jam-everything"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert bad.returncode == 1 and "unknown command" in bad.stdout
