"""The byte link under a print job: questions and answers over an opened python-escpos device.

DLE EOT answers (bit 4 set) and the GS r 1 answer that follows a job (bit 4 clear) come back on
one stream; `_Link` sorts them, with deadlines, so a question is never matched to the wrong
answer and a printer that stops answering is noticed.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from drivers.printer_status import DLE_EOT, PrinterStatus, PrinterUnavailable

Transport = Literal["tcp", "serial", "usb", "file"]


class _Link:
    """Bytes both ways over an opened python-escpos device, with deadlines."""

    def __init__(self, device: Any, transport: Transport, url: str) -> None:
        self.device = device
        self.transport = transport
        self.url = url
        self._raw_device = device.device
        self.paper_status_seen = False  # the GS r answer that follows the job has come
        self._replies = bytearray()  # DLE EOT answers received, in order

    def write(self, data: bytes) -> None:
        self.device._raw(data)

    def flush(self) -> None:
        flush = getattr(self.device, "flush", None)
        if callable(flush):
            flush()

    def drain(self) -> None:
        """Drop answers left over from an earlier session so replies line up with questions."""
        raw = self._raw_device
        if self.transport == "serial":
            raw.reset_input_buffer()
        elif self.transport == "tcp":
            raw.setblocking(False)
            try:
                while raw.recv(256):
                    pass
            except (BlockingIOError, InterruptedError):
                pass
            finally:
                raw.setblocking(True)

    def _take(self, chunk: bytes) -> None:
        """Sort what came in: a DLE EOT answer has bit 4 set, the GS r 1 answer has it clear."""
        for byte in chunk:
            if byte & 0x10:
                self._replies.append(byte)
            else:
                self.paper_status_seen = True

    def read(self, count: int, timeout_s: float, *, what: str) -> bytes:
        """The next `count` DLE EOT answers (a GS r answer among them is noted, not returned)."""
        deadline = time.monotonic() + timeout_s
        while len(self._replies) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PrinterUnavailable(
                    f"printer {self.url} did not answer ({what}) within {timeout_s:g} s"
                )
            self._take(self._read_some(count, min(remaining, 0.25)))
        replies = bytes(self._replies[:count])
        del self._replies[:count]
        return replies

    def await_paper_status(self, timeout_s: float) -> bool:
        """Wait up to `timeout_s` for the GS r answer that follows the job."""
        deadline = time.monotonic() + timeout_s
        while not self.paper_status_seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._take(self._read_some(1, min(remaining, 0.25)))
        return True

    def _read_some(self, wanted: int, timeout_s: float) -> bytes:
        raw = self._raw_device
        if self.transport == "tcp":
            raw.settimeout(timeout_s)
            try:
                chunk: bytes = raw.recv(wanted)
            except TimeoutError:
                return b""
            if not chunk:
                raise PrinterUnavailable(f"printer {self.url} closed the connection")
            return chunk
        if self.transport == "serial":
            raw.timeout = timeout_s
            return bytes(raw.read(wanted))
        chunk = self.device._read()  # USB: python-escpos reads the IN endpoint
        return bytes(chunk or b"")[:wanted]

    def status(self, timeout_s: float) -> PrinterStatus:
        self.write(b"".join(DLE_EOT + bytes([n]) for n in (1, 2, 3, 4)))
        replies = self.read(4, timeout_s, what="DLE EOT status")
        return PrinterStatus.from_bytes(replies)
