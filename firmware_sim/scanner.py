"""A virtual serial barcode scanner / magnetic-stripe reader on a pseudo-terminal.

The slave end of a raw pty is offered under a stable symlink, so a driver opens it with pyserial
exactly as it would open /dev/ttyACM0. Scans are framed the way real scanners are configured
(prefix/suffix, STX…ETX with an optional LRC, an AIM symbology identifier) and the bytes are paced
at the configured baud rate (8N1: 10 bits on the wire per byte). Faults: garbled bytes, a truncated
frame, two frames back to back, a scan split across two reads, the same scan repeated, unplug (the
path disappears, the pty closes) and replug.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
import tty
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

STX = 0x02
ETX = 0x03

SUFFIXES: dict[str, bytes] = {"none": b"", "cr": b"\r", "lf": b"\n", "crlf": b"\r\n", "tab": b"\t"}

# AIM symbology identifiers (ISO/IEC 15424) a scanner prepends when configured to.
AIM_IDS: dict[str, str] = {
    "ean13": "]E0",
    "ean8": "]E4",
    "upca": "]E0",
    "code128": "]C0",
    "gs1-128": "]C1",
    "code39": "]A0",
    "itf": "]I0",
    "qr": "]Q1",
    "datamatrix": "]d1",
    "pdf417": "]L0",
}

TrackChoice = Literal["1", "2", "both"]


@dataclass(frozen=True, slots=True)
class Framing:
    """How the scanner is programmed to wrap each scan on the wire."""

    prefix: bytes = b""
    suffix: bytes = b"\r\n"
    stx_etx: bool = False  # STX <data> ETX
    lrc: bool = False  # one XOR byte after ETX (only with stx_etx)
    aim: bool = False  # prepend the AIM symbology identifier (]E0, ]Q1, ]C0 …)

    @classmethod
    def with_suffix(cls, name: str, **kwargs: object) -> Framing:
        """`Framing.with_suffix("crlf")`; names as scanner manuals print them."""
        try:
            suffix = SUFFIXES[name.lower()]
        except KeyError:
            raise ValueError(f"unknown suffix {name!r}; one of {', '.join(SUFFIXES)}") from None
        return cls(suffix=suffix, **kwargs)  # type: ignore[arg-type]


def lrc(data: bytes) -> int:
    """Longitudinal redundancy check: XOR of the bytes after STX up to and including ETX."""
    value = 0
    for byte in data:
        value ^= byte
    return value


def frame_scan(data: str | bytes, framing: Framing, symbology: str = "code128") -> bytes:
    """The exact bytes a scanner so configured sends for one scan."""
    body = data.encode("utf-8") if isinstance(data, str) else data
    if framing.aim and symbology != "msr":  # a card reader sends its tracks bare
        body = AIM_IDS.get(symbology, "]Z0").encode("ascii") + body
    if framing.stx_etx:
        inner = body + bytes([ETX])
        framed = bytes([STX]) + inner + (bytes([lrc(inner)]) if framing.lrc else b"")
    else:
        framed = body
    return framing.prefix + framed + framing.suffix


def track1(
    pan: str, name: str, expiry_yymm: str, service_code: str = "101", extra: str = ""
) -> str:
    """ISO 7813 track 1 as a reader transmits it: `%B<pan>^<NAME>^<YYMM><svc><extra>?`."""
    return f"%B{pan}^{name.upper()[:26]}^{expiry_yymm}{service_code}{extra}?"


def track2(pan: str, expiry_yymm: str, service_code: str = "101", extra: str = "") -> str:
    """ISO 7813 track 2 as a reader transmits it: `;<pan>=<YYMM><svc><extra>?`."""
    return f";{pan}={expiry_yymm}{service_code}{extra}?"


def swipe_text(
    pan: str, name: str, expiry_yymm: str, tracks: TrackChoice = "both", service_code: str = "101"
) -> str:
    """What one swipe sends: track 1, track 2, or both back to back in one frame."""
    parts = []
    if tracks in ("1", "both"):
        parts.append(track1(pan, name, expiry_yymm, service_code, extra="0000000000"))
    if tracks in ("2", "both"):
        parts.append(track2(pan, expiry_yymm, service_code, extra="00000000"))
    return "".join(parts)


class VirtualScanner:
    """A serial scanner plugged in at `link`; `scan()` sends one framed, baud-paced scan.

    The pty slave is kept open by the simulator so the line stays up between driver opens; the
    master side is where the "scanner" writes.
    """

    def __init__(
        self,
        link: str | os.PathLike[str],
        *,
        baudrate: int = 9600,
        framing: Framing | None = None,
        pace: bool = True,
        seed: int = 0,
    ) -> None:
        if baudrate <= 0:
            raise ValueError(f"baud rate must be positive, not {baudrate}")
        self.link = Path(link)
        self.baudrate = baudrate
        self.framing = framing or Framing()
        self.pace = pace
        self._rng = random.Random(seed)
        self._master: int | None = None
        self._slave: int | None = None
        self._lock = threading.Lock()
        self.bytes_sent = 0

    # --- plugging ------------------------------------------------------------------------------

    def start(self) -> VirtualScanner:
        """Plug the scanner in: open a raw pty and point the link at its slave."""
        with self._lock:
            if self._master is not None:
                return self
            master, slave = os.openpty()
            tty.setraw(slave)
            self._master, self._slave = master, slave
            target = os.ttyname(slave)
            tmp = self.link.with_name(f".{self.link.name}.{os.getpid()}.tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(target)
            tmp.replace(self.link)  # atomic: a poller never sees a half-made link
            log.info("virtual scanner plugged in at %s -> %s", self.link, target)
        return self

    def unplug(self) -> None:
        """The cable is pulled: the path disappears and the pty closes under the driver."""
        with self._lock:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
            for fd in (self._master, self._slave):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._master = self._slave = None
            log.info("virtual scanner unplugged from %s", self.link)

    def replug(self) -> None:
        """Plugged back in: a new pty, the same path."""
        self.unplug()
        self.start()

    @property
    def plugged(self) -> bool:
        return self._master is not None

    @property
    def port(self) -> str:
        return str(self.link)

    def close(self) -> None:
        self.unplug()

    def __enter__(self) -> VirtualScanner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- scans ---------------------------------------------------------------------------------

    def scan(self, data: str | bytes, symbology: str = "code128") -> bytes:
        """Send one scan framed as configured; returns the bytes put on the wire."""
        wire = frame_scan(data, self.framing, symbology)
        self.send_raw(wire)
        return wire

    def swipe(
        self,
        pan: str,
        name: str = "IVANOV/IVAN",
        expiry_yymm: str = "2912",
        tracks: TrackChoice = "both",
    ) -> bytes:
        """Swipe a magnetic-stripe card (ISO 7813 track 1, track 2, or both in one frame)."""
        return self.scan(swipe_text(pan, name, expiry_yymm, tracks), symbology="msr")

    def scan_garbled(self, data: str | bytes, symbology: str = "code128", errors: int = 2) -> bytes:
        """Line noise: a few payload bytes arrive as non-printable junk (framing errors)."""
        wire = bytearray(frame_scan(data, self.framing, symbology))
        start = len(self.framing.prefix) + (1 if self.framing.stx_etx else 0)
        end = start + len(data if isinstance(data, bytes) else data.encode("utf-8"))
        for pos in self._rng.sample(range(start, end), k=min(errors, end - start)):
            wire[pos] = self._rng.choice([0x00, 0x7F, 0x80, 0x9C, 0xB5, 0xFE, 0xFF, 0x1B])
        self.send_raw(bytes(wire))
        return bytes(wire)

    def scan_truncated(
        self, data: str | bytes, symbology: str = "code128", keep: float = 0.5
    ) -> bytes:
        """A frame cut short (cable wiggled, reader reset): its tail never arrives."""
        wire = frame_scan(data, self.framing, symbology)
        cut = wire[: max(1, int(len(wire) * keep))]
        self.send_raw(cut)
        return cut

    def scan_back_to_back(self, first: str, second: str, symbology: str = "code128") -> bytes:
        """Two frames with no idle time between them (a buffered double read)."""
        wire = frame_scan(first, self.framing, symbology) + frame_scan(
            second, self.framing, symbology
        )
        self.send_raw(wire)
        return wire

    def scan_split(
        self, data: str | bytes, symbology: str = "code128", gap_s: float = 0.5
    ) -> bytes:
        """One scan in two reads `gap_s` apart (a reader's buffer flushed late, a USB bridge)."""
        wire = frame_scan(data, self.framing, symbology)
        half = max(1, len(wire) // 2)
        self.send_raw(wire[:half])
        time.sleep(gap_s)
        self.send_raw(wire[half:])
        return wire

    def scan_repeated(
        self, data: str | bytes, times: int, symbology: str = "code128", gap_s: float = 0.002
    ) -> bytes:
        """The same code read `times` times in a row (continuous mode, a card held in the beam)."""
        wire = frame_scan(data, self.framing, symbology)
        for index in range(times):
            if index:
                time.sleep(gap_s)
            self.send_raw(wire)
        return wire

    def send_raw(self, wire: bytes) -> None:
        """Put bytes on the wire, each one no earlier than the UART could have sent it."""
        with self._lock:
            master = self._master
            if master is None:
                raise ConnectionError(f"virtual scanner at {self.link} is unplugged")
            if not self.pace:
                os.write(master, wire)
                self.bytes_sent += len(wire)
                return
            byte_time = 10.0 / self.baudrate
            started = time.perf_counter()
            sent = 0
            while sent < len(wire):
                # Send every byte whose stop bit is due by now, then sleep until the next one is.
                due = int((time.perf_counter() - started) / byte_time) + 1
                if due > sent:
                    chunk = wire[sent:due]
                    os.write(master, chunk)
                    sent += len(chunk)
                    self.bytes_sent += len(chunk)
                if sent < len(wire):
                    next_at = started + (sent + 1) * byte_time
                    time.sleep(max(0.0, next_at - time.perf_counter()))

    def wire_time_s(self, n_bytes: int) -> float:
        """How long `n_bytes` take at this baud rate (8N1)."""
        return n_bytes * 10.0 / self.baudrate

    def reframed(self, **changes: object) -> None:
        """Reprogram the scanner (as with a configuration barcode)."""
        self.framing = replace(self.framing, **changes)  # type: ignore[arg-type]
