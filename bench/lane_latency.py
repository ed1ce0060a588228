"""Lane latency: from the device to the till's event stream.

Camera: from the capture of the frame the code was decoded in (the event's `read_at`) to the
`customer_identified` event parsed by an SSE client. Scanner: from the last byte of a scan written
to the pseudo-terminal to the same event (one machine, one clock). The service runs as `serve`
composes it (uvicorn, the device manager, the simulators); the client follows
`/v1/lanes/lane-1/events` over HTTP. Targets: p99 ≤ 50 ms (camera), p99 ≤ 10 ms (scanner).

    .venv/bin/python bench/lane_latency.py [--scans 200] [--shows 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.app import create_app
from bench.common import Stats, console, free_port, results_table, verdict, write_config
from drivers.manager import DeviceManager
from firmware_sim.camera import Scenario
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.apikeys.service import create_key
from pos_loyalty.cli.demo import ApiServer, LaneFollower
from pos_loyalty.cli.simulation import simulated_devices
from pos_loyalty.customers.service import enrol_customer, loyalty_qr
from pos_loyalty.lanes import LaneHub
from pos_loyalty.settings import load_settings
from pos_loyalty.storage.migrate import upgrade
from pos_loyalty.store import Store

LANE = """
[[lanes]]
id = "lane-1"
camera = { source = "sim://camera/lane-1", decoder = "zxing", debounce_s = 3.0 }
scanner = { port = "sim://scanner", baudrate = 115200, framing = "crlf" }
"""
TARGETS_MS = {"camera": 50.0, "scanner": 10.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scans", type=int, default=200)
    parser.add_argument("--shows", type=int, default=30)
    parser.add_argument("--fps", type=float, default=15.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        settings = load_settings(
            write_config(workdir, f"sqlite:///{workdir / 'lane.db'}", LANE), environ={}
        )
        store = Store.open(settings)
        upgrade(store.engine)
        customers = []
        with store.uow(write=True) as uow:
            key = create_key(uow=uow, scope=Scope.TILL)
        for i in range(max(args.shows, 2)):
            with store.uow(write=True) as uow:
                customers.append(
                    enrol_customer(
                        uow=uow,
                        settings=settings,
                        secret=store.secret,
                        phone=f"+7916{i:07d}",
                        name=f"Покупатель {i}",
                    )
                )
        hub = LaneHub(store)
        with (
            simulated_devices(settings, workdir / "sim") as sims,
            DeviceManager(
                settings,
                hub,
                scanner_ports=sims.scanner_ports,
                printer_connections=sims.printer_connections,
            ),
            ApiServer(create_app(settings, store=store, hub=hub), free_port()) as server,
        ):
            follower = LaneFollower(f"http://127.0.0.1:{server.port}", key, "lane-1")
            try:
                time.sleep(0.5)
                scanner = measure_scanner(sims.scanners["lane-1"], follower, customers, args.scans)
                camera = measure_camera(
                    sims.cameras["lane-1"], follower, store, customers, args.shows, args.fps
                )
            finally:
                follower.close()
        store.close()

    rows = []
    for name, (stats, missed) in {"camera": camera, "scanner": scanner}.items():
        target = TARGETS_MS[name]
        rows.append(
            [
                name,
                str(stats.n),
                str(missed),
                f"{stats.median_ms:.1f}",
                f"{stats.p99_ms:.1f}",
                f"≤ {target:.0f}",
                verdict(stats.p99_ms <= target and missed == 0),
            ]
        )
    results_table(
        "device → SSE event latency (ms)",
        ["device", "n", "missed", "median", "p99", "target p99", ""],
        rows,
    )


def measure_scanner(scanner, follower, customers, n: int) -> tuple[Stats, int]:  # type: ignore[no-untyped-def]
    times, missed = [], 0
    for i in range(n):
        card = customers[i % len(customers)].card_numbers[0]
        scanner.scan(card)  # returns once the last byte is on the wire
        sent = time.monotonic()
        event = follower.next({"customer_identified", "customer_unknown", "token_invalid"}, 2.0)
        if event is None or event["event"] != "customer_identified":
            missed += 1
            continue
        times.append(time.monotonic() - sent)
    console.print(f"scanner: {n} scans at {scanner.baudrate} baud")
    return Stats.of(times), missed


def measure_camera(device, follower, store, customers, n: int, fps: float) -> tuple[Stats, int]:  # type: ignore[no-untyped-def]
    times, missed = [], 0
    for i in range(n):
        customer = customers[i % len(customers)]
        scenario = Scenario(
            payload=loyalty_qr(secret=store.secret, customer_id=customer.id, now=store.now()),
            width=1280,
            height=720,
            fps=fps,
            show_from_s=0.2,
            show_until_s=2.0,
            angle_deg=(i * 7) % 30,
        )
        device.show(scenario)
        event = follower.next({"customer_identified", "customer_unknown", "token_invalid"}, 3.0)
        if event is None or event["event"] != "customer_identified":
            missed += 1
            continue
        # From the capture of the frame the code was decoded in (the event's read_at).
        read_at = datetime.fromisoformat(event["read_at"])
        times.append((datetime.now(UTC) - read_at).total_seconds())
        time.sleep(0.3)
    console.print(f"camera: {n} customers shown at 1280×720, {fps:g} fps")
    return Stats.of(times), missed


if __name__ == "__main__":
    main()
