"""ESC/POS receipt printers through python-escpos, opened from a connection URL.

`EscPosPrinter.print_job` asks the printer for its real-time status (DLE EOT 1-4) before a job and
sends nothing to a printer that cannot print; it then sends the job once, followed by a status
query (GS r 1) that the printer answers only after everything before it is processed, and waits
for that answer: that is the job on paper. While it waits it asks DLE EOT every
`progress_interval_s`: a cover opened, paper run out or a cutter jam mid-job stops the printer
with the rest of the job in its buffer, and the job goes on when the cashier fixes it (the
caller is told meanwhile; a recoverable error whose cause is removed is recovered with DLE ENQ 1).
A connection that drops, or a printer that stops answering, before the answer means the job was
lost part-way (`JobInterrupted`): it must not be sent again as if nothing had printed.

Connections: `tcp://host[:9100]`, `serial:///dev/ttyUSB0?baudrate=38400` (a bare path such as
a pseudo-terminal means serial too), `usb://04b8:0202`, `file:///dev/usb/lp0` (write only: no
status). Hardware libraries are imported when a printer is opened, with an error naming what to
install when one is missing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

from pos_loyalty.receipts.media import print_width
from pos_loyalty.settings import PrinterConfig

log = logging.getLogger(__name__)

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


# --- connection URLs -------------------------------------------------------------------------

Transport = Literal["tcp", "serial", "usb", "file"]


@dataclass(frozen=True, slots=True)
class PrinterConnection:
    """A parsed connection URL."""

    transport: Transport
    target: str  # host, device path, or vendor:product
    port: int = DEFAULT_TCP_PORT
    options: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        if self.transport == "tcp":
            return f"tcp://{self.target}:{self.port}"
        return f"{self.transport}://{self.target}"


def _split_query(rest: str) -> tuple[str, dict[str, str]]:
    path, _, query = rest.partition("?")
    return path, dict(parse_qsl(query, keep_blank_values=True))


def parse_connection(url: str) -> PrinterConnection:
    """`tcp://host:port`, `serial://PATH?baudrate=…`, a bare device path, `usb://VID:PID`,
    `file://PATH`."""
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        if text.startswith(("/", "./", "../", "~")):
            path, options = _split_query(text)
            return PrinterConnection("serial", path, options=options)
        raise PrinterConfigError(
            f"printer connection {url!r}: expected tcp://host:9100, serial:///dev/ttyUSB0, "
            "usb://04b8:0202, file:///dev/usb/lp0 or a device path"
        )
    scheme = scheme.lower()
    target, options = _split_query(rest)
    if scheme == "sim":
        raise PrinterConfigError(
            f"printer connection {url!r} is a simulated printer: `serve` and `demo` start it "
            "and pass its address; outside them give a tcp:// or serial:// connection"
        )
    if scheme == "tcp":
        host, _, port_text = target.rstrip("/").rpartition(":")
        if not host:
            host, port_text = target.rstrip("/"), str(DEFAULT_TCP_PORT)
        host = host.strip("[]")
        try:
            port = int(port_text)
        except ValueError:
            raise PrinterConfigError(
                f"printer connection {url!r}: bad port {port_text!r}"
            ) from None
        if not host or not 0 < port < 65536:
            raise PrinterConfigError(f"printer connection {url!r}: expected tcp://host:port")
        return PrinterConnection("tcp", host, port, options)
    if scheme in ("serial", "file"):
        if not target:
            raise PrinterConfigError(f"printer connection {url!r}: no device path")
        return PrinterConnection(scheme, target, options=options)  # type: ignore[arg-type]
    if scheme == "usb":
        vendor, _, product = target.strip("/").partition(":")
        try:
            int(vendor, 16), int(product, 16)
        except ValueError:
            raise PrinterConfigError(
                f"printer connection {url!r}: expected usb://VENDOR:PRODUCT in hex, "
                "e.g. usb://04b8:0202"
            ) from None
        return PrinterConnection("usb", f"{vendor}:{product}", options=options)
    raise PrinterConfigError(
        f"printer connection {url!r}: unknown scheme {scheme!r} (tcp, serial, usb, file)"
    )


def _int_option(connection: PrinterConnection, name: str, default: int) -> int:
    value = connection.options.get(name)
    if value is None:
        return default
    try:
        return int(value, 0)
    except ValueError:
        raise PrinterConfigError(
            f"printer connection {connection.url}: {name}={value!r} is not a number"
        ) from None


def _bool_option(connection: PrinterConnection, name: str, default: bool) -> bool:
    value = connection.options.get(name)
    if value is None:
        return default
    return value.lower() in ("1", "true", "yes", "on")


def _escpos_module(transport: Transport) -> Any:
    """python-escpos' printer classes, with the transport's own library checked."""
    try:
        import escpos.printer as printers
    except ImportError as exc:
        raise PrinterDependencyMissing(
            "ESC/POS printers need python-escpos: pip install 'python-escpos>=3.1'"
        ) from exc
    if transport == "serial" and not printers.Serial.is_usable():
        raise PrinterDependencyMissing("serial printers need pyserial: pip install pyserial")
    if transport == "usb" and not printers.Usb.is_usable():
        raise PrinterDependencyMissing(
            "USB printers need pyusb and libusb: pip install pyusb; apt-get install libusb-1.0-0"
        )
    return printers


# --- the printer -----------------------------------------------------------------------------


class EscPosPrinter:
    """One receipt printer: status, send, and `print_job` that reports whether it took the job.

    Each job (or status probe) opens the connection and closes it after, as network print
    servers expect one client at a time; python-escpos does the opening for its transport.
    """

    def __init__(
        self,
        connection: str,
        *,
        profile: str = "TM-T88V",
        width_mm: int = 80,
        timeout_s: float = 5.0,
        job_timeout_s: float = 30.0,
        progress_interval_s: float = 0.5,
    ) -> None:
        """`timeout_s` bounds connecting and each status answer; `job_timeout_s` how long a
        printer that reports no fault may take to print a job before it counts as lost;
        `progress_interval_s` how often a job in the printer is followed with DLE EOT."""
        self.connection = parse_connection(connection)
        self.profile = profile
        self.width_mm = width_mm
        self.timeout_s = timeout_s
        self.job_timeout_s = job_timeout_s
        self.progress_interval_s = progress_interval_s
        self._validate_profile()
        _escpos_module(self.connection.transport)  # a missing library is a start-up error

    @classmethod
    def from_config(
        cls, config: PrinterConfig, *, connection: str | None = None, **kwargs: Any
    ) -> EscPosPrinter:
        """The printer of a lane's `printer` config (`connection` overrides where it is)."""
        return cls(
            connection or config.connection,
            profile=config.profile,
            width_mm=config.width_mm,
            **kwargs,
        )

    @property
    def url(self) -> str:
        return self.connection.url

    @property
    def reports_status(self) -> bool:
        return self.connection.transport != "file"

    def _validate_profile(self) -> None:
        try:
            from escpos.capabilities import get_profile
        except ImportError:
            return  # reported with a clear message when the printer is opened
        try:
            get_profile(self.profile)
        except Exception as exc:  # python-escpos raises its own NotSupported / KeyError
            raise PrinterConfigError(f"unknown printer profile {self.profile!r}: {exc}") from exc

    # -- connection ----------------------------------------------------------------------------

    def make_escpos(self) -> Any:
        """A python-escpos printer for this connection, profile and paper width (not opened)."""
        printers = _escpos_module(self.connection.transport)
        connection = self.connection
        if connection.transport == "tcp":
            device = printers.Network(
                connection.target, connection.port, timeout=self.timeout_s, profile=self.profile
            )
        elif connection.transport == "serial":
            device = printers.Serial(
                devfile=connection.target,
                baudrate=_int_option(connection, "baudrate", 9600),
                bytesize=_int_option(connection, "bytesize", 8),
                parity=connection.options.get("parity", "N").upper()[:1],
                stopbits=_int_option(connection, "stopbits", 1),
                timeout=min(self.timeout_s, 0.2),
                xonxoff=_bool_option(connection, "xonxoff", False),
                dsrdtr=_bool_option(connection, "dsrdtr", True),
                profile=self.profile,
            )
        elif connection.transport == "usb":
            vendor, product = (int(part, 16) for part in connection.target.split(":"))
            device = printers.Usb(
                vendor,
                product,
                timeout=int(self.timeout_s * 1000),
                in_ep=_int_option(connection, "in_ep", 0x82),
                out_ep=_int_option(connection, "out_ep", 0x01),
                profile=self.profile,
            )
        else:
            device = printers.File(devfile=connection.target, profile=self.profile)
        self._set_media_width(device)
        return device

    def _set_media_width(self, device: Any) -> None:
        # python-escpos keeps profile data per class: copy before changing it for this printer.
        data = dict(device.profile.profile_data)
        media = dict(data.get("media", {}))
        pixels = print_width(self.profile, self.width_mm).dots
        media["width"] = {"mm": self.width_mm, "pixels": pixels}
        data["media"] = media
        device.profile.profile_data = data

    def _check_device_node(self) -> None:
        """A file:// printer whose node is gone is unplugged: python-escpos would open the path
        "wb" and so create a plain file, taking the job into it as if the printer had."""
        if self.connection.transport == "file" and not os.path.exists(self.connection.target):
            raise PrinterUnavailable(
                f"printer device {self.connection.target} is not present (unplugged?)"
            )

    @contextlib.contextmanager
    def _opened(self) -> Iterator[_Link]:
        from escpos.exceptions import DeviceNotFoundError

        self._check_device_node()
        device = self.make_escpos()
        try:
            device.open()
        except DeviceNotFoundError as exc:
            raise PrinterUnavailable(f"cannot open printer {self.url}: {_first_line(exc)}") from exc
        except OSError as exc:
            raise PrinterUnavailable(f"cannot open printer {self.url}: {exc}") from exc
        link = _Link(device, self.connection.transport, self.url)
        try:
            link.drain()
            yield link
        except (OSError, ValueError) as exc:
            if isinstance(exc, PrinterUnavailable | InvalidStatusReply):
                raise
            raise PrinterUnavailable(f"printer {self.url}: {exc}") from exc
        finally:
            with contextlib.suppress(Exception):
                device.close()

    # -- operations ----------------------------------------------------------------------------

    def status(self) -> PrinterStatus:
        """Ask the printer (DLE EOT 1-4) how it is; raises `PrinterUnavailable` if it cannot."""
        if not self.reports_status:
            self._check_device_node()
            return PrinterStatus.unknown()
        with self._opened() as link:
            return link.status(self.timeout_s)

    def send(self, data: bytes) -> None:
        """Send bytes as they are, without any status check."""
        with self._opened() as link:
            link.write(data)

    def print_job(
        self,
        data: bytes,
        *,
        on_sent: Callable[[], None] | None = None,
        on_progress: Callable[[PrinterStatus], None] | None = None,
        stop: threading.Event | None = None,
    ) -> PrinterStatus:
        """Check, send once, confirm: returns the status once the printer has printed the whole
        job. `on_sent` runs just before the bytes go (the job may be on paper from then on);
        `on_progress` gets each status asked while the printer holds the job (a fault part-way);
        `stop` set (the service stopping) gives the job up as interrupted.
        Raises `PrinterNotReady` (nothing sent), `PrinterUnavailable` (nothing sent) or
        `JobInterrupted` (sent, lost part-way)."""
        with self._opened() as link:
            if not self.reports_status:
                if on_sent is not None:
                    on_sent()
                link.write(data)
                link.flush()
                return PrinterStatus.unknown()
            before = link.status(self.timeout_s)
            if not before.ready:
                raise PrinterNotReady(before, sent=False)
            if on_sent is not None:
                on_sent()
            try:
                link.write(data + TRANSMIT_PAPER_STATUS)
                return self._await_completion(link, on_progress, stop)
            except JobInterrupted:
                raise
            except (PrinterUnavailable, InvalidStatusReply, OSError) as exc:
                raise JobInterrupted(f"the job was lost part-way: {exc}") from exc

    def _await_completion(
        self,
        link: _Link,
        on_progress: Callable[[PrinterStatus], None] | None,
        stop: threading.Event | None,
    ) -> PrinterStatus:
        """Wait for the GS r answer that follows the job; ask DLE EOT meanwhile and recover a
        recoverable error whose cause the cashier removed."""
        printing_since = time.monotonic()
        while True:
            if link.await_paper_status(self.progress_interval_s):
                return link.status(self.timeout_s)
            if stop is not None and stop.is_set():
                raise JobInterrupted(f"the service stopped while printer {self.url} had the job")
            status = link.status(self.timeout_s)
            if link.paper_status_seen:
                return status
            if status.ready:
                if time.monotonic() - printing_since > self.job_timeout_s:
                    raise JobInterrupted(
                        f"printer {self.url} is ready but has not finished the job within "
                        f"{self.job_timeout_s:g} s"
                    )
                continue
            printing_since = time.monotonic()  # stopped: the printing time starts again after
            if status.waiting_recovery and not status.cover_open and not status.paper_out:
                link.write(RECOVER_AND_RESUME)
            if on_progress is not None:
                on_progress(status)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.split())


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
