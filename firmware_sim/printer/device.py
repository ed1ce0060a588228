"""The printer as a whole: real-time status, faults, the receive buffer, the paper roll, its speed.

`VirtualPrinter` is what tests and the demo hold. Bytes reach it through a `PrinterStream` (one per
TCP connection or serial port, each with its own receive parser: `firmware_sim.printer.stream`);
real-time requests (DLE EOT n) are answered as the bytes arrive, before anything queued ahead of
them is printed, as an Epson printer does. Everything else goes to the print engine in order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from firmware_sim.printer.engine import PrintEngine, Receipt
from firmware_sim.printer.parser import Command
from firmware_sim.printer.profiles import DEFAULT_PROFILE, PrinterProfile, load_profile
from firmware_sim.printer.status import (
    ERROR_KINDS,
    RECOVERED_BY_DLE_ENQ,
    Condition,
    answer_query,
)
from firmware_sim.printer.stream import PrinterStream

log = logging.getLogger(__name__)

# DLE DC4 n: real-time commands; handled on arrival, never queued as print data.
_REALTIME = ("DLE EOT", "DLE ENQ", "DLE DC4")
_QUERIES = ("GS r", "ESC v", "GS I")
_CUTS = ("GS V", "ESC i", "ESC m")
# Faults `arm_fault` can make happen part-way through the next receipt.
ARMABLE_FAULTS = ("cover_open", "autocutter", "paper_out", "offline", "power_off", "unplug")


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
        self._powered = True
        self._unplugged = False
        self._cover_open = False
        self._offline = False
        self._feed_button = False
        self._error: str | None = None
        self._cause_removed = False  # the error's cause is gone; DLE ENQ brings it back online
        self._drawer_pin_high = False
        # The receive buffer while printing is stopped: each command with the session it came on.
        self._held: list[tuple[Command, PrinterStream]] = []
        self._armed: tuple[str, int] | None = None
        self._asb: dict[PrinterStream, tuple[int, tuple[object, ...] | None]] = {}
        self._lost_bytes = 0
        self._lost_cuts = 0
        self._lock = threading.RLock()  # printer state; released while the paper moves
        self._mechanism = threading.RLock()  # one batch of commands prints at a time
        self._changed = threading.Condition(self._lock)
        self._engine = PrintEngine(self.profile, _Roll(self), self._receipt_done)
        self._next_number = _first_free_number(self.out_dir)
        self._default_stream = PrinterStream(self)

    # -- wire -------------------------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        """Receive bytes and print them now; returns every byte the printer sends back."""
        return self._default_stream.feed(data)

    def open_stream(self, send: Callable[[bytes], None] | None = None) -> PrinterStream:
        """A new interface session (a TCP connection, a serial port) with its own parser;
        `send` carries what the printer answers back on it (else `feed` returns it)."""
        return PrinterStream(self, send)

    # -- status -----------------------------------------------------------------------------

    def condition(self) -> Condition:
        """Every status bit at this moment (see `firmware_sim.printer.status`)."""
        return Condition(
            drawer_pin_high=self._drawer_pin_high,
            offline=not self.online,
            waiting_recovery=self.waiting_recovery,
            cover_open=self._cover_open,
            feed_button=self._feed_button,
            paper_end_stop=self.paper_out,
            error=self._error,
            paper_near_end=self.paper_near_end,
            paper_end=self.paper_out,
        )

    def status(self, n: int) -> int:
        """The byte DLE EOT n answers (n = 1 printer, 2 offline cause, 3 error cause, 4 paper)."""
        return self.condition().realtime(n)

    @property
    def online(self) -> bool:
        return not (
            self._offline
            or self._cover_open
            or self._feed_button
            or self.paper_out
            or self._error
            or not self._powered
        )

    @property
    def printing_stopped(self) -> bool:
        """Data that arrives now waits in the receive buffer (nothing moves the paper)."""
        return not self.online or self._engine.stalled

    @property
    def waiting_recovery(self) -> bool:
        return self._error in RECOVERED_BY_DLE_ENQ and self._cause_removed

    @property
    def refuses_connections(self) -> bool:
        """Powered off or its cable pulled: the port is closed."""
        return not self._powered or self._unplugged

    @property
    def powered(self) -> bool:
        return self._powered

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
    def buffered_commands(self) -> int:
        """Commands received and waiting for printing to resume (held, or lines on a stall)."""
        return len(self._held)

    @property
    def dropped_bytes(self) -> int:
        """Print data lost: in the buffer when the power went, or sent while it was off."""
        return self._lost_bytes

    @property
    def lost_cuts(self) -> int:
        """Receipts (cuts) that were in the buffer when the power went, so never came out."""
        return self._lost_cuts

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
        """Offline: the printer still answers (DLE EOT 1 bit 3) but prints nothing; data waits."""
        with self._lock:
            self._offline = offline
        self._resume_if_ready()

    def press_feed(self, held: bool = True) -> None:
        """The FEED button held down: paper is fed, the printer is offline (DLE EOT 2 bit 3)."""
        with self._lock:
            self._feed_button = held
        self._resume_if_ready()

    def set_error(self, kind: str | None) -> None:
        """Raise an error (one of `ERROR_KINDS`) now, or with None clear it as if recovered."""
        if kind is not None and kind not in ERROR_KINDS:
            raise ValueError(f"unknown error kind {kind!r}; one of {', '.join(ERROR_KINDS)}")
        with self._lock:
            self._error = kind
            self._cause_removed = False
        self._resume_if_ready()

    def remove_error_cause(self) -> None:
        """The cashier cleared the cause (a cutter jam freed, the cover closed again): an
        automatically recoverable error ends; a recoverable one waits for DLE ENQ 1 or 2; an
        unrecoverable one stays until the power is cycled."""
        with self._lock:
            if self._error == "auto_recoverable":
                self._error = None
            elif self._error in RECOVERED_BY_DLE_ENQ:
                self._cause_removed = True
            elif self._error == "unrecoverable":
                log.warning("an unrecoverable error needs the power switched off and on")
        self._resume_if_ready()

    def recover(self, n: int, *, background: bool = False) -> None:
        """DLE ENQ n: back online after a recoverable error whose cause is removed, restarting
        from the line where it stopped (n=1) or with the buffers cleared (n=2)."""
        with self._lock:
            if n not in (1, 2) or not self.waiting_recovery:
                return
            self._error = None
            self._cause_removed = False
            if n == 2:
                self._lose_buffer()
        if background:
            threading.Thread(target=self._resume_if_ready, name="printer-recover").start()
        else:
            self._resume_if_ready()

    def set_power(self, on: bool) -> None:
        """Power off loses the receive and print buffers and closes the port; the piece in the
        printer stays as far as it was printed. Power on starts fresh (modes reset)."""
        with self._lock:
            if on == self._powered:
                return
            if not on:
                self._power_off()
            else:
                self._powered = True
                self._engine.execute(Command("ESC @"))
            self._changed.notify_all()

    def set_unplugged(self, unplugged: bool = True) -> None:
        """The cable is pulled: the port closes, but the printer keeps printing its buffer."""
        with self._lock:
            self._unplugged = unplugged
            self._changed.notify_all()

    def arm_fault(self, kind: str, after_lines: int = 2) -> None:
        """Make `kind` happen part-way through the next receipt: after `after_lines` lines of
        it are on paper (an autocutter error at its cut instead)."""
        if kind not in ARMABLE_FAULTS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(ARMABLE_FAULTS)}")
        with self._lock:
            self._armed = (kind, after_lines)

    def set_drawer_pin_high(self, high: bool = True) -> None:
        with self._lock:
            self._drawer_pin_high = high
            self._report_status()

    def set_paper_remaining(self, mm: float | None) -> None:
        """Put a roll with `mm` millimetres left (0 = out, None = endless)."""
        with self._lock:
            self._paper_remaining_mm = mm
        self._resume_if_ready()

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

    def _execute(self, commands: Iterable[Command], stream: PrinterStream) -> None:
        with self._mechanism, self._lock:
            for command in commands:
                self._take(command, stream)
            self._report_status()
            self._changed.notify_all()

    def _take(self, command: Command, stream: PrinterStream) -> None:
        name = command.name
        if name == "DLE DC4" and command.args[:1] == (1,):
            self.drawer_kicks += 1
        if name in _REALTIME:
            return  # answered or acted on as it arrived; not print data
        if not self._powered:
            self._lost_bytes += command.size
            self._lost_cuts += name in _CUTS
        elif self._held or self.printing_stopped:
            self._held.append((command, stream))
        else:
            self._run(command, stream)

    def _run(self, command: Command, stream: PrinterStream) -> None:
        name = command.name
        if name in _QUERIES:
            stream.deliver(answer_query(command, self.condition(), self.profile))
        elif name == "GS a":
            self._set_asb(stream, command.args[0])
        elif name == "ESC p":
            self.drawer_kicks += 1
        elif name in _CUTS and self._armed is not None and self._armed[0] == "autocutter":
            self._armed = None
            self._error, self._cause_removed = "autocutter", False
            self._held.insert(0, (command, stream))  # DLE ENQ 1 cuts again from here
            log.warning("autocutter error: the receipt stays uncut")
        else:
            self._engine.execute(command)
            armed = self._armed
            if armed and armed[0] != "autocutter" and self._engine.lines_on_paper >= armed[1]:
                self._armed = None
                self._fire(armed[0])

    def _fire(self, kind: str) -> None:
        log.warning("fault part-way through a receipt: %s", kind)
        if kind == "cover_open":
            self._cover_open = True
        elif kind == "offline":
            self._offline = True
        elif kind == "paper_out":  # the roll ends here: what is printed comes off as a piece
            self._paper_remaining_mm = 0.0
            self._engine.paper_ran_out()
        elif kind == "power_off":
            self._power_off()
        elif kind == "unplug":
            self._unplugged = True

    def _power_off(self) -> None:
        self._powered = False
        self._lose_buffer()
        self._engine.paper_ran_out()  # what is on paper stays there, uncut and unfinished
        self._cover_open = self._offline = self._feed_button = False
        self._error, self._cause_removed, self._armed = None, False, None
        self._asb.clear()

    def _lose_buffer(self) -> None:
        self._lost_bytes += sum(command.size for command, _ in self._held)
        self._lost_cuts += sum(command.name in _CUTS for command, _ in self._held)
        self._lost_cuts += self._engine.discard()
        self._held = []

    def _resume_if_ready(self) -> None:
        """After a change of state: print what waited, in order, for as long as printing may."""
        with self._mechanism, self._lock:
            if self.online and self._engine.stalled:
                self._engine.resume()
            while self._held and not self.printing_stopped:
                command, stream = self._held.pop(0)
                self._run(command, stream)
            self._report_status()
            self._changed.notify_all()

    def _set_asb(self, stream: PrinterStream, mask: int) -> None:
        if mask & 0x0F == 0:
            self._asb.pop(stream, None)
            return
        self._asb[stream] = (mask, None)
        self._report_status()

    def _report_status(self) -> None:
        """Automatic Status Back: each subscriber hears of a change in what it enabled."""
        if not self._asb:
            return
        condition = self.condition()
        for stream, (mask, last) in list(self._asb.items()):
            watched = condition.asb_watched(mask)
            if watched != last:
                self._asb[stream] = (mask, watched)
                stream.deliver(condition.automatic_status_back())

    def forget(self, stream: PrinterStream) -> None:
        with self._lock:
            self._asb.pop(stream, None)

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


def _first_free_number(out_dir: Path | None) -> int:
    """Receipt numbering continues after NNNN files already in the directory (never overwrites)."""
    if out_dir is None or not out_dir.is_dir():
        return 1
    numbers = [int(p.stem) for p in out_dir.glob("[0-9][0-9][0-9][0-9].png") if p.stem.isdigit()]
    return max(numbers, default=0) + 1
