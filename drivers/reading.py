"""What a reader device (camera, serial scanner) hands to the lane: one decoded payload.

Both readers deliver `Reading`s the same way: to an `on_payload(reading)` callback given to the
constructor (called on the reader's own thread, so it must be quick and thread-safe), or, with no
callback, into a small bounded queue drained with `next_reading(timeout)`.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Reading:
    """One decoded scan or frame, ready for identification."""

    payload: str  # QR text, barcode digits, or the card number of a magnetic-stripe swipe
    symbology: str  # "qr", "ean13", "code128", "msr", … or "unknown"
    source: str  # the device's name, e.g. "lane-1/camera"
    at: datetime  # wall-clock time (UTC) the reading completed
    monotonic: float  # time.monotonic() at the same moment, for latency measurements
    raw: str = ""  # as received, minus wire framing: with its AIM id, or the whole track text
    captured_monotonic: float | None = None  # camera: when the decoded frame was grabbed


PayloadCallback = Callable[[Reading], None]


class ReadingOutlet:
    """Delivers readings to a callback, or queues them (bounded, oldest dropped) for polling."""

    def __init__(self, on_payload: PayloadCallback | None, maxsize: int = 64) -> None:
        self._callback = on_payload
        self._queue: queue.Queue[Reading] = queue.Queue(maxsize=maxsize)

    def deliver(self, reading: Reading) -> None:
        if self._callback is not None:
            try:
                self._callback(reading)
            except Exception:
                # The reader must survive a faulty consumer; the reading is lost and said so.
                log.exception("on_payload callback failed; reading %r lost", reading.payload)
            return
        while True:
            try:
                self._queue.put_nowait(reading)
                return
            except queue.Full:
                try:
                    dropped = self._queue.get_nowait()
                    log.warning("reading queue full; dropped oldest %r", dropped.payload)
                except queue.Empty:
                    pass

    def next_reading(self, timeout: float | None = None) -> Reading | None:
        """The next queued reading, or None after `timeout` seconds (only without a callback)."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None


class Debouncer:
    """A payload is new unless the same one was read within `debounce_s` of now (a code held in
    front of a camera, a scanner in continuous mode): both readers report it once."""

    def __init__(self, debounce_s: float) -> None:
        self.debounce_s = debounce_s
        self._last_seen: dict[str, float] = {}

    def is_new(self, payload: str, now: float) -> bool:
        last = self._last_seen.get(payload)
        self._last_seen[payload] = now
        if len(self._last_seen) > 256:
            cutoff = now - self.debounce_s
            self._last_seen = {p: t for p, t in self._last_seen.items() if t >= cutoff}
        return last is None or now - last > self.debounce_s
