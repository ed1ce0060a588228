"""The printer's interfaces: a raw TCP port (9100, as network receipt printers have) and a serial
port on a pseudo-terminal, each feeding a `VirtualPrinter` from a background thread.

Each session has a reader (parses, answers DLE EOT at once) and a print thread (prints in order and
may take real time at the configured speed), so status stays answerable while a job prints.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import queue
import select
import socket
import threading
import tty
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from firmware_sim.printer.device import VirtualPrinter
from firmware_sim.printer.parser import Command

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.05
_READ_SIZE = 65536


class _Session:
    """Reader side and print side of one byte stream into the printer."""

    def __init__(self, printer: VirtualPrinter, send: Callable[[bytes], None], name: str) -> None:
        self._stream = printer.open_stream(send)
        self._jobs: queue.Queue[list[Command] | None] = queue.Queue()
        self._printer_thread = threading.Thread(target=self._print_loop, name=name, daemon=True)
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._printer = printer
        self._printer_thread.start()

    @property
    def pending(self) -> int:
        """Batches of commands received but not yet printed."""
        return self._pending

    def receive(self, data: bytes) -> None:
        answers, commands = self._stream.receive(data)
        self._stream.deliver(answers)
        if commands:
            with self._pending_lock:
                self._pending += 1
            self._jobs.put(commands)

    def close(self, timeout: float | None = None) -> None:
        """Finish printing what was received (a truncated command is dropped), then stop."""
        self._jobs.put(None)
        self._printer_thread.join(timeout)

    def _print_loop(self) -> None:
        while True:
            commands = self._jobs.get()
            if commands is None:
                self._stream.close()
                return
            try:
                self._stream.execute(commands)  # answers go back on the session as they come
            except Exception:
                log.exception("printing failed; %d commands lost", len(commands))
            with self._pending_lock:
                self._pending -= 1
            with self._printer._changed:
                self._printer._changed.notify_all()


class PrinterServer:
    """Raw TCP printing (port 9100): one connection printed at a time, like a real network card.

    While the printer is powered off or its cable is pulled (`set_power(False)`,
    `set_unplugged()`) the port is closed, so connecting is refused and open connections drop; it
    reopens on the same port when the printer comes back.
    """

    def __init__(self, printer: VirtualPrinter, host: str = "127.0.0.1", port: int = 9100) -> None:
        self.printer = printer
        self.host = host
        self.port = port
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._interface = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._active = 0
        self._state_lock = threading.Lock()
        self._accept_thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def url(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    def start(self) -> Self:
        """Bind (port 0 picks a free port, see `.port`) and serve in a background thread."""
        self._listener = self._bind()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"printer-tcp-{self.port}", daemon=True
        )
        self._accept_thread.start()
        return self

    def stop(self, timeout: float = 3.0) -> None:
        self._stopping.set()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout)
        self._close_listener()
        with self._state_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait (bounded) until no connection is waiting, open or printing."""
        return self.printer.wait_until(
            lambda: not self._connection_waiting() and self._active == 0, timeout
        )

    def _connection_waiting(self) -> bool:
        listener = self._listener
        if listener is None:
            return False
        try:
            readable, _, _ = select.select([listener], [], [], 0)
        except (OSError, ValueError):
            return False
        return bool(readable)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _bind(self) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
            listener.listen(8)
        except OSError:
            listener.close()
            raise
        self.port = listener.getsockname()[1]
        return listener

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            if self.printer.refuses_connections:
                if self._listener is not None:
                    log.info("printer off or unplugged: port %d closed", self.port)
                    self._close_listener()
                self._stopping.wait(_POLL_SECONDS)
                continue
            if self._listener is None:
                try:
                    self._listener = self._bind()
                    log.info("printer online: port %d open", self.port)
                except OSError as exc:
                    log.warning("cannot reopen port %d: %s", self.port, exc)
                    self._stopping.wait(_POLL_SECONDS * 4)
                    continue
            readable, _, _ = select.select([self._listener], [], [], _POLL_SECONDS)
            if not readable:
                continue
            with self._state_lock:
                self._active += 1  # counted before accept() so wait_idle never misses it
            try:
                connection, peer = self._listener.accept()
            except OSError:
                with self._state_lock:
                    self._active -= 1
                continue
            with self._state_lock:
                self._connections.add(connection)
            threading.Thread(
                target=self._serve, args=(connection, peer), name="printer-conn", daemon=True
            ).start()

    def _serve(self, connection: socket.socket, peer: tuple[str, int]) -> None:
        try:
            with self._interface:
                self._serve_locked(connection, peer)
        finally:
            with contextlib.suppress(OSError):
                connection.close()
            with self._state_lock:
                self._connections.discard(connection)
                self._active -= 1
            with self.printer._changed:
                self.printer._changed.notify_all()

    def _serve_locked(self, connection: socket.socket, peer: tuple[str, int]) -> None:
        log.info("connection from %s:%d", *peer)
        connection.settimeout(_POLL_SECONDS * 4)
        session = _Session(self.printer, connection.sendall, f"printer-print-{peer[1]}")
        try:
            while not self._stopping.is_set():
                if self.printer.refuses_connections:
                    log.info("printer off or unplugged: dropping connection from %s:%d", *peer)
                    break
                try:
                    data = connection.recv(_READ_SIZE)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                session.receive(data)
        finally:
            session.close(timeout=None if not self._stopping.is_set() else 1.0)


class PrinterPty:
    """The printer on a serial line: a raw pseudo-terminal whose slave path a driver opens.

    `link` makes a stable symlink (e.g. ./printer0) to the slave path, which changes each run.
    """

    def __init__(self, printer: VirtualPrinter, *, link: str | Path | None = None) -> None:
        self.printer = printer
        self.link = Path(link) if link is not None else None
        self.path = ""
        self._master = -1
        self._slave = -1
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._session: _Session | None = None
        self._reading = False

    @property
    def port(self) -> str:
        """What to give pyserial / python-escpos `Serial(devfile=...)`."""
        return str(self.link) if self.link is not None else self.path

    def start(self) -> Self:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no CR/LF translation: bytes pass as they are
        self.path = os.ttyname(self._slave)
        if self.link is not None:
            temporary = self.link.with_name(f".{self.link.name}.{os.getpid()}")
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            temporary.symlink_to(self.path)
            temporary.replace(self.link)
        self._session = _Session(self.printer, self._write, "printer-pty-print")
        self._thread = threading.Thread(target=self._read_loop, name="printer-pty", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 3.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._session is not None:
            self._session.close(timeout)
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1
        if self.link is not None and self.link.is_symlink():
            self.link.unlink()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until everything received on the port has been printed (bounded)."""
        session = self._session
        if session is None:
            return True
        # Checked in the order data moves: waiting in the pty, being read, queued to print.
        return self.printer.wait_until(
            lambda: not self._input_waiting() and not self._reading and session.pending == 0,
            timeout,
        )

    def _input_waiting(self) -> bool:
        if self._master < 0:
            return False
        readable, _, _ = select.select([self._master], [], [], 0)
        return bool(readable)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _write(self, data: bytes) -> None:
        os.write(self._master, data)

    def _read_loop(self) -> None:
        assert self._session is not None
        while not self._stopping.is_set():
            readable, _, _ = select.select([self._master], [], [], _POLL_SECONDS)
            if not readable:
                continue
            self._reading = True
            try:
                data = os.read(self._master, _READ_SIZE)
                if data:
                    self._session.receive(data)
            except OSError as exc:
                if exc.errno != errno.EIO:  # EIO: no one has the slave open (we hold it: rare)
                    raise
                self._stopping.wait(_POLL_SECONDS)
            finally:
                self._reading = False
