"""python-escpos printing to the virtual printer over real TCP sockets and real pseudo-terminals.

Everything a user would check on the paper: the Russian text, the styles, and the QR codes and
barcodes read back from the PNG with zxing-cpp; plus the status bytes a driver sees for each fault.
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import numpy as np
import pytest
import serial
import zxingcpp
from escpos.escpos import Escpos
from escpos.exceptions import DeviceNotFoundError
from escpos.printer import Network, Serial
from PIL import Image

from firmware_sim.printer import PrinterPty, PrinterServer, Receipt, VirtualPrinter
from tests.serving import SAFETY_S

LOYALTY_QR = "PLQ1.c42.1700000000.K5QW3ZB2"
COUPON_QR = "https://example.org/c/7QX9-K2MF"
TIMEOUT = 5.0
WIDE_TERMINAL = {"COLUMNS": "250", "TERMINAL_WIDTH": "250"}  # error panels unwrapped


# The simulator as a terminal starts it, with Ctrl-C at its default: a shell starts a background
# job with SIGINT ignored and a child inherits that, so under `make test &` (or a CI runner that
# does the same) the simulator would rightly ignore the test's Ctrl-C and the test would hang.
SIM_AS_FROM_A_TERMINAL = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from pos_loyalty.cli import main; main()"
)


@contextmanager
def escpos_over(transport: str, printer: VirtualPrinter, profile: str) -> Iterator[Escpos]:
    """A python-escpos printer connected to `printer` over a real TCP socket or a real pty."""
    if transport == "tcp":
        with PrinterServer(printer, "127.0.0.1", 0) as server:
            driver: Escpos = Network("127.0.0.1", server.port, timeout=TIMEOUT, profile=profile)
            try:
                yield driver
            finally:
                driver.close()
    else:
        with PrinterPty(printer) as pty:
            driver = Serial(devfile=pty.port, baudrate=115200, timeout=0.2, profile=profile)
            try:
                yield driver
            finally:
                driver.close()


def print_sale(driver: Escpos) -> None:
    driver.set(align="center", bold=True, double_width=True, double_height=True)
    driver.textln("Магазин у дома")
    driver.set(normal_textsize=True, bold=False, align="left")
    driver.textln("Молоко 3,2% 1 л        2 x 89,90")
    driver.set(bold=True)
    driver.textln("ИТОГО                     179,80")
    driver.set(bold=False, font="b")
    driver.textln("Спасибо за покупку! Ёлки-палки.")
    driver.set(font="a")
    driver.qr(LOYALTY_QR, native=True, size=4)
    driver.qr(COUPON_QR, native=False, size=4)
    driver.barcode("4601234567893", "EAN13")
    driver.barcode("{BCPN-7QX9K2", "CODE128", function_type="B", width=2)
    logo = Image.new("1", (96, 40), 1)
    logo.paste(0, (0, 0, 96, 8))
    logo.paste(0, (0, 32, 96, 40))
    driver.image(logo)
    driver.cut()


def inked_bands(image: Image.Image) -> list[int]:
    """Heights of the runs of rows that carry ink, top to bottom."""
    rows = (np.asarray(image.convert("L")) < 128).any(axis=1).astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], rows, [0]))))
    return [int(end - start) for start, end in zip(edges[::2], edges[1::2], strict=True)]


def read_back(receipt: Receipt) -> set[tuple[str, str]]:
    return {
        (result.format.name, result.text)
        for result in zxingcpp.read_barcodes(receipt.image.convert("L"))
    }


@pytest.mark.parametrize(
    ("transport", "profile", "code_page_slot", "dots"),
    [
        ("tcp", "TM-T88V", 17, 512),  # Epson puts CP866 at ESC t 17 ...
        ("pty", "NT-80-V-UL", 59, 576),  # ... many Chinese 80 mm printers at ESC t 59
        ("tcp", "NT-80-V-UL", 59, 576),
        ("pty", "TM-T88V", 17, 512),
        ("tcp", "KR-306", 37, 576),  # CP866 only at 12 and 37, nowhere near an Epson's slot
    ],
)
def test_python_escpos_receipt_comes_out_readable(
    transport: str, profile: str, code_page_slot: int, dots: int
) -> None:
    printer = VirtualPrinter(profile)
    sent: list[bytes] = []
    with escpos_over(transport, printer, profile) as driver:
        original_raw = driver._raw

        def spy(data: bytes) -> None:
            sent.append(data)
            original_raw(data)

        driver._raw = spy  # type: ignore[method-assign]
        print_sale(driver)
        (receipt,) = printer.wait_for_receipts(1, timeout=TIMEOUT)

    assert b"\x1bt" + bytes([code_page_slot]) in b"".join(sent)
    assert receipt.image.width == dots and receipt.cut == "full" and receipt.complete
    lines = [line.strip() for line in receipt.lines]
    assert "Магазин у дома" in lines
    assert "Молоко 3,2% 1 л        2 x 89,90" in lines
    assert "ИТОГО                     179,80" in lines
    assert "Спасибо за покупку! Ёлки-палки." in lines
    assert receipt.qr_payloads == [LOYALTY_QR]  # the image QR is only dots to the printer
    assert [(b.symbology, b.data) for b in receipt.barcodes] == [
        ("EAN13", "4601234567893"),
        ("CODE128", "CPN-7QX9K2"),
    ]
    assert receipt.images >= 2  # the QR sent as an image, and the logo
    assert read_back(receipt) == {
        ("QRCode", LOYALTY_QR),
        ("QRCode", COUPON_QR),
        ("EAN13", "4601234567893"),
        ("Code128", "CPN-7QX9K2"),
    }
    # The double-size title is twice as tall as the regular line under it.
    title, regular = inked_bands(receipt.image)[:2]
    assert 1.8 <= title / regular <= 2.2


def test_python_escpos_status_queries_over_tcp_follow_the_faults() -> None:
    printer = VirtualPrinter(paper_mm=5_000, near_end_mm=1_000)
    with PrinterServer(printer, "127.0.0.1", 0) as server:
        driver = Network("127.0.0.1", server.port, timeout=TIMEOUT, profile="TM-T88V")
        try:
            assert driver.is_online() and driver.paper_status() == 2
            printer.set_paper_remaining(300)
            assert driver.paper_status() == 1
            printer.set_paper_remaining(0)
            assert driver.paper_status() == 0 and not driver.is_online()
            printer.refill()
            printer.set_cover_open(True)
            assert not driver.is_online() and driver.paper_status() == 2
            printer.set_cover_open(False)
            assert driver.is_online()
        finally:
            driver.close()


def test_dle_eot_over_a_raw_socket_for_each_fault() -> None:
    printer = VirtualPrinter(paper_mm=5_000, near_end_mm=1_000)
    with (
        PrinterServer(printer, "127.0.0.1", 0) as server,
        closing(socket.create_connection(server.address, timeout=TIMEOUT)) as connection,
    ):

        def ask_all() -> bytes:
            connection.sendall(b"\x10\x04\x01\x10\x04\x02\x10\x04\x03\x10\x04\x04")
            answer = b""
            while len(answer) < 4:
                answer += connection.recv(4 - len(answer))
            return answer

        assert ask_all() == b"\x12\x12\x12\x12"
        printer.set_cover_open(True)
        assert ask_all() == b"\x1a\x16\x12\x12"
        printer.set_cover_open(False)
        printer.set_error("autocutter")
        assert ask_all() == b"\x1a\x52\x1a\x12"
        printer.set_error(None)
        printer.set_paper_remaining(10)
        assert ask_all() == b"\x12\x12\x12\x1e"
        printer.set_paper_remaining(0)
        assert ask_all() == b"\x1a\x32\x12\x7e"


@contextmanager
def raw_line(transport: str, printer: VirtualPrinter) -> Iterator[tuple[Callable, Callable]]:
    """(send, receive) over a raw TCP connection or a pyserial port on the printer's pty."""
    if transport == "tcp":
        with (
            PrinterServer(printer, "127.0.0.1", 0) as server,
            closing(socket.create_connection(server.address, timeout=TIMEOUT)) as connection,
        ):
            yield connection.sendall, connection.recv
    else:
        with PrinterPty(printer) as pty, serial.Serial(pty.port, 115200, timeout=TIMEOUT) as port:
            yield port.write, port.read


@pytest.mark.parametrize("transport", ["tcp", "pty"])
def test_status_is_answered_while_a_slow_job_is_still_printing(transport: str) -> None:
    printer = VirtualPrinter(print_speed_mm_s=150)
    with raw_line(transport, printer) as (send, receive):
        job = "".join(f"Строка {i}\n" for i in range(20)).encode("cp866")  # ~85 mm: 0.56 s
        started = time.monotonic()
        send(b"\x1bt\x11" + job + b"\x1dV\x00" + b"\x10\x04\x01")
        assert receive(1) == b"\x12"
        answered = time.monotonic() - started
        printer.wait_for_receipts(1, timeout=TIMEOUT)
        printed = time.monotonic() - started
    assert answered < 0.25 and printed > 0.5


def test_paper_out_over_tcp_keeps_the_data_and_the_new_roll_prints_the_rest() -> None:
    printer = VirtualPrinter(paper_mm=100, near_end_mm=30)  # one 64 mm receipt and a half
    with PrinterServer(printer, "127.0.0.1", 0) as server:
        driver = Network("127.0.0.1", server.port, timeout=TIMEOUT, profile="TM-T88V")
        try:
            for number in range(3):
                driver.textln(f"Чек {number}")
                driver.ln(8)
                driver.cut()
            assert printer.wait_until(lambda: printer.paper_out, TIMEOUT)
            assert driver.paper_status() == 0
            printer.refill(1_000)
            driver.textln("После замены рулона")
            driver.cut()
            receipts = printer.wait_for_receipts(5, timeout=TIMEOUT)
        finally:
            driver.close()
    assert [r.complete for r in receipts] == [True, False, True, True, True]
    assert [r.lines[0] for r in receipts if r.lines] == [
        "Чек 0", "Чек 1", "Чек 2", "После замены рулона"
    ]  # fmt: skip
    assert printer.dropped_bytes == 0 and printer.lost_cuts == 0


def test_a_powered_off_printer_refuses_connections_until_back_on() -> None:
    printer = VirtualPrinter()
    with PrinterServer(printer, "127.0.0.1", 0) as server:
        printer.set_power(False)
        assert wait_for_port(server.address, open_=False), "port did not close"
        with pytest.raises(DeviceNotFoundError):
            Network("127.0.0.1", server.port, timeout=1, profile="TM-T88V").open()
        printer.set_power(True)
        assert wait_for_port(server.address, open_=True), "port did not reopen"
        with closing(socket.create_connection(server.address, timeout=1)) as connection:
            connection.sendall(b"back online\n\x1dV\x00")
        assert printer.wait_for_receipts(1, timeout=TIMEOUT)[0].lines == ["back online"]


def test_an_offline_printer_keeps_its_port_and_answers_offline() -> None:
    printer = VirtualPrinter()
    with PrinterServer(printer, "127.0.0.1", 0) as server:
        printer.set_offline(True)
        with closing(socket.create_connection(server.address, timeout=1)) as connection:
            connection.sendall(b"\x10\x04\x01")
            assert connection.recv(1) == b"\x1a"


def wait_for_port(address: tuple[str, int], *, open_: bool) -> bool:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            with closing(socket.create_connection(address, timeout=1)):
                if open_:
                    return True
        except ConnectionRefusedError:
            if not open_:
                return True
        time.sleep(0.05)
    return False


def test_truncated_command_at_end_of_connection_does_not_stop_the_server() -> None:
    printer = VirtualPrinter()
    with PrinterServer(printer, "127.0.0.1", 0) as server:
        with closing(socket.create_connection(server.address, timeout=TIMEOUT)) as connection:
            connection.sendall(b"partial\n\x1dv0\x00\x10\x00\x10\x00\xff")  # image cut short
        with closing(socket.create_connection(server.address, timeout=TIMEOUT)) as connection:
            connection.sendall(b"next job\n\x1dV\x00")
        (receipt,) = printer.wait_for_receipts(1, timeout=TIMEOUT)
    assert receipt.lines == ["partial", "next job"]


def test_pty_offers_a_stable_symlink(tmp_path: Path) -> None:
    printer = VirtualPrinter("NT-80-V-UL")
    link = tmp_path / "printer0"
    with PrinterPty(printer, link=link) as pty:
        assert link.is_symlink() and os.readlink(link) == pty.path
        driver = Serial(devfile=str(link), timeout=0.2, profile="NT-80-V-UL")
        try:
            driver.textln("По последовательному порту")
            driver.cut()
            assert driver.is_online()
        finally:
            driver.close()
        assert printer.wait_for_receipts(1, timeout=TIMEOUT)[0].lines[0] == (
            "По последовательному порту"
        )
    assert not link.exists()


def test_out_dir_gets_numbered_png_and_text_files(tmp_path: Path) -> None:
    (tmp_path / "0007.png").write_bytes(b"")  # an earlier run's receipt is never overwritten
    printer = VirtualPrinter(out_dir=tmp_path)
    printer.feed(b"first\n\x1dV\x00second\n\x1dV\x01")
    assert (tmp_path / "0008.txt").read_text(encoding="utf-8") == "first\n"
    assert (tmp_path / "0009.txt").read_text(encoding="utf-8") == "second\n"
    assert Image.open(tmp_path / "0009.png").width == 512


def test_sim_printer_command_writes_each_receipt_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    out, link = tmp_path / "receipts", tmp_path / "printer0"
    entry_point = SIM_AS_FROM_A_TERMINAL
    options = ["--port", "0", "--out", str(out), "--profile", "TM-T88V", "--paper-mm", "5000"]
    options += ["--pty-link", str(link)]  # the same printer on a serial line too
    command = [sys.executable, "-c", entry_point, "sim", "printer", *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        match = re.search(r"tcp://127\.0\.0\.1:(\d+)", banner)
        assert match, banner
        driver = Network("127.0.0.1", int(match.group(1)), timeout=TIMEOUT, profile="TM-T88V")
        driver.textln("Чек из командной строки")
        driver.qr(LOYALTY_QR, native=True)
        driver.cut()
        driver.close()
        announced = process.stdout.readline()
        assert "0001.png" in announced and LOYALTY_QR in announced
        assert str(link) in banner and link.is_symlink()
        serial_driver = Serial(devfile=str(link), timeout=0.2, profile="TM-T88V")
        serial_driver.textln("Чек по кабелю")
        serial_driver.cut()
        serial_driver.close()
        assert "0002.png" in process.stdout.readline()
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=SAFETY_S)  # exits once it has written
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT)
    assert process.returncode == 0
    assert "2 receipts" in stdout
    assert (out / "0001.txt").read_text(encoding="utf-8").startswith("Чек из командной строки")
    assert (out / "0002.txt").read_text(encoding="utf-8") == "Чек по кабелю\n"
    with Image.open(out / "0001.png") as png:
        assert png.width == 512
    assert not link.exists()  # the link goes when the printer is switched off


@pytest.mark.parametrize(
    ("options", "message"),
    [(["--paper-width-mm", "10"], "paper width 10 mm: the simulator prints on 58 mm and 80 mm"),
     (["--profile", "TM-NOPE"], "unknown printer profile 'TM-NOPE'"),
     (["--port", "70000"], "'--port': Input should be less than or equal to 65535"),
     (["--speed", "-1"], "'--speed': Input should be greater than or equal to 0")],
)  # fmt: skip
def test_sim_printer_command_refuses_bad_options_before_listening(
    tmp_path: Path, options: list[str], message: str
) -> None:
    from typer.testing import CliRunner

    from pos_loyalty.cli.app import app

    result = CliRunner(env=WIDE_TERMINAL).invoke(
        app, ["sim", "printer", "--out", str(tmp_path), *options]
    )
    assert result.exit_code == 2
    assert message in " ".join(result.output.replace("│", " ").split())


def test_sim_printer_command_refuses_an_out_dir_it_cannot_write(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pos_loyalty.cli.app import app

    not_a_directory = tmp_path / "receipts"
    not_a_directory.write_text("a file where the receipts should go")
    result = CliRunner(env=WIDE_TERMINAL).invoke(
        app, ["sim", "printer", "--out", str(not_a_directory)]
    )
    assert result.exit_code == 2
    assert "cannot write receipts there" in " ".join(result.output.replace("│", " ").split())


def _interrupt_a_thread_other_than_the_main_one(pid: int) -> None:
    """Deliver SIGINT to one of the process's other threads (tgkill), as the kernel may when the
    user presses Ctrl-C on a busy machine."""
    libc = ctypes.CDLL(None, use_errno=True)
    sys_tgkill = 234  # x86-64
    threads = sorted(int(tid) for tid in os.listdir(f"/proc/{pid}/task") if int(tid) != pid)
    assert threads, "the simulator runs its devices in threads"
    assert libc.syscall(sys_tgkill, pid, threads[0], signal.SIGINT) == 0, ctypes.get_errno()


@pytest.mark.skipif(platform.machine() != "x86_64", reason="tgkill's number is x86-64's")
def test_ctrl_c_stops_the_simulator_whichever_thread_receives_it(tmp_path: Path) -> None:
    """A Ctrl-C the kernel hands to a device thread stops it too (it used to wait for good)."""
    entry_point = SIM_AS_FROM_A_TERMINAL
    options = ["--port", "0", "--out", str(tmp_path / "receipts")]
    command = [sys.executable, "-c", entry_point, "sim", "printer", *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert "tcp://127.0.0.1:" in process.stdout.readline()
        _interrupt_a_thread_other_than_the_main_one(process.pid)
        stdout, _ = process.communicate(timeout=SAFETY_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(SAFETY_S)
    assert process.returncode == 0 and "0 receipts" in stdout
