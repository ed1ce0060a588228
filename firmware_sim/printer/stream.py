"""One interface session into the printer (a TCP connection, a serial port): its own receive
parser, and the real-time answers (DLE EOT n) sent as the bytes arrive, ahead of anything queued.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from firmware_sim.printer.parser import Command, EscPosParser

if TYPE_CHECKING:
    from firmware_sim.printer.device import VirtualPrinter

log = logging.getLogger(__name__)

_REALTIME_IN_DATA = re.compile(rb"\x10\x04([\x01-\x04])")


class PrinterStream:
    """One interface session into a printer: its own receive parser and real-time answers."""

    def __init__(
        self, printer: VirtualPrinter, send: Callable[[bytes], None] | None = None
    ) -> None:
        self.printer = printer
        self._parser = EscPosParser()
        self._tail = b""
        self._send = send
        self._answers = bytearray()
        self._send_lock = threading.Lock()

    def receive(self, data: bytes) -> tuple[bytes, list[Command]]:
        """Parse arriving bytes: (real-time answers to send now, commands to print in order).
        DLE ENQ (recovery) acts at once too, as on the hardware."""
        commands = self._parser.feed(data)
        printer = self.printer
        if printer.realtime_in_data:
            window = self._tail + data
            self._tail = window[-2:]
            requests = [int(m.group(1)[0]) for m in _REALTIME_IN_DATA.finditer(window)]
        else:
            requests = [c.args[0] for c in commands if c.name == "DLE EOT" and 1 <= c.args[0] <= 4]
        answers = bytes(printer.status(n) for n in requests)
        for command in commands:
            if command.name == "DLE ENQ":
                printer.recover(command.args[0], background=self._send is not None)
        return answers, commands

    def deliver(self, data: bytes) -> None:
        """What the printer sends back on this session (query answers, ASB)."""
        if not data:
            return
        if self._send is None:
            self._answers += data
            return
        if self.printer.refuses_connections:
            log.info("answer not delivered: the printer is off or its cable is out")
            return
        with self._send_lock:
            try:
                self._send(data)
            except OSError as exc:
                log.info("answer not delivered, the session has gone: %s", exc)

    def execute(self, commands: Iterable[Command]) -> bytes:
        """Print commands; returns the answers not yet sent (in-process sessions)."""
        self.printer._execute(commands, self)
        return self.take_answers()

    def take_answers(self) -> bytes:
        answers, self._answers = bytes(self._answers), bytearray()
        return answers

    def feed(self, data: bytes) -> bytes:
        answers, commands = self.receive(data)
        return answers + self.execute(commands)

    def close(self) -> None:
        """End of the session: a command cut short is logged and dropped, never fatal; what is
        in the printer's buffer still prints."""
        self.execute(self._parser.finish())
        self.printer.forget(self)
        self._tail = b""
