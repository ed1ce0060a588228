"""A till camera: OpenCV capture on one thread, QR/barcode decoding of the newest frame on another.

Sources: a device index (`0`), a device or file path, an RTSP/HTTP URL, or a URL whose scheme was
registered with `register_capture_scheme`. The drivers never import the simulators; the composition
root (CLI `serve`/`demo`, tests) makes `sim://camera…` work by registering the simulator's opener:

    from drivers.camera import register_capture_scheme
    from firmware_sim.camera import open_sim_url
    register_capture_scheme("sim", open_sim_url)

The grabber keeps only the latest frame (a slot, never a queue), so decoding never falls behind
the camera; a payload seen again within `debounce_s` of its last sighting is not reported again;
a camera that fails is reopened with exponential backoff; file sources with `loop=True` replay.
"""

from __future__ import annotations

import logging
import os
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from drivers.decoders import Decoder, load_decoder
from drivers.reading import Debouncer, PayloadCallback, Reading, ReadingOutlet

log = logging.getLogger(__name__)


class Capture(Protocol):
    """The part of `cv2.VideoCapture` the driver uses; a registered factory returns one."""

    def read(self) -> tuple[bool, Any]: ...

    def isOpened(self) -> bool: ...

    def release(self) -> None: ...

    def get(self, prop_id: int) -> float: ...


CaptureFactory = Callable[[str], Capture]

_SCHEMES: dict[str, CaptureFactory] = {}
_SCHEMES_LOCK = threading.Lock()


def register_capture_scheme(scheme: str, factory: CaptureFactory) -> None:
    """Open URLs `<scheme>://…` with `factory(url)` (e.g. "sim" → firmware_sim's open_sim_url)."""
    with _SCHEMES_LOCK:
        _SCHEMES[scheme.lower()] = factory


def unregister_capture_scheme(scheme: str) -> None:
    with _SCHEMES_LOCK:
        _SCHEMES.pop(scheme.lower(), None)


def is_file_source(source: int | str) -> bool:
    """A regular video file (paced at its own fps, may loop), as opposed to a live camera."""
    return isinstance(source, str) and "://" not in source and os.path.isfile(source)


def open_capture(source: int | str) -> Capture:
    """A capture object for any source form; it may come back not opened (`isOpened()` False)."""
    import cv2

    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        return cv2.VideoCapture(int(source))
    scheme = urlsplit(source).scheme.lower() if "://" in source else ""
    if scheme:
        with _SCHEMES_LOCK:
            factory = _SCHEMES.get(scheme)
        if factory is not None:
            return factory(source)
        if scheme == "sim":
            raise LookupError(
                f"{source!r}: no capture factory registered for sim:// — the composition root "
                "must call drivers.camera.register_capture_scheme('sim', "
                "firmware_sim.camera.open_sim_url)"
            )
        # Network streams: bounded open and read times so a dead stream cannot hang the grabber.
        params = []
        for name in ("CAP_PROP_OPEN_TIMEOUT_MSEC", "CAP_PROP_READ_TIMEOUT_MSEC"):
            if hasattr(cv2, name):
                params += [getattr(cv2, name), 5000]
        return cv2.VideoCapture(source, cv2.CAP_FFMPEG, params)
    return cv2.VideoCapture(source)


def without_password(source: str) -> str:
    """`rtsp://admin:secret@cam/…` as `rtsp://admin:***@cam/…`: a till key must not reveal it."""
    if "://" not in source:
        return source
    parts = urlsplit(source)
    if parts.password is None:
        return source
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


@dataclass(frozen=True, slots=True)
class CameraStats:
    """A snapshot for /v1/devices and the lane's fault events."""

    name: str
    source: str
    decoder: str
    connected: bool
    ended: bool  # a file source without loop that has played to its end
    fps: float  # frames grabbed per second, over the last ~30 frames
    decode_fps: float
    decode_ms_median: float  # over the last 100 decodes
    decode_ms_max: float
    frames_grabbed: int
    frames_decoded: int
    frames_skipped: int  # superseded by a newer frame before the decoder got to them
    readings: int
    reconnects: int
    last_error: str | None
    last_reading_at: datetime | None


class CameraReader:
    """Reads a camera and reports each new QR/barcode payload as a `Reading`.

    `on_payload(reading)` is called on the decode thread; without it, readings queue for
    `next_reading(timeout)`. `decoder` is a name ("zxing", "zbar", "opencv") or a Decoder.
    """

    def __init__(
        self,
        source: int | str,
        *,
        decoder: str | Decoder = "zxing",
        on_payload: PayloadCallback | None = None,
        name: str = "camera",
        debounce_s: float = 3.0,
        loop: bool = False,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10.0,
    ) -> None:
        self.source = source
        self.shown_source = without_password(str(source))  # for logs, errors, /v1/devices
        self.name = name
        self.debounce_s = debounce_s
        self.loop = loop
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        # Load the backend now: a missing library is a start-up error that names what to install.
        self.decoder: Decoder = load_decoder(decoder) if isinstance(decoder, str) else decoder
        self._outlet = ReadingOutlet(on_payload)
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._latest: Any = None
        self._latest_at = 0.0
        self._latest_seq = 0
        self._lock = threading.Lock()
        self._grab_times: deque[float] = deque(maxlen=30)
        self._decode_times: deque[float] = deque(maxlen=30)
        self._decode_ms: deque[float] = deque(maxlen=100)
        self._debouncer = Debouncer(debounce_s)
        self._connected = False
        self._ended = False
        self._grabbed = self._decoded = self._skipped = self._readings = self._reconnects = 0
        self._last_error: str | None = None
        self._last_reading_at: datetime | None = None
        self._threads: list[threading.Thread] = []

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> CameraReader:
        if self._threads:
            return self
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._grab_loop, name=f"{self.name}-grab", daemon=True),
            threading.Thread(target=self._decode_loop, name=f"{self.name}-decode", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 3.0) -> None:
        """Stop both threads; waits at most `timeout` seconds in all."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s: thread %s did not stop in time", self.name, thread.name)
        self._threads = []

    def __enter__(self) -> CameraReader:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def next_reading(self, timeout: float | None = None) -> Reading | None:
        """With no callback: the next new payload, or None after `timeout` seconds."""
        return self._outlet.next_reading(timeout)

    def stats(self) -> CameraStats:
        with self._lock:
            decode_ms = list(self._decode_ms)
            return CameraStats(
                name=self.name,
                source=self.shown_source,
                decoder=self.decoder.name,
                connected=self._connected,
                ended=self._ended,
                # A camera that is not delivering has no frame rate, whatever it had before.
                fps=_rate(self._grab_times) if self._connected else 0.0,
                decode_fps=_rate(self._decode_times) if self._connected else 0.0,
                decode_ms_median=statistics.median(decode_ms) if decode_ms else 0.0,
                decode_ms_max=max(decode_ms, default=0.0),
                frames_grabbed=self._grabbed,
                frames_decoded=self._decoded,
                frames_skipped=self._skipped,
                readings=self._readings,
                reconnects=self._reconnects,
                last_error=self._last_error,
                last_reading_at=self._last_reading_at,
            )

    # --- grabbing ------------------------------------------------------------------------------

    def _grab_loop(self) -> None:
        backoff = self.backoff_initial_s
        is_file = is_file_source(self.source)
        opened_before = False
        while not self._stop.is_set():
            try:
                capture = open_capture(self.source)
            except Exception as exc:  # a factory or backend failing to open is a camera fault
                self._fail(f"cannot open {self.shown_source}: {exc}")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            if not capture.isOpened():
                capture.release()
                self._fail(f"cannot open {self.shown_source}")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            if opened_before:
                with self._lock:
                    self._reconnects += 1
            opened_before = True
            with self._lock:
                self._connected = True
            log.info("%s: capturing from %s", self.name, self.shown_source)
            frames = self._grab_frames(capture, is_file)
            capture.release()
            with self._lock:
                self._connected = False
            if self._stop.is_set():
                break
            if is_file and frames > 0:
                if not self.loop:
                    with self._lock:
                        self._ended = True
                    log.info("%s: %s played to its end", self.name, self.shown_source)
                    break
                backoff = self.backoff_initial_s
                continue  # replay the file from the start
            if frames > 0:
                backoff = self.backoff_initial_s
            self._fail(f"{self.shown_source} stopped delivering frames")
            log.warning(
                "%s: %s went away; reopening in %.1f s", self.name, self.shown_source, backoff
            )
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.backoff_max_s)

    def _grab_frames(self, capture: Capture, is_file: bool) -> int:
        """Read until the capture fails; returns how many frames it gave."""
        frames = 0
        fps = capture.get(5) if is_file else 0.0  # 5 == cv2.CAP_PROP_FPS
        interval = 1.0 / fps if is_file and fps > 0 else (1.0 / 25 if is_file else 0.0)
        next_at = time.monotonic()
        while not self._stop.is_set():
            ok, frame = capture.read()
            if not ok or frame is None:
                return frames
            frames += 1
            now = time.monotonic()
            with self._cond:
                self._latest = frame
                self._latest_at = now
                self._latest_seq += 1
                self._cond.notify()
            with self._lock:
                self._grabbed += 1
                self._grab_times.append(now)
            if interval:
                # A file is played at its own frame rate, as the camera that recorded it ran.
                next_at += interval
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        return frames

    def _fail(self, error: str) -> None:
        with self._lock:
            self._connected = False
            self._last_error = error
            self._grab_times.clear()  # a rate measured before the outage says nothing now
            self._decode_times.clear()

    # --- decoding ------------------------------------------------------------------------------

    def _decode_loop(self) -> None:
        seen_seq = 0

        def fresh_frame_or_stop() -> bool:
            return self._latest_seq != seen_seq or self._stop.is_set()

        while not self._stop.is_set():
            with self._cond:
                self._cond.wait_for(fresh_frame_or_stop, timeout=0.25)
                if self._stop.is_set() or self._latest_seq == seen_seq:
                    continue
                frame, seq, captured = self._latest, self._latest_seq, self._latest_at
            skipped = seq - seen_seq - 1
            seen_seq = seq
            started = time.perf_counter()
            try:
                symbols = self.decoder.decode(frame)
            except Exception as exc:
                log.exception("%s: decoder %s failed on a frame", self.name, self.decoder.name)
                with self._lock:
                    self._last_error = f"decoder {self.decoder.name} failed: {exc}"
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            now = time.monotonic()
            with self._lock:
                self._decoded += 1
                self._skipped += max(0, skipped)
                self._decode_ms.append(elapsed_ms)
                self._decode_times.append(now)
            for symbol in symbols:
                if self._is_new(symbol.text, now):
                    self._report(symbol.text, symbol.symbology, now, captured)

    def _is_new(self, payload: str, now: float) -> bool:
        return self._debouncer.is_new(payload, now)

    def _report(self, payload: str, symbology: str, now: float, captured: float) -> None:
        at = datetime.now(UTC)
        with self._lock:
            self._readings += 1
            self._last_reading_at = at
        log.info("%s: read a %s code", self.name, symbology)
        self._outlet.deliver(
            Reading(
                payload=payload,
                symbology=symbology,
                source=self.name,
                at=at,
                monotonic=now,
                raw=payload,
                captured_monotonic=captured,
            )
        )


def _rate(times: deque[float]) -> float:
    if len(times) < 2 or times[-1] <= times[0]:
        return 0.0
    return (len(times) - 1) / (times[-1] - times[0])
