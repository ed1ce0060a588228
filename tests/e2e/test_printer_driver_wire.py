"""What the printer driver puts on the wire: status first, the job only to a printer that is ready.

A bare TCP peer stands in for the printer here so every byte the driver sends is recorded as sent.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from drivers.printer import EscPosPrinter, PrinterNotReady

STATUS_QUERY = b"".join(b"\x10\x04" + bytes([n]) for n in (1, 2, 3, 4))
PAPER_SENSOR_QUERY = b"\x1dr\x01"
READY = bytes([0x12, 0x12, 0x12, 0x12])  # DLE EOT 1-4: online, no cause, no error, paper ok
PAPER_OUT = bytes([0x12 | 0x08, 0x12 | 0x20, 0x12, 0x12 | 0x60])


class RecordingPrinter:
    """Answers DLE EOT n with byte n of `status` and GS r 1 with "paper present"; records all."""

    def __init__(self, status: bytes) -> None:
        self.status = status
        self.received = bytearray()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"tcp://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with connection:
                pending = b""
                while chunk := connection.recv(4096):
                    self.received += chunk
                    pending += chunk
                    while True:
                        dle = pending.find(b"\x10\x04")
                        gsr = pending.find(PAPER_SENSOR_QUERY)
                        hits = [(i, n) for i, n in ((dle, 3), (gsr, 3)) if i >= 0]
                        if not hits:
                            pending = pending[-2:]
                            break
                        at, size = min(hits)
                        if len(pending) < at + size:
                            break
                        if at == dle:
                            n = pending[at + 2]
                            connection.sendall(self.status[n - 1 : n])
                        else:
                            connection.sendall(b"\x00")  # paper present
                        pending = pending[at + size :]

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def ready_printer() -> Iterator[RecordingPrinter]:
    printer = RecordingPrinter(READY)
    yield printer
    printer.close()


def test_status_is_asked_before_the_job_and_confirmed_after(
    ready_printer: RecordingPrinter,
) -> None:
    status = EscPosPrinter(ready_printer.url, timeout_s=2.0).print_job(b"\x1b@RECEIPT\n\x1dV\x00")
    assert status.ready and status.known
    assert bytes(ready_printer.received) == (
        STATUS_QUERY + b"\x1b@RECEIPT\n\x1dV\x00" + PAPER_SENSOR_QUERY + STATUS_QUERY
    )


def test_a_printer_out_of_paper_never_gets_the_job() -> None:
    printer = RecordingPrinter(PAPER_OUT)
    try:
        with pytest.raises(PrinterNotReady) as caught:
            EscPosPrinter(printer.url, timeout_s=2.0).print_job(b"\x1b@RECEIPT\n")
        assert caught.value.code == "paper_out" and caught.value.sent is False
        assert bytes(printer.received) == STATUS_QUERY
    finally:
        printer.close()
