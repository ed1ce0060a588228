"""Composition: the simulators behind every `sim://…` device of the configuration.

`serve` and `demo` call `simulated_devices(settings, workdir)`; it starts a virtual scanner on a
pseudo-terminal for each `sim://scanner` port, a virtual ESC/POS printer on a local TCP port for
each `sim://printer` (receipts as NNNN.png/.txt in `<workdir>/<lane>-receipts`), registers the
virtual camera for `sim://camera…` sources, and says where each simulated device really is, so
the drivers open them exactly as they would open hardware. Each simulated device also listens for
fault commands on a unix socket in `workdir` (`<lane>-printer.ctl`, `<lane>-scanner.ctl`,
`<lane>-camera.ctl`; see `firmware_sim.control`), so a lane can be fault-tested from outside.
firmware_sim is imported here, lazily, and nowhere else in the core.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pos_loyalty.settings import Settings

SIM_PREFIX = "sim://"
# sun_path holds 108 bytes on Linux, the terminating NUL included.
UNIX_SOCKET_PATH_MAX = 107

log = logging.getLogger(__name__)


@dataclass
class SimulatedDevices:
    """Where the simulated devices are, and handles to drive them (scan, swipe, faults)."""

    scanner_ports: dict[str, str] = field(default_factory=dict)
    scanners: dict[str, Any] = field(default_factory=dict)  # lane id -> firmware_sim VirtualScanner
    cameras: dict[str, Any] = field(default_factory=dict)  # lane id -> VirtualCameraDevice
    printer_connections: dict[str, str] = field(default_factory=dict)  # lane id -> tcp:// URL
    printers: dict[str, Any] = field(default_factory=dict)  # lane id -> firmware_sim VirtualPrinter
    receipt_dirs: dict[str, Path] = field(default_factory=dict)  # lane id -> NNNN.png/.txt folder
    controls: dict[str, Path] = field(default_factory=dict)  # "lane-1/printer" -> control socket


def uses_simulation(settings: Settings) -> bool:
    for lane in settings.lanes:
        if lane.scanner and lane.scanner.port.startswith(SIM_PREFIX):
            return True
        if lane.camera and str(lane.camera.source).startswith(SIM_PREFIX):
            return True
        if lane.printer and lane.printer.connection.startswith(SIM_PREFIX):
            return True
    return False


@contextmanager
def simulated_devices(settings: Settings, workdir: Path) -> Iterator[SimulatedDevices]:
    from drivers.camera import register_capture_scheme, unregister_capture_scheme
    from firmware_sim.camera import (
        Scenario,
        VirtualCameraDevice,
        device_registered,
        open_sim_url,
        register_device,
        unregister_device,
    )
    from firmware_sim.control import (
        ControlServer,
        camera_commands,
        printer_commands,
        scanner_commands,
    )
    from firmware_sim.printer import PrinterServer, VirtualPrinter
    from firmware_sim.scanner import Framing, VirtualScanner

    sims = SimulatedDevices()
    workdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:

        def control(lane_id: str, kind: str, commands: dict[str, Any]) -> None:
            path = workdir / f"{lane_id}-{kind}.ctl"
            if len(os.fsencode(path)) > UNIX_SOCKET_PATH_MAX:
                # A unix socket's path has a hard limit; the device itself still runs.
                log.warning(
                    "%s/%s: no fault control socket: %s is longer than a unix socket path may "
                    "be (%d bytes); give serve a shorter --sim-dir or TMPDIR",
                    lane_id,
                    kind,
                    path,
                    UNIX_SOCKET_PATH_MAX,
                )
                return
            server = ControlServer(path, commands).start()
            stack.callback(server.stop)
            sims.controls[f"{lane_id}/{kind}"] = server.path

        if any(
            lane.camera and str(lane.camera.source).startswith(SIM_PREFIX)
            for lane in settings.lanes
        ):
            register_capture_scheme("sim", open_sim_url)
            stack.callback(unregister_capture_scheme, "sim")
        for lane in settings.lanes:
            source = str(lane.camera.source) if lane.camera else ""
            name = (
                source.removeprefix("sim://camera/") if source.startswith("sim://camera/") else ""
            )
            if name and not device_registered(name):
                # An empty counter until someone holds up a phone (`device.show(...)`).
                device = VirtualCameraDevice(Scenario(payload=None, width=640, height=480))
                register_device(name, device)
                stack.callback(unregister_device, name)
                sims.cameras[lane.id] = device
                control(lane.id, "camera", camera_commands(device))
        for lane in settings.lanes:
            if lane.scanner is None or not lane.scanner.port.startswith(SIM_PREFIX):
                continue
            config = lane.scanner
            # Programmed as the config says the real one is: affixes, AIM ids, terminator.
            prefix, suffix = config.prefix.encode(), config.suffix.encode()
            if config.framing.startswith("stx-etx"):
                framing = Framing(
                    prefix=prefix,
                    suffix=suffix,
                    stx_etx=True,
                    lrc=config.framing == "stx-etx-lrc",
                    aim=config.aim,
                )
            else:
                terminator = Framing.with_suffix(config.framing).suffix
                framing = Framing(prefix=prefix, suffix=suffix + terminator, aim=config.aim)
            scanner = VirtualScanner(
                workdir / f"{lane.id}-scanner", baudrate=config.baudrate, framing=framing
            ).start()
            stack.callback(scanner.close)
            sims.scanners[lane.id] = scanner
            sims.scanner_ports[lane.id] = str(scanner.link)
            control(lane.id, "scanner", scanner_commands(scanner))
        for lane in settings.lanes:
            if lane.printer is None or not lane.printer.connection.startswith(SIM_PREFIX):
                continue
            receipts = workdir / f"{lane.id}-receipts"
            printer = VirtualPrinter(
                lane.printer.profile,
                paper_width_mm=lane.printer.width_mm,
                out_dir=receipts,
                keep_receipts=50,
            )
            server = PrinterServer(printer, "127.0.0.1", 0).start()
            stack.callback(server.stop)
            sims.printers[lane.id] = printer
            sims.receipt_dirs[lane.id] = receipts
            sims.printer_connections[lane.id] = server.url
            control(lane.id, "printer", printer_commands(printer))
        yield sims
