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
from typing import Any
from urllib.parse import parse_qsl

from drivers.printer_link import Transport, _Link
from drivers.printer_status import (
    DEFAULT_TCP_PORT,
    RECOVER_AND_RESUME,
    TRANSMIT_PAPER_STATUS,
    InvalidStatusReply,
    JobInterrupted,
    PrinterConfigError,
    PrinterDependencyMissing,
    PrinterNotReady,
    PrinterStatus,
    PrinterUnavailable,
)
from pos_loyalty.receipts.media import print_width
from pos_loyalty.settings import PrinterConfig

log = logging.getLogger(__name__)

__all__ = [  # the status and errors come from drivers.printer_status; callers may take them here
    "EscPosPrinter",
    "InvalidStatusReply",
    "JobInterrupted",
    "PrinterConfigError",
    "PrinterConnection",
    "PrinterDependencyMissing",
    "PrinterNotReady",
    "PrinterStatus",
    "PrinterUnavailable",
    "parse_connection",
]


# --- connection URLs -------------------------------------------------------------------------


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
