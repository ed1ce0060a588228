"""The device manager: starts every lane's readers and connects them to the lane hub.

Each decoded token goes to `LaneHub.identify_token` (identification and the lane's event); a
watcher publishes `device_fault` when a device disconnects or reports a new error, and
`device_restored` when it comes back. Devices register their status for `GET /v1/devices`.
A lane with a printer gets a print worker (`drivers.print_queue`) that publishes its own events.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Protocol

from drivers.camera import CameraReader
from drivers.decoders import DecoderUnavailable
from drivers.print_queue import PrintWorker, ReceiptRenderer, store_receipt_renderer
from drivers.printer import PrinterConfigError, PrinterDependencyMissing
from drivers.reading import Reading
from drivers.scanner import ScannerFraming, SerialScanner
from pos_loyalty.lanes import DEVICE_FAULT, DEVICE_RESTORED, LaneHub
from pos_loyalty.settings import LaneConfig, PrinterConfig, ScannerConfig, Settings

log = logging.getLogger(__name__)


class Reader(Protocol):
    def start(self) -> Any: ...

    def stop(self, timeout: float = ...) -> None: ...


def scanner_framing(config: ScannerConfig) -> ScannerFraming:
    """The driver's framing for the way the store programmed its scanner (config `framing`)."""
    prefix, trailer = config.prefix.encode(), config.suffix.encode()
    if config.framing.startswith("stx-etx"):
        return ScannerFraming(
            stx_etx=True, lrc=config.framing == "stx-etx-lrc", prefix=prefix, trailer=trailer
        )
    return ScannerFraming(suffix=config.framing, prefix=prefix, trailer=trailer)  # type: ignore[arg-type]


def camera_source(source: int | str, settings: Settings) -> int | str:
    """A device index or URL as written; a relative file or device path is relative to the
    config file's folder, like the database and the secret."""
    if isinstance(source, int) or source.isdigit() or "://" in source:
        return source
    return str(settings.resolve_path(source))


@dataclasses.dataclass
class _Watched:
    name: str
    lane_id: str
    status: Callable[[], dict[str, Any]]
    connected: bool | None = None
    last_error: str | None = None


class DeviceManager:
    """Runs the readers of every configured lane for as long as the service runs."""

    def __init__(
        self,
        settings: Settings,
        hub: LaneHub,
        *,
        scanner_ports: Mapping[str, str] | None = None,
        printer_connections: Mapping[str, str] | None = None,
        render_receipt: ReceiptRenderer | None = None,
        watch_interval_s: float = 0.5,
    ) -> None:
        self.settings = settings
        self.hub = hub
        # Where a lane's scanner really is, when config names a simulated one (`sim://scanner`).
        self.scanner_ports = dict(scanner_ports or {})
        # Where a lane's printer really is (`sim://printer`), and how an outbox row becomes bytes.
        self.printer_connections = dict(printer_connections or {})
        self.render_receipt = render_receipt
        self._unwatched: list[str] = []  # registered devices the watcher leaves alone
        self.watch_interval_s = watch_interval_s
        self._readers: list[Reader] = []
        self._watched: list[_Watched] = []
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> DeviceManager:
        for lane in self.settings.lanes:
            self._start_lane(lane)
        self._watcher = threading.Thread(target=self._watch, name="device-watch", daemon=True)
        self._watcher.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for reader in self._readers:
            try:
                reader.stop(timeout=3.0)
            except Exception:
                log.exception("a device did not stop cleanly")
        if self._watcher is not None:
            self._watcher.join(timeout=3.0)
        for watched in self._watched:
            self.hub.unregister_device(watched.name)
        for name in self._unwatched:
            self.hub.unregister_device(name)

    def __enter__(self) -> DeviceManager:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _on_reading(self, lane_id: str) -> Callable[[Reading], None]:
        def deliver(reading: Reading) -> None:
            # When the device captured it: a camera frame's grab time, a scan's last byte.
            captured = reading.captured_monotonic or reading.monotonic
            read_at = reading.at - timedelta(seconds=max(0.0, reading.monotonic - captured))
            self.hub.identify_token(
                lane_id, reading.payload, source=reading.source, read_at=read_at
            )

        return deliver

    def _start_lane(self, lane: LaneConfig) -> None:
        if lane.camera is not None:
            try:
                camera = CameraReader(
                    camera_source(lane.camera.source, self.settings),
                    decoder=lane.camera.decoder,
                    on_payload=self._on_reading(lane.id),
                    name=f"{lane.id}/camera",
                    debounce_s=lane.camera.debounce_s,
                    loop=lane.camera.loop,
                )
            except DecoderUnavailable as exc:  # the lane's other devices and the API still run
                self._not_started(lane.id, f"{lane.id}/camera", "camera", str(exc))
            else:
                self._add(camera, f"{lane.id}/camera", lane.id, "camera", camera.stats)
        if lane.scanner is not None:
            port = self.scanner_ports.get(lane.id, lane.scanner.port)
            scanner = SerialScanner(
                port,
                baudrate=lane.scanner.baudrate,
                framing=scanner_framing(lane.scanner),
                on_payload=self._on_reading(lane.id),
                name=f"{lane.id}/scanner",
                debounce_s=lane.scanner.debounce_s,
            )
            self._add(scanner, f"{lane.id}/scanner", lane.id, "scanner", scanner.state)
        if lane.printer is not None:
            self._start_printer(lane.id, lane.printer)

    def _start_printer(self, lane_id: str, config: PrinterConfig) -> None:
        """The lane's print worker; it publishes its own faults and print results."""
        try:
            worker = PrintWorker(
                store=self.hub.store,
                lane_id=lane_id,
                config=config,
                render=self.render_receipt or store_receipt_renderer(self.hub.store),
                hub=self.hub,
                connection=self.printer_connections.get(lane_id),
            )
        except (PrinterConfigError, PrinterDependencyMissing) as exc:  # receipts stay queued
            self._not_started(lane_id, f"{lane_id}/printer", "printer", str(exc))
            return
        worker.start()
        self._readers.append(worker)
        self._unwatched.append(worker.name)
        self.hub.register_device(worker.name, lane_id, "printer", worker.status)
        log.info("lane %s: %s started on %s", lane_id, worker.name, worker.printer.url)

    def _not_started(self, lane_id: str, name: str, kind: str, error: str) -> None:
        """A device that cannot run as configured: logged, in /v1/devices, told to the lane."""
        log.error("lane %s: %s not started: %s", lane_id, name, error)
        state = {"connected": False, "state": "not_started", "last_error": error}
        self.hub.register_device(name, lane_id, kind, state.copy)
        self._unwatched.append(name)
        self.hub.publish(
            lane_id, DEVICE_FAULT, {"device": name, "code": "not_started", "message": error}
        )

    def _add(
        self, reader: Reader, name: str, lane_id: str, kind: str, snapshot: Callable[[], Any]
    ) -> None:
        def status() -> dict[str, Any]:
            state = dataclasses.asdict(snapshot())
            state.pop("name", None)
            return state

        reader.start()
        self._readers.append(reader)
        self._watched.append(_Watched(name, lane_id, status))
        self.hub.register_device(name, lane_id, kind, status)
        log.info("lane %s: %s started", lane_id, name)

    def _watch(self) -> None:
        """Tell the lane when a device drops off or comes back, once per change."""
        while not self._stop.wait(self.watch_interval_s):
            for device in self._watched:
                try:
                    state = device.status()
                except Exception as exc:
                    state = {"connected": False, "last_error": str(exc)}
                connected = bool(state.get("connected"))
                error = state.get("last_error")
                if device.connected is not None and connected != device.connected:
                    kind = DEVICE_RESTORED if connected else DEVICE_FAULT
                    if connected:
                        message = "connected"
                    elif state.get("ended"):  # a camera file without loop = true
                        message = "the video file has played to its end"
                    else:
                        message = error or "disconnected"
                    self.hub.publish(
                        device.lane_id, kind, {"device": device.name, "message": message}
                    )
                elif error and error != device.last_error and not connected:
                    self.hub.publish(
                        device.lane_id, DEVICE_FAULT, {"device": device.name, "message": error}
                    )
                device.connected, device.last_error = connected, error
