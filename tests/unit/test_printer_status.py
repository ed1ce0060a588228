"""DLE EOT replies decoded into what the print queue acts on, and printer connection URLs."""

from __future__ import annotations

import pytest

from drivers.printer import (
    EscPosPrinter,
    InvalidStatusReply,
    PrinterConfigError,
    PrinterConnection,
    PrinterStatus,
    parse_connection,
)
from firmware_sim.printer import VirtualPrinter

HEALTHY = bytes([0x12, 0x12, 0x12, 0x12])


def test_a_healthy_printer_is_ready() -> None:
    status = PrinterStatus.from_bytes(HEALTHY)
    assert status.ready and status.online and status.fault is None
    assert status.message == "ready"


def test_paper_out_as_epson_reports_it() -> None:
    # Offline (n=1 bit 3), stopped by paper end (n=2 bit 5), near end and end sensors (n=4).
    status = PrinterStatus.from_bytes(bytes([0x1A, 0x32, 0x12, 0x7E]))
    assert not status.ready and not status.online
    assert status.paper_out and status.paper_near_end
    assert status.fault == "paper_out"
    assert status.message == "the printer is out of paper"


def test_near_end_is_a_warning_not_a_stop() -> None:
    status = PrinterStatus.from_bytes(bytes([0x12, 0x12, 0x12, 0x1E]))
    assert status.ready and status.paper_near_end and not status.paper_out
    assert status.message == "ready, paper near its end"


def test_cover_open() -> None:
    status = PrinterStatus.from_bytes(bytes([0x1A, 0x16, 0x12, 0x12]))
    assert status.cover_open and status.fault == "cover_open"


@pytest.mark.parametrize(
    ("error_byte", "kind"),
    [
        (0x1A, "autocutter"),
        (0x32, "unrecoverable"),
        (0x52, "auto_recoverable"),
        (0x16, "recoverable"),
    ],
)
def test_error_causes(error_byte: int, kind: str) -> None:
    status = PrinterStatus.from_bytes(bytes([0x1A, 0x52, error_byte, 0x12]))
    assert status.error == kind and status.fault == "printer_error"
    assert kind in status.message


def test_offline_without_a_cause_is_not_ready() -> None:
    # The feed button held: offline, nothing wrong with cover, paper or mechanism.
    status = PrinterStatus.from_bytes(bytes([0x1A, 0x1A, 0x12, 0x12]))
    assert status.fault == "printer_not_ready"


def test_drawer_pin() -> None:
    assert PrinterStatus.from_bytes(bytes([0x16, 0x12, 0x12, 0x12])).drawer_pin_high


@pytest.mark.parametrize("replies", [b"\x00\x12\x12\x12", b"\x12\x12\x13\x12", b"\x12\x92\x12\x12"])
def test_bytes_that_cannot_be_status_replies_are_refused(replies: bytes) -> None:
    with pytest.raises(InvalidStatusReply):
        PrinterStatus.from_bytes(replies)


def test_a_short_reply_is_refused() -> None:
    with pytest.raises(InvalidStatusReply, match="expected 4 status bytes"):
        PrinterStatus.from_bytes(b"\x12\x12")


def _virtual_replies(printer: VirtualPrinter) -> bytes:
    return printer.feed(b"".join(b"\x10\x04" + bytes([n]) for n in (1, 2, 3, 4)))


def test_decodes_what_the_virtual_printer_answers_for_each_fault() -> None:
    printer = VirtualPrinter("TM-T88V", paper_mm=100.0, near_end_mm=50.0)
    assert PrinterStatus.from_bytes(_virtual_replies(printer)).ready

    printer.set_paper_remaining(10.0)
    near = PrinterStatus.from_bytes(_virtual_replies(printer))
    assert near.ready and near.paper_near_end

    printer.set_paper_remaining(0)
    assert PrinterStatus.from_bytes(_virtual_replies(printer)).fault == "paper_out"
    printer.refill()

    printer.set_cover_open(True)
    assert PrinterStatus.from_bytes(_virtual_replies(printer)).fault == "cover_open"
    printer.set_cover_open(False)

    printer.set_error("autocutter")
    errored = PrinterStatus.from_bytes(_virtual_replies(printer))
    assert errored.fault == "printer_error" and errored.error == "autocutter"
    printer.set_error(None)
    assert PrinterStatus.from_bytes(_virtual_replies(printer)).ready


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("tcp://10.0.0.5:9100", PrinterConnection("tcp", "10.0.0.5", 9100)),
        ("tcp://printer.local", PrinterConnection("tcp", "printer.local", 9100)),
        (
            "serial:///dev/ttyUSB0?baudrate=38400",
            PrinterConnection("serial", "/dev/ttyUSB0", options={"baudrate": "38400"}),
        ),
        ("/dev/pts/7", PrinterConnection("serial", "/dev/pts/7")),
        ("./printer0", PrinterConnection("serial", "./printer0")),
        ("usb://04b8:0202", PrinterConnection("usb", "04b8:0202")),
        ("file:///dev/usb/lp0", PrinterConnection("file", "/dev/usb/lp0")),
    ],
)
def test_connection_urls(url: str, expected: PrinterConnection) -> None:
    assert parse_connection(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sim://printer", "simulated printer"),
        ("tcp://host:port", "bad port"),
        ("usb://epson", "VENDOR:PRODUCT"),
        ("lpt://1", "unknown scheme"),
        ("printer", "expected tcp://"),
    ],
)
def test_bad_connection_urls_say_what_is_expected(url: str, message: str) -> None:
    with pytest.raises(PrinterConfigError, match=message):
        parse_connection(url)


def test_unknown_profile_is_a_config_error() -> None:
    with pytest.raises(PrinterConfigError, match="TM-NOPE"):
        EscPosPrinter("tcp://127.0.0.1:9100", profile="TM-NOPE")


def test_paper_width_sets_the_dots_python_escpos_centres_images_on() -> None:
    printer_80 = EscPosPrinter("tcp://127.0.0.1:9100", profile="TM-T88V", width_mm=80)
    printer_58 = EscPosPrinter("tcp://127.0.0.1:9100", profile="TM-T88V", width_mm=58)
    assert printer_80.make_escpos().profile.profile_data["media"]["width"]["pixels"] == 512
    assert printer_58.make_escpos().profile.profile_data["media"]["width"]["pixels"] == 360
    # The change is the printer's own: python-escpos' shared profile data stays as it was.
    assert printer_80.make_escpos().profile.profile_data["media"]["width"]["pixels"] == 512


def test_a_usb_printer_needs_pyusb_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import escpos.printer

    from drivers.printer import PrinterDependencyMissing

    monkeypatch.setattr(escpos.printer.Usb, "is_usable", staticmethod(lambda: False))
    with pytest.raises(PrinterDependencyMissing, match="pip install pyusb"):
        EscPosPrinter("usb://04b8:0202")


def test_a_usb_printer_that_is_not_plugged_in_is_unavailable_not_broken() -> None:
    """pyusb and libusb are installed with the project, so a USB printer that is switched off
    or unplugged is a printer that is away (the job waits), not a missing library."""
    from drivers.printer import PrinterUnavailable

    printer = EscPosPrinter("usb://04b8:0e15")  # an Epson TM-T20II's ids; none on this machine
    with pytest.raises(PrinterUnavailable, match="cannot open printer usb://04b8:0e15"):
        printer.status()
