"""A virtual Epson TM-T88-class ESC/POS receipt printer that prints to PNG and UTF-8 text.

It parses the byte stream a driver sends (python-escpos or any other), keeps the printer's modes,
answers status requests with Epson's bit layout, and renders each cut receipt at the paper's dots
per line, with QR codes and barcodes a decoder reads back.

In-process (tests, the demo)::

    from firmware_sim.printer import VirtualPrinter, PrinterServer, PrinterPty

    printer = VirtualPrinter(profile="TM-T88V", paper_mm=5_000, print_speed_mm_s=0)
    printer.feed(b"\\x1b@Hello\\n\\x1dV\\x00")       # -> b"" (bytes the printer answers)
    printer.feed(b"\\x10\\x04\\x04")                  # -> b"\\x12" (paper status: fine)
    receipt = printer.receipts[-1]                 # .text .image .png .qr_payloads .barcodes

    with PrinterServer(printer, "127.0.0.1", 0) as server:      # raw TCP, port 0 = any free port
        ...  # escpos.printer.Network("127.0.0.1", server.port, profile="TM-T88V")
        printer.wait_for_receipts(1, timeout=5)

    with PrinterPty(printer, link="./printer0") as pty:         # serial: a raw pseudo-terminal
        ...  # escpos.printer.Serial(devfile=pty.port, profile="TM-T88V")

Faults (see firmware_sim/README.md): a roll of `paper_mm` that runs out (the printed part comes off
with `complete=False`, the rest waits and prints after `refill()`), near end below `near_end_mm`,
`set_cover_open`, `set_offline` (answers, prints nothing), `press_feed`, `set_error(kind)` and
`remove_error_cause()` (then DLE ENQ), `set_power(False)` (port closed, buffers lost),
`set_unplugged()` (port closed, buffer still prints), `arm_fault(kind, after_lines)` for a fault
part-way through the next receipt. While printing is stopped data waits in the buffer; GS r is
answered after the data before it. `status(n)` is the byte DLE EOT n answers (0x12 when healthy).

Code pages follow the python-escpos capability profile named, so ESC t n means what
python-escpos, configured with the same profile, meant by it.
"""

from firmware_sim.printer.device import VirtualPrinter
from firmware_sim.printer.engine import PrintedBarcode, Receipt
from firmware_sim.printer.parser import Command, EscPosParser, parse
from firmware_sim.printer.profiles import (
    DEFAULT_PROFILE,
    PrinterProfile,
    available_profiles,
    load_profile,
)
from firmware_sim.printer.server import PrinterPty, PrinterServer
from firmware_sim.printer.stream import PrinterStream

__all__ = [
    "DEFAULT_PROFILE",
    "Command",
    "EscPosParser",
    "PrintedBarcode",
    "PrinterProfile",
    "PrinterPty",
    "PrinterServer",
    "PrinterStream",
    "Receipt",
    "VirtualPrinter",
    "available_profiles",
    "load_profile",
    "parse",
]
