"""The printer as a whole: interface, real-time status, faults, the paper roll and its speed.

`VirtualPrinter` is what tests and the demo hold. Bytes reach it through a `PrinterStream` (one per
TCP connection or serial port, each with its own receive parser); real-time requests (DLE EOT n)
are answered as the bytes arrive, before anything queued ahead of them is printed, as an Epson
printer does. Everything else goes to the print engine in order.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from firmware_sim.printer.engine import PrintEngine, Receipt
from firmware_sim.printer.parser import Command, EscPosParser
from firmware_sim.printer.profiles import DEFAULT_PROFILE, PrinterProfile, load_profile

log = logging.getLogger(__name__)

# DLE EOT n status bits (Epson ESC/POS reference, "Transmit real-time status").
STATUS_FIXED = 0x12  # bits 1 and 4 are always set: a healthy printer answers 0x12 to every n
PRINTER_DRAWER_PIN_HIGH = 0x04  # n=1 bit 2
PRINTER_OFFLINE = 0x08  # n=1 bit 3
OFFLINE_COVER_OPEN = 0x04  # n=2 bit 2
OFFLINE_PAPER_END_STOP = 0x20  # n=2 bit 5
OFFLINE_ERROR = 0x40  # n=2 bit 6
ERROR_RECOVERABLE = 0x04  # n=3 bit 2 (e.g. a paper jam cleared with DLE ENQ)
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
_REALTIME_IN_DATA = re.compile(rb"\x10\x04([\x01-\x04])")


class _Roll:
    """The paper roll seen by the engine; also accrues print time at the configured speed."""

    def __init__(self, printer: VirtualPrinter) -> None:
        self._printer = printer

    def advance(self, dots: int) -> int:
        return self._printer._advance_paper(dots)

    def is_out(self) -> bool:
        return self._printer.paper_out


class VirtualPrinter:
    """An Epson TM-T88-class receipt printer in memory; see the package docstring for use."""

    def __init__(
        self,
        profile: str | PrinterProfile = DEFAULT_PROFILE,
        *,
        paper_mm: float | None = 80_000.0,
        near_end_mm: float = 1_000.0,
        paper_width_mm: float | None = None,
        print_speed_mm_s: float = 0.0,
        out_dir: str | Path | None = None,
        keep_receipts: int | None = None,
        realtime_in_data: bool = False,
        on_receipt: Callable[[Receipt], None] | None = None,
    ) -> None:
        """`paper_mm` None means an endless roll; `print_speed_mm_s` 0 prints instantly;
        `realtime_in_data` answers DLE EOT n even inside other commands' data, as the hardware
        does (off by default so image data never produces stray status bytes)."""
        self.profile = (
            profile
            if isinstance(profile, PrinterProfile)
            else load_profile(profile, paper_width_mm=paper_width_mm)
        )
        self.roll_mm = paper_mm
        self.near_end_mm = near_end_mm
        self.print_speed_mm_s = print_speed_mm_s
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.keep_receipts = keep_receipts
        self.realtime_in_data = realtime_in_data
        self.on_receipt = on_receipt
        self.receipts: list[Receipt] = []
        self.receipt_count = 0
        self.drawer_kicks = 0
        self._paper_remaining_mm = paper_mm
        self._cover_open = False
        self._offline = False
        self._error: str | None = None
        self._drawer_pin_high = False
        self._held: list[Command] = []
        self._dropped_offline = 0
        self._lock = threading.RLock()  # printer state; released while the paper moves
        self._mechanism = threading.Lock()  # one batch of commands prints at a time
        self._changed = threading.Condition(self._lock)
        self._engine = PrintEngine(self.profile, _Roll(self), self._receipt_done)
        self._next_number = _first_free_number(self.out_dir)
        self._default_stream = PrinterStream(self)

    # -- wire -------------------------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        """Receive bytes and print them now; returns every byte the printer sends back."""
        return self._default_stream.feed(data)

    def open_stream(self) -> PrinterStream:
        """A new interface session (a TCP connection, a serial port) with its own parser."""
        return PrinterStream(self)

    # -- status -----------------------------------------------------------------------------

    def status(self, n: int) -> int:
        """The byte DLE EOT n answers (n = 1 printer, 2 offline cause, 3 error cause, 4 paper)."""
        if n == 1:
            value = STATUS_FIXED
            if self._drawer_pin_high:
                value |= PRINTER_DRAWER_PIN_HIGH
            if not self.online:
                value |= PRINTER_OFFLINE
            return value
        if n == 2:
            value = STATUS_FIXED
            if self._cover_open:
                value |= OFFLINE_COVER_OPEN
            if self.paper_out:
                value |= OFFLINE_PAPER_END_STOP
            if self._error is not None:
                value |= OFFLINE_ERROR
            return value
        if n == 3:
            return STATUS_FIXED | (ERROR_KINDS[self._error] if self._error else 0)
        if n == 4:
            if self.paper_out:
                return STATUS_FIXED | PAPER_NEAR_END | PAPER_END
            return STATUS_FIXED | (PAPER_NEAR_END if self.paper_near_end else 0)
        raise ValueError(f"DLE EOT {n} is not a status this printer answers")

    @property
    def online(self) -> bool:
        return not (self._offline or self._cover_open or self.paper_out or self._error)

    @property
    def refuses_connections(self) -> bool:
        return self._offline

    @property
    def cover_open(self) -> bool:
        return self._cover_open

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def paper_remaining_mm(self) -> float | None:
        return self._paper_remaining_mm

    @property
    def paper_out(self) -> bool:
        remaining = self._paper_remaining_mm
        return remaining is not None and remaining <= 0

    @property
    def paper_near_end(self) -> bool:
        remaining = self._paper_remaining_mm
        return remaining is not None and remaining <= self.near_end_mm

    @property
    def dropped_bytes(self) -> int:
        """Bytes of print data that arrived while the paper was out or the printer offline."""
        return self._engine.dropped_bytes + self._dropped_offline

    @property
    def lost_cuts(self) -> int:
        """Receipts (cuts) that arrived while the paper was out and so never came out."""
        return self._engine.lost_cuts

    @property
    def unknown_commands(self) -> int:
        return self._engine.unknown_commands

    @property
    def failed_commands(self) -> int:
        """Commands skipped because printing them failed (each logged with its traceback)."""
        return self._engine.failed_commands

    # -- faults -----------------------------------------------------------------------------

    def set_cover_open(self, is_open: bool = True) -> None:
        """An open cover stops printing; what arrives meanwhile waits and prints on closing."""
        with self._lock:
            self._cover_open = is_open
        self._resume_if_ready()

    def set_offline(self, offline: bool = True) -> None:
        """Offline: the network port refuses connections and data fed in-process is dropped."""
        with self._lock:
            self._offline = offline
            self._changed.notify_all()

    def set_error(self, kind: str | None) -> None:
        """Raise an error (one of `ERROR_KINDS`) or clear it with None."""
        if kind is not None and kind not in ERROR_KINDS:
            raise ValueError(f"unknown error kind {kind!r}; one of {', '.join(ERROR_KINDS)}")
        with self._lock:
            self._error = kind
        self._resume_if_ready()

    def set_drawer_pin_high(self, high: bool = True) -> None:
        self._drawer_pin_high = high

    def set_paper_remaining(self, mm: float | None) -> None:
        """Put a roll with `mm` millimetres left (0 = out, None = endless)."""
        with self._lock:
            self._paper_remaining_mm = mm
            self._changed.notify_all()

    def refill(self, paper_mm: float | None = None) -> None:
        """A fresh roll (of `paper_mm`, or as long as the first one)."""
        self.set_paper_remaining(paper_mm if paper_mm is not None else self.roll_mm)

    # -- receipts ---------------------------------------------------------------------------

    def tear_off(self) -> Receipt | None:
        """Finish whatever was printed since the last cut as a receipt (cut = "none")."""
        with self._lock:
            return self._engine.tear_off()

    def wait_for_receipts(self, count: int, timeout: float = 5.0) -> list[Receipt]:
        """Block until `count` receipts have been cut since start; returns those kept."""
        if not self.wait_until(lambda: self.receipt_count >= count, timeout):
            raise TimeoutError(f"{self.receipt_count} receipts after {timeout}s, wanted {count}")
        with self._lock:
            return list(self.receipts)

    def wait_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait (bounded) until `condition()` holds; re-checked whenever the printer changes."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 0.1))
        return True

    # -- internals --------------------------------------------------------------------------

    def _execute(self, commands: Iterable[Command]) -> bytes:
        answers = bytearray()
        with self._mechanism, self._lock:
            for command in commands:
                name = command.name
                if name in ("GS r", "ESC v", "GS I"):
                    answers += self._answer_query(command)
                elif name == "ESC p" or (name == "DLE DC4" and command.args[:1] == (1,)):
                    self.drawer_kicks += 1
                elif name in ("DLE EOT", "DLE ENQ", "DLE DC4"):
                    pass  # real-time commands were answered on arrival; they are not print data
                elif self._offline:
                    self._dropped_offline += command.size
                elif self._held or self._cover_open or self._error:
                    self._held.append(command)
                else:
                    self._engine.execute(command)
            self._changed.notify_all()
        return bytes(answers)

    def _resume_if_ready(self) -> None:
        with self._lock:
            if self._cover_open or self._error or not self._held:
                self._changed.notify_all()
                return
            held, self._held = self._held, []
        self._execute(held)

    def _answer_query(self, command: Command) -> bytes:
        n = command.args[0] if command.args else 1
        if command.name in ("GS r", "ESC v"):
            if command.name == "ESC v" or n in (1, 49):
                value = 0x0C if self.paper_out else 0x03 if self.paper_near_end else 0x00
                return bytes([value])
            if n in (2, 50):
                return bytes([0x01 if self._drawer_pin_high else 0x00])
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
            66: self.profile.vendor or "EPSON",
            67: self.profile.name,
            68: "SIM00000001",
            69: "PC437",
        }
        if n in texts:
            return b"_" + texts[n].encode("ascii", "replace") + b"\x00"
        return b""

    def _advance_paper(self, dots: int) -> int:
        mm = dots / self.profile.dpi * 25.4
        remaining = self._paper_remaining_mm
        fed = dots
        if remaining is not None:
            if remaining < mm:
                fed = int(remaining / 25.4 * self.profile.dpi)
                mm = remaining
                log.warning("paper roll ran out")
            self._paper_remaining_mm = max(remaining - mm, 0.0)
        if self.print_speed_mm_s > 0:
            self._move_paper(mm / self.print_speed_mm_s)
        return fed

    def _move_paper(self, seconds: float) -> None:
        """Take the time the paper needs at the print speed. Waiting on the condition releases
        the state lock, so faults can be set meanwhile (the mechanism stays busy)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._changed.wait(left)

    def _receipt_done(self, receipt: Receipt) -> None:
        receipt.number = self._next_number
        self._next_number += 1
        self.receipt_count += 1
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            receipt.save(self.out_dir)
        self.receipts.append(receipt)
        if self.keep_receipts is not None and len(self.receipts) > self.keep_receipts:
            del self.receipts[: len(self.receipts) - self.keep_receipts]
        if not receipt.complete:
            log.warning("receipt %04d is incomplete: the paper ran out", receipt.number)
        self._changed.notify_all()
        if self.on_receipt is not None:
            self.on_receipt(receipt)


class PrinterStream:
    """One interface session into a printer: its own receive parser and real-time answers."""

    def __init__(self, printer: VirtualPrinter) -> None:
        self.printer = printer
        self._parser = EscPosParser()
        self._tail = b""

    def receive(self, data: bytes) -> tuple[bytes, list[Command]]:
        """Parse arriving bytes: (real-time answers to send now, commands to print in order)."""
        commands = self._parser.feed(data)
        printer = self.printer
        if printer.realtime_in_data:
            window = self._tail + data
            self._tail = window[-2:]
            requests = [int(m.group(1)[0]) for m in _REALTIME_IN_DATA.finditer(window)]
        else:
            requests = [c.args[0] for c in commands if c.name == "DLE EOT" and 1 <= c.args[0] <= 4]
        return bytes(printer.status(n) for n in requests), commands

    def execute(self, commands: Iterable[Command]) -> bytes:
        """Print commands; returns the answers to ordinary (not real-time) queries."""
        return self.printer._execute(commands)

    def feed(self, data: bytes) -> bytes:
        answers, commands = self.receive(data)
        return answers + self.execute(commands)

    def close(self) -> None:
        """End of the session: a command cut short is logged and dropped, never fatal."""
        self.execute(self._parser.finish())
        self._tail = b""


def _first_free_number(out_dir: Path | None) -> int:
    """Receipt numbering continues after NNNN files already in the directory (never overwrites)."""
    if out_dir is None or not out_dir.is_dir():
        return 1
    numbers = [int(p.stem) for p in out_dir.glob("[0-9][0-9][0-9][0-9].png") if p.stem.isdigit()]
    return max(numbers, default=0) + 1
