"""What an ESC/POS printer says about itself: the DLE EOT status bytes decoded, and the errors a
printer driver raises. Bit layouts are Epson's ("Transmit real-time status"), shared by the
TM-T88 family and the printers that emulate it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_TCP_PORT = 9100
DLE_EOT = b"\x10\x04"
# DLE ENQ 1: recover from a recoverable error and go on from the line where it stopped.
RECOVER_AND_RESUME = b"\x10\x05\x01"
# GS r 1: transmit paper sensor status. Not real-time: answered in order, after the job.
TRANSMIT_PAPER_STATUS = b"\x1dr\x01"

# DLE EOT n replies (Epson ESC/POS reference, "Transmit real-time status"): in every reply
# bit 0 and bit 7 are 0 and bits 1 and 4 are 1, which tells a status byte from anything else.
FIXED_BITS_MASK = 0x93
FIXED_BITS = 0x12
PRINTER_OFFLINE = 0x08  # n=1 bit 3
PRINTER_WAITING_RECOVERY = 0x20  # n=1 bit 5
PRINTER_DRAWER_PIN_HIGH = 0x04  # n=1 bit 2
OFFLINE_COVER_OPEN = 0x04  # n=2 bit 2
OFFLINE_FEED_BUTTON = 0x08  # n=2 bit 3
OFFLINE_PAPER_END_STOP = 0x20  # n=2 bit 5
OFFLINE_ERROR = 0x40  # n=2 bit 6
ERROR_RECOVERABLE = 0x04  # n=3 bit 2
ERROR_AUTOCUTTER = 0x08  # n=3 bit 3
ERROR_UNRECOVERABLE = 0x20  # n=3 bit 5
ERROR_AUTO_RECOVERABLE = 0x40  # n=3 bit 6
PAPER_NEAR_END = 0x0C  # n=4 bits 2-3
PAPER_END = 0x60  # n=4 bits 5-6
# GS r 1 reply: bits 0-1 near end, bits 2-3 paper end.
GS_R_PAPER_END = 0x0C

# Machine codes for why a printer cannot take a job now (events, `last_error`, outbox rows).
PRINTER_OFFLINE_CODE = "printer_offline"
COVER_OPEN_CODE = "cover_open"
PAPER_OUT_CODE = "paper_out"
PRINTER_ERROR_CODE = "printer_error"
PRINTER_NOT_READY_CODE = "printer_not_ready"


class PrinterConfigError(ValueError):
    """The connection URL or profile cannot describe a printer."""


class PrinterDependencyMissing(RuntimeError):
    """The library a connection needs is not installed; the message says what to install."""


class PrinterUnavailable(OSError):
    """The printer cannot be reached, or stopped answering (power, cable, network, offline)."""

    code = PRINTER_OFFLINE_CODE


class JobInterrupted(PrinterUnavailable):
    """The job was sent and then lost part-way: part of it may be on paper, the rest never."""


class InvalidStatusReply(ValueError):
    """A byte that cannot be a DLE EOT reply (not an Epson-compatible printer, or line noise)."""


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """What DLE EOT 1-4 said; `known` is False for connections that cannot answer (file://)."""

    online: bool
    cover_open: bool = False
    paper_near_end: bool = False
    paper_out: bool = False
    error: str | None = None  # autocutter | unrecoverable | auto_recoverable | recoverable
    drawer_pin_high: bool = False
    feed_button: bool = False
    waiting_recovery: bool = False  # the error's cause is gone; DLE ENQ brings it back
    known: bool = True

    @classmethod
    def unknown(cls) -> PrinterStatus:
        return cls(online=True, known=False)

    @classmethod
    def from_replies(cls, printer: int, offline: int, error: int, paper: int) -> PrinterStatus:
        """Decode the replies to DLE EOT 1 (printer), 2 (offline cause), 3 (error), 4 (paper)."""
        for n, value in enumerate((printer, offline, error, paper), start=1):
            if not 0 <= value <= 0xFF or value & FIXED_BITS_MASK != FIXED_BITS:
                raise InvalidStatusReply(f"0x{value:02x} is not a reply to DLE EOT {n}")
        error_kind = None
        if error & ERROR_UNRECOVERABLE:
            error_kind = "unrecoverable"
        elif error & ERROR_AUTOCUTTER:
            error_kind = "autocutter"
        elif error & ERROR_AUTO_RECOVERABLE:
            error_kind = "auto_recoverable"
        elif error & ERROR_RECOVERABLE or offline & OFFLINE_ERROR:
            error_kind = "recoverable"
        return cls(
            online=not printer & PRINTER_OFFLINE,
            cover_open=bool(offline & OFFLINE_COVER_OPEN),
            paper_near_end=bool(paper & PAPER_NEAR_END),
            paper_out=bool(paper & PAPER_END or offline & OFFLINE_PAPER_END_STOP),
            error=error_kind,
            drawer_pin_high=bool(printer & PRINTER_DRAWER_PIN_HIGH),
            feed_button=bool(offline & OFFLINE_FEED_BUTTON),
            waiting_recovery=bool(printer & PRINTER_WAITING_RECOVERY),
        )

    @classmethod
    def from_bytes(cls, replies: bytes) -> PrinterStatus:
        """Decode the four reply bytes to DLE EOT 1, 2, 3, 4 in that order."""
        if len(replies) != 4:
            raise InvalidStatusReply(f"expected 4 status bytes, got {len(replies)}")
        return cls.from_replies(*replies)

    @property
    def ready(self) -> bool:
        """Can take a job now (near end is a warning, not a stop)."""
        return self.fault is None

    @property
    def fault(self) -> str | None:
        """Why the printer cannot print now, as a machine code; None when it can."""
        if self.cover_open:
            return COVER_OPEN_CODE
        if self.paper_out:
            return PAPER_OUT_CODE
        if self.error is not None:
            return PRINTER_ERROR_CODE
        if not self.online:
            return PRINTER_NOT_READY_CODE
        return None

    @property
    def message(self) -> str:
        """The state in English, for logs, events and `GET /v1/devices`."""
        fault = self.fault
        if fault == COVER_OPEN_CODE:
            return "the printer's cover is open"
        if fault == PAPER_OUT_CODE:
            return "the printer is out of paper"
        if fault == PRINTER_ERROR_CODE and self.waiting_recovery:
            return f"the printer is recovering from an error ({self.error})"
        if fault == PRINTER_ERROR_CODE:
            return f"the printer reports an error ({self.error})"
        if fault == PRINTER_NOT_READY_CODE and self.feed_button:
            return "the printer is offline (its FEED button is held)"
        if fault == PRINTER_NOT_READY_CODE:
            return "the printer is offline"
        if not self.known:
            return "the connection reports no status"
        return "ready, paper near its end" if self.paper_near_end else "ready"

    def to_dict(self) -> dict[str, Any]:
        return {
            "online": self.online,
            "cover_open": self.cover_open,
            "paper_near_end": self.paper_near_end,
            "paper_out": self.paper_out,
            "error": self.error,
            "feed_button": self.feed_button,
            "waiting_recovery": self.waiting_recovery,
            "known": self.known,
        }


class PrinterNotReady(Exception):
    """The printer answered but cannot take the job (`sent`: it came up after the bytes went)."""

    def __init__(self, status: PrinterStatus, *, sent: bool) -> None:
        super().__init__(status.message)
        self.status = status
        self.sent = sent
        self.code = status.fault or PRINTER_NOT_READY_CODE
