"""Serial barcode scanners and magnetic-stripe readers, read with pyserial on their own thread.

The wire framing is configured as the scanner is programmed (`ScannerFraming`). Frames that are
garbled, fail their LRC, or are cut short are dropped with a log line and counted; a port that
disappears is polled for until it comes back.

Magnetic-stripe swipes (ISO 7813 track 1 `%B…^…^…?`, track 2 `;…=…?`, or both in one frame) are
reduced here to the card number (`Reading.payload`, symbology "msr"); the whole track text stays
in `Reading.raw`. A swipe whose tracks do not parse, or whose two tracks disagree, is dropped as
garbled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from drivers.reading import Debouncer, PayloadCallback, Reading, ReadingOutlet

log = logging.getLogger(__name__)

STX = 0x02
ETX = 0x03

SuffixName = Literal["auto", "none", "cr", "lf", "crlf", "tab"]
_SUFFIX_BYTES: dict[str, bytes] = {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n", "tab": b"\t"}
_AUTO_TERMINATORS = b"\r\n\t"

# AIM symbology identifier (ISO/IEC 15424): "]" + code character + modifier.
_AIM_ID = re.compile(r"^\]([A-Za-z])([0-9A-Za-z])")
_AIM_SYMBOLOGY = {
    "E": "ean13",  # ]E0 EAN-13/UPC-A, ]E4 EAN-8
    "C": "code128",
    "A": "code39",
    "I": "itf",
    "Q": "qr",
    "d": "datamatrix",
    "L": "pdf417",
    "e": "gs1-databar",
}
# GS (0x1D) separates variable-length element strings in GS1 data (FNC1 as a scanner sends it).
GS1_SEPARATOR = "\x1d"
_TRACK1 = re.compile(r"%B(?P<pan>\d{8,19})\^(?P<name>[^^?]{0,26})\^(?P<rest>[^?]*)\?")
_TRACK2 = re.compile(r";(?P<pan>\d{8,19})=(?P<rest>[^?]*)\?")


@dataclass(frozen=True, slots=True)
class ScannerFraming:
    """How the scanner is programmed to frame a scan on the wire.

    suffix "auto" ends a frame at any CR, LF or TAB (empty frames ignored); "none" ends a frame
    when the line has been idle for `frame_timeout_s`. A framing with a terminator (a suffix, or
    STX…ETX) frames by it alone: a scan that arrives in pieces (a reader buffering, a USB-serial
    bridge) is still one scan; only a frame left unfinished for `truncated_after_s` is dropped
    as truncated. With `stx_etx`, a frame is STX…ETX
    (+ one LRC byte if `lrc`) and whitespace between frames is ignored. `prefix` and `trailer`
    are what the scanner is programmed to send before and after each scan (inside the
    terminator): they are stripped, and a frame without them is dropped as garbage.
    """

    suffix: SuffixName = "auto"
    prefix: bytes = b""
    trailer: bytes = b""
    stx_etx: bool = False
    lrc: bool = False
    strip_aim: bool = True
    frame_timeout_s: float = 0.2  # suffix "none": the silence that ends a frame
    truncated_after_s: float = 1.0  # with a terminator: an unfinished frame is dropped after this
    max_frame_bytes: int = 512

    @property
    def silence_ends_frame(self) -> bool:
        return not self.stx_etx and self.suffix == "none"

    @property
    def silence_timeout_s(self) -> float:
        return self.frame_timeout_s if self.silence_ends_frame else self.truncated_after_s


@dataclass(frozen=True, slots=True)
class Frame:
    """A complete frame's content (framing removed), or the reason it was dropped."""

    content: bytes
    dropped: str | None = None  # "truncated", "bad_lrc", "overlong", "garbage"


class FrameSplitter:
    """Turns a byte stream into frames; pure (no I/O, the clock is passed in)."""

    def __init__(self, framing: ScannerFraming) -> None:
        self.framing = framing
        self._buf = bytearray()
        self._in_frame = False  # STX seen (STX mode) / first byte seen (line mode)
        self._await_lrc = False
        self._last_byte_at = 0.0

    def feed(self, data: bytes, now: float) -> list[Frame]:
        frames = self.poll(now)
        for byte in data:
            frames.extend(self._feed_byte(byte))
        if data:
            self._last_byte_at = now
        return frames

    def poll(self, now: float) -> list[Frame]:
        """Close a frame the line has gone silent on (truncated, or complete with suffix none)."""
        if (
            not (self._in_frame or self._buf)
            or now - self._last_byte_at < self.framing.silence_timeout_s
        ):
            return []
        content = bytes(self._buf)
        self._reset()
        if self.framing.silence_ends_frame:
            return [Frame(content)]
        return [Frame(content, dropped="truncated")]

    def _reset(self) -> None:
        self._buf.clear()
        self._in_frame = False
        self._await_lrc = False

    def _feed_byte(self, byte: int) -> list[Frame]:
        if len(self._buf) >= self.framing.max_frame_bytes:
            self._reset()
            return [Frame(b"", dropped="overlong")]
        if self.framing.stx_etx:
            return self._feed_stx(byte)
        return self._feed_line(byte)

    def _feed_stx(self, byte: int) -> list[Frame]:
        if self._await_lrc:
            inner = bytes(self._buf)
            self._reset()
            expected = 0
            for b in inner:
                expected ^= b
            frame = Frame(inner[:-1]) if byte == expected else Frame(inner[:-1], dropped="bad_lrc")
            return [frame]
        if byte == STX:
            dropped = [Frame(bytes(self._buf), dropped="truncated")] if self._in_frame else []
            self._reset()
            self._in_frame = True
            return dropped
        if not self._in_frame:
            # Between frames: a suffix, prefix or whitespace is normal; anything else is noise.
            if byte in b"\r\n\t " or byte in self.framing.prefix + self.framing.trailer:
                return []
            return [Frame(bytes([byte]), dropped="garbage")]
        self._buf.append(byte)
        if byte == ETX:
            if self.framing.lrc:
                self._await_lrc = True
                return []
            inner = bytes(self._buf)
            self._reset()
            return [Frame(inner[:-1])]
        return []

    def _feed_line(self, byte: int) -> list[Frame]:
        suffix = self.framing.suffix
        if suffix == "auto":
            if byte in _AUTO_TERMINATORS:
                content = bytes(self._buf)
                self._reset()
                return [Frame(content)] if content else []
            self._buf.append(byte)
            return []
        if suffix == "none":
            self._buf.append(byte)
            return []
        self._buf.append(byte)
        terminator = _SUFFIX_BYTES[suffix]
        if self._buf.endswith(terminator):
            content = bytes(self._buf[: -len(terminator)])
            self._reset()
            return [Frame(content)] if content else []
        return []


@dataclass(frozen=True, slots=True)
class Decoded:
    payload: str
    symbology: str
    raw: str


def interpret_frame(content: bytes, framing: ScannerFraming) -> Decoded | str:
    """A frame's content as a payload, or why it is garbage (a short word for the counter)."""
    if not framing.stx_etx:  # with STX/ETX they sit outside the frame and are skipped there
        if framing.prefix:
            if not content.startswith(framing.prefix):
                return "missing_prefix"
            content = content[len(framing.prefix) :]
        if framing.trailer:
            if not content.endswith(framing.trailer):
                return "missing_suffix"
            content = content[: -len(framing.trailer)]
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return "garbled"
    if not text or any((ord(ch) < 0x20 and ch != GS1_SEPARATOR) or ord(ch) == 0x7F for ch in text):
        return "garbled"
    raw = text
    symbology = "unknown"
    aim = _AIM_ID.match(text)
    if aim and framing.strip_aim:
        symbology = _AIM_SYMBOLOGY.get(aim[1], "unknown")
        if aim[1] == "E" and aim[2] == "4":
            symbology = "ean8"
        text = text[aim.end() :]
        if not text:
            return "garbled"
    if text[0] in "%;":
        pan = card_number_from_tracks(text)
        if pan is None:
            return "garbled_track"
        return Decoded(payload=pan, symbology="msr", raw=raw)
    return Decoded(payload=text, symbology=symbology, raw=raw)


def card_number_from_tracks(text: str) -> str | None:
    """The PAN of a swipe holding track 1, track 2 or both; None if garbled or inconsistent."""
    pans = []
    rest = text
    while rest:
        match = _TRACK1.match(rest) or _TRACK2.match(rest)
        if not match:
            return None
        pans.append(match["pan"])
        rest = rest[match.end() :]
    if not pans or len(set(pans)) != 1:
        return None
    return pans[0]


@dataclass(frozen=True, slots=True)
class ScannerState:
    """A snapshot for /v1/devices and the lane's fault events."""

    name: str
    port: str
    connected: bool
    frames_ok: int
    frames_dropped: int
    frames_repeated: int  # good scans of a payload read within debounce_s: not delivered again
    drop_reasons: dict[str, int]
    reconnects: int
    last_error: str | None
    last_reading_at: datetime | None


@dataclass
class _Counters:
    frames_ok: int = 0
    frames_repeated: int = 0
    drop_reasons: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0
    last_error: str | None = None
    last_reading_at: datetime | None = None
    connected: bool = False


class SerialScanner:
    """Reads a serial scanner on its own thread and delivers each good scan as a `Reading`.

    `port` is a device path (`/dev/ttyACM0`, a pty symlink) or any pyserial URL (`rfc2217://…`).
    A path that is missing is polled for every `poll_s` until it appears.
    """

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 9600,
        framing: ScannerFraming | None = None,
        on_payload: PayloadCallback | None = None,
        name: str = "scanner",
        poll_s: float = 0.2,
        debounce_s: float = 1.0,
    ) -> None:
        """`debounce_s`: the same payload read again within this many seconds of its last read
        is one scan (a reader in continuous mode, a card held in the beam), as the camera does."""
        self.port = port
        self.debounce_s = debounce_s
        self._debouncer = Debouncer(debounce_s)
        self.baudrate = baudrate
        self.framing = framing or ScannerFraming()
        self.name = name
        self.poll_s = poll_s
        self._outlet = ReadingOutlet(on_payload)
        self._lock = threading.Lock()
        self._counters = _Counters()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._serial: Any = None

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> SerialScanner:
        try:
            import serial  # noqa: F401  (pyserial; imported lazily like every hardware library)
        except ImportError as exc:  # pragma: no cover - pyserial is a project dependency
            raise RuntimeError("the serial scanner needs pyserial: pip install pyserial") from exc
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-reader", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop reading and close the port; waits at most `timeout` seconds for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s: reader thread did not stop within %.1f s", self.name, timeout)
            self._thread = None
        self._close()

    def __enter__(self) -> SerialScanner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def state(self) -> ScannerState:
        with self._lock:
            c = self._counters
            return ScannerState(
                name=self.name,
                port=self.port,
                connected=c.connected,
                frames_ok=c.frames_ok,
                frames_dropped=sum(c.drop_reasons.values()),
                frames_repeated=c.frames_repeated,
                drop_reasons=dict(c.drop_reasons),
                reconnects=c.reconnects,
                last_error=c.last_error,
                last_reading_at=c.last_reading_at,
            )

    def next_reading(self, timeout: float | None = None) -> Reading | None:
        """With no callback: the next scan, or None after `timeout` seconds."""
        return self._outlet.next_reading(timeout)

    # --- the reader thread ---------------------------------------------------------------------

    def _run(self) -> None:
        opened_before = False
        while not self._stop.is_set():
            if self._serial is None:
                if not self._open():
                    self._stop.wait(self.poll_s)
                    continue
                if opened_before:
                    with self._lock:
                        self._counters.reconnects += 1
                opened_before = True
            self._read_until_error()

    def _open(self) -> bool:
        import serial

        is_url = "://" in self.port
        if not is_url and not os.path.exists(self.port):
            self._set_disconnected(f"{self.port} is not present")
            return False
        try:
            self._serial = serial.serial_for_url(
                self.port, baudrate=self.baudrate, timeout=0.05, exclusive=not is_url or None
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            self._set_disconnected(f"cannot open {self.port}: {exc}")
            return False
        with self._lock:
            self._counters.connected = True
        log.info("%s: connected on %s at %d baud", self.name, self.port, self.baudrate)
        return True

    def _read_until_error(self) -> None:
        import serial

        splitter = FrameSplitter(self.framing)
        ser = self._serial
        while not self._stop.is_set():
            try:
                data = ser.read(max(1, ser.in_waiting))
            except (serial.SerialException, OSError, TypeError) as exc:
                # TypeError: pyserial's read on a port closed under it by stop().
                for frame in splitter.poll(float("inf")):
                    self._handle(frame)
                self._close()
                if not self._stop.is_set():
                    self._set_disconnected(f"{self.port} went away: {exc}")
                    log.warning("%s: %s went away (%s); polling for it", self.name, self.port, exc)
                return
            for frame in splitter.feed(data, time.monotonic()):
                self._handle(frame)

    def _handle(self, frame: Frame) -> None:
        if frame.dropped is not None:
            self._drop(frame.dropped, frame.content)
            return
        decoded = interpret_frame(frame.content, self.framing)
        if isinstance(decoded, str):
            self._drop(decoded, frame.content)
            return
        now = datetime.now(UTC)
        with self._lock:
            self._counters.frames_ok += 1
            self._counters.last_reading_at = now
            if not self._is_new(decoded.payload, time.monotonic()):
                self._counters.frames_repeated += 1
                return
        self._outlet.deliver(
            Reading(
                payload=decoded.payload,
                symbology=decoded.symbology,
                source=self.name,
                at=now,
                monotonic=time.monotonic(),
                raw=decoded.raw,
            )
        )

    def _is_new(self, payload: str, now: float) -> bool:
        return self._debouncer.is_new(payload, now)

    def _drop(self, reason: str, content: bytes) -> None:
        # Digits are masked: a bank card swiped by mistake must not leave its number in a log.
        preview = re.sub(rb"\d", b"#", content[:64])
        log.warning(
            "%s: dropped a %s frame (%d bytes: %r)", self.name, reason, len(content), preview
        )
        with self._lock:
            self._counters.drop_reasons[reason] = self._counters.drop_reasons.get(reason, 0) + 1

    def _set_disconnected(self, error: str) -> None:
        with self._lock:
            self._counters.connected = False
            self._counters.last_error = error

    def _close(self) -> None:
        ser, self._serial = self._serial, None
        if ser is not None:
            with contextlib.suppress(Exception):
                ser.close()
        with self._lock:
            self._counters.connected = False
