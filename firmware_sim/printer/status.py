"""The status a TM-T88-class printer reports, bit for bit (Epson ESC/POS reference).

Three ways out of the printer carry it: `DLE EOT n` (real-time, answered as it arrives), `GS r n`
(answered in order, after everything received before it is processed) and Automatic Status Back
(`GS a n`: four bytes sent by the printer itself whenever an enabled status changes).
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware_sim.printer.parser import Command
from firmware_sim.printer.profiles import PrinterProfile

# DLE EOT n: bits 1 and 4 are always set, bits 0 and 7 always clear: a healthy printer answers 0x12.
STATUS_FIXED = 0x12
PRINTER_DRAWER_PIN_HIGH = 0x04  # n=1 bit 2
PRINTER_OFFLINE = 0x08  # n=1 bit 3
PRINTER_WAITING_RECOVERY = 0x20  # n=1 bit 5: waiting for online recovery (DLE ENQ)
OFFLINE_COVER_OPEN = 0x04  # n=2 bit 2
OFFLINE_FEED_BUTTON = 0x08  # n=2 bit 3: paper is being fed with the FEED button
OFFLINE_PAPER_END_STOP = 0x20  # n=2 bit 5
OFFLINE_ERROR = 0x40  # n=2 bit 6
ERROR_RECOVERABLE = 0x04  # n=3 bit 2 (recovered with DLE ENQ once the cause is removed)
ERROR_AUTOCUTTER = 0x08  # n=3 bit 3
ERROR_UNRECOVERABLE = 0x20  # n=3 bit 5
ERROR_AUTO_RECOVERABLE = 0x40  # n=3 bit 6
PAPER_NEAR_END = 0x0C  # n=4 bits 2-3
PAPER_END = 0x60  # n=4 bits 5-6

ERROR_KINDS = {
    "recoverable": ERROR_RECOVERABLE,
    "autocutter": ERROR_AUTOCUTTER,
    "unrecoverable": ERROR_UNRECOVERABLE,
    "auto_recoverable": ERROR_AUTO_RECOVERABLE,
}
# Errors that need DLE ENQ 1/2 once their cause is removed (an autocutter jam cleared, ...).
RECOVERED_BY_DLE_ENQ = {"recoverable", "autocutter"}

# GS a n: which changes are reported (bit 0 drawer, 1 online/offline, 2 error, 3 paper sensor).
ASB_DRAWER, ASB_ONLINE, ASB_ERROR, ASB_PAPER = 0x01, 0x02, 0x04, 0x08


@dataclass(frozen=True, slots=True)
class Condition:
    """Everything the status bytes are made of, at one moment."""

    drawer_pin_high: bool = False
    offline: bool = False
    waiting_recovery: bool = False
    cover_open: bool = False
    feed_button: bool = False
    paper_end_stop: bool = False
    error: str | None = None
    paper_near_end: bool = False
    paper_end: bool = False

    def realtime(self, n: int) -> int:
        """The byte DLE EOT n answers."""
        if n == 1:
            return (
                STATUS_FIXED
                | (PRINTER_DRAWER_PIN_HIGH if self.drawer_pin_high else 0)
                | (PRINTER_OFFLINE if self.offline else 0)
                | (PRINTER_WAITING_RECOVERY if self.waiting_recovery else 0)
            )
        if n == 2:
            return (
                STATUS_FIXED
                | (OFFLINE_COVER_OPEN if self.cover_open else 0)
                | (OFFLINE_FEED_BUTTON if self.feed_button else 0)
                | (OFFLINE_PAPER_END_STOP if self.paper_end_stop else 0)
                | (OFFLINE_ERROR if self.error else 0)
            )
        if n == 3:
            return STATUS_FIXED | (ERROR_KINDS[self.error] if self.error else 0)
        if n == 4:
            if self.paper_end:
                return STATUS_FIXED | PAPER_NEAR_END | PAPER_END
            return STATUS_FIXED | (PAPER_NEAR_END if self.paper_near_end else 0)
        raise ValueError(f"DLE EOT {n} is not a status this printer answers")

    def paper_sensor(self) -> int:
        """GS r 1 / ESC v: bits 0-1 near end, bits 2-3 paper end (bit 4 clear: not a DLE EOT)."""
        return 0x0C if self.paper_end else 0x03 if self.paper_near_end else 0x00

    def automatic_status_back(self) -> bytes:
        """The four ASB bytes: the first is 0xx1xx00b, the others 0xx0xxxxb."""
        first = (
            0x10
            | (0x04 if self.drawer_pin_high else 0)
            | (0x08 if self.offline else 0)
            | (0x20 if self.cover_open else 0)
            | (0x40 if self.feed_button else 0)
        )
        second = ERROR_KINDS[self.error] if self.error else 0
        third = (0x03 if self.paper_near_end or self.paper_end else 0) | (
            0x0C if self.paper_end else 0
        )
        return bytes([first, second, third, 0x00])

    def asb_watched(self, mask: int) -> tuple[object, ...]:
        """The parts of the condition a `GS a mask` subscriber is told about when they change."""
        return (
            self.drawer_pin_high if mask & ASB_DRAWER else None,
            (self.offline, self.cover_open, self.feed_button) if mask & ASB_ONLINE else None,
            self.error if mask & ASB_ERROR else None,
            (self.paper_near_end, self.paper_end) if mask & ASB_PAPER else None,
        )


def answer_query(command: Command, condition: Condition, profile: PrinterProfile) -> bytes:
    """What the printer sends back, in order, for GS r n / ESC v (paper and drawer sensors) and
    GS I n (printer information)."""
    n = command.args[0] if command.args else 1
    if command.name in ("GS r", "ESC v"):
        if command.name == "ESC v" or n in (1, 49):
            return bytes([condition.paper_sensor()])
        if n in (2, 50):
            return b"\x01" if condition.drawer_pin_high else b"\x00"
        return b"\x00"
    # GS I: printer information.
    if n in (1, 49):
        return b"\x20"  # model ID of the TM-T88 family
    if n in (2, 50):
        return b"\x02"  # type ID: autocutter fitted, no multi-byte fonts
    if n in (3, 51):
        return b"\x10"  # ROM version ID
    texts = {
        65: "SIM 1.0 ESC/POS",
        66: profile.vendor or "EPSON",
        67: profile.name,
        68: "SIM00000001",
        69: "PC437",
    }
    if n in texts:
        return b"_" + texts[n].encode("ascii", "replace") + b"\x00"
    return b""
