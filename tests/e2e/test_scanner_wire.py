"""The virtual scanner on a real pty: pyserial reads its exact bytes; the driver reads its scans."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial

from drivers.reading import Reading
from drivers.scanner import ScannerFraming, SerialScanner
from firmware_sim.scanner import Framing, VirtualScanner, frame_scan, swipe_text
from tests.serving import SAFETY_S

EAN = "4601234567893"
PAN = "4000001234562"
WIDE_TERMINAL = {"COLUMNS": "250", "TERMINAL_WIDTH": "250"}  # error panels unwrapped
BAUD = 115200  # fast enough to keep the tests quick; pacing itself is checked at 9600


def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture
def link(tmp_path: Path) -> Path:
    return tmp_path / "scanner0"


@pytest.fixture
def make_scanner(link: Path) -> Iterator[Callable[..., VirtualScanner]]:
    made: list[VirtualScanner] = []

    def make(framing: Framing, baudrate: int = BAUD) -> VirtualScanner:
        scanner = VirtualScanner(link, baudrate=baudrate, framing=framing, seed=5).start()
        made.append(scanner)
        return scanner

    yield make
    for scanner in made:
        scanner.close()


class Collected:
    def __init__(self) -> None:
        self.readings: list[Reading] = []

    def __call__(self, reading: Reading) -> None:
        self.readings.append(reading)

    @property
    def payloads(self) -> list[str]:
        return [r.payload for r in self.readings]


@pytest.fixture
def run_driver(link: Path) -> Iterator[Callable[[ScannerFraming], tuple[SerialScanner, Collected]]]:
    drivers: list[SerialScanner] = []

    def run(framing: ScannerFraming) -> tuple[SerialScanner, Collected]:
        collected = Collected()
        driver = SerialScanner(
            str(link), baudrate=BAUD, framing=framing, on_payload=collected, poll_s=0.05
        ).start()
        drivers.append(driver)
        assert wait_for(lambda: driver.state().connected), driver.state()
        return driver, collected

    yield run
    for driver in drivers:
        driver.stop(timeout=2.0)


FRAMINGS = {
    "none": Framing.with_suffix("none"),
    "cr": Framing.with_suffix("cr"),
    "lf": Framing.with_suffix("lf"),
    "crlf": Framing.with_suffix("crlf"),
    "tab": Framing.with_suffix("tab"),
    "prefix+aim": Framing(prefix=b"#", suffix=b"\r", aim=True),
    "stx-etx": Framing(suffix=b"", stx_etx=True),
    "stx-etx-lrc": Framing(suffix=b"", stx_etx=True, lrc=True),
}


@pytest.mark.parametrize("name", FRAMINGS)
def test_pyserial_reads_the_exact_frame_bytes(name: str, make_scanner, link: Path) -> None:
    scanner = make_scanner(FRAMINGS[name])
    with serial.Serial(str(link), BAUD, timeout=1.0) as port:
        sent = scanner.scan(EAN, symbology="ean13")
        assert port.read(len(sent)) == sent
        assert sent == frame_scan(EAN, FRAMINGS[name], "ean13")


def test_bytes_are_paced_at_the_baud_rate(make_scanner, link: Path) -> None:
    scanner = make_scanner(Framing.with_suffix("crlf"), baudrate=9600)
    with serial.Serial(str(link), 9600, timeout=1.0) as port:
        started = time.perf_counter()
        sent = scanner.scan("X" * 46)  # 48 bytes → 50 ms on a 9600 8N1 line
        elapsed = time.perf_counter() - started
        assert port.read(len(sent)) == sent
    assert elapsed >= scanner.wire_time_s(len(sent)) * 0.95


DRIVER_FRAMINGS = {
    "none": ScannerFraming(suffix="none", frame_timeout_s=0.05),
    "cr": ScannerFraming(suffix="cr"),
    "lf": ScannerFraming(suffix="lf"),
    "crlf": ScannerFraming(suffix="crlf"),
    "tab": ScannerFraming(suffix="tab"),
    "prefix+aim": ScannerFraming(prefix=b"#"),
    "stx-etx": ScannerFraming(stx_etx=True),
    "stx-etx-lrc": ScannerFraming(stx_etx=True, lrc=True),
}


@pytest.mark.parametrize("name", FRAMINGS)
def test_driver_reads_each_framing(name: str, make_scanner, run_driver) -> None:
    scanner = make_scanner(FRAMINGS[name])
    driver, got = run_driver(DRIVER_FRAMINGS[name])
    scanner.scan(EAN, symbology="ean13")
    if name == "none":
        time.sleep(0.1)  # with no suffix, the gap between scans is the frame boundary
    scanner.scan("ABC-123", symbology="code128")
    assert wait_for(lambda: len(got.readings) == 2), driver.state()
    assert got.payloads == [EAN, "ABC-123"]
    if name == "prefix+aim":
        assert [r.symbology for r in got.readings] == ["ean13", "code128"]
        assert got.readings[0].raw == "]E0" + EAN
    assert driver.state().frames_ok == 2 and driver.state().frames_dropped == 0


@pytest.mark.parametrize("tracks", ["1", "2", "both"])
def test_a_card_swipe_gives_the_card_number(tracks: str, make_scanner, run_driver) -> None:
    scanner = make_scanner(Framing.with_suffix("cr"))
    driver, got = run_driver(ScannerFraming())
    scanner.swipe(PAN, "PETROVA/ANNA", "2812", tracks=tracks)  # type: ignore[arg-type]
    assert wait_for(lambda: len(got.readings) == 1), driver.state()
    (reading,) = got.readings
    assert (reading.payload, reading.symbology) == (PAN, "msr")
    assert reading.raw == swipe_text(PAN, "PETROVA/ANNA", "2812", tracks=tracks)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sim", "driver_framing", "garbled_reason"),
    [
        (
            Framing.with_suffix("crlf"),
            ScannerFraming(suffix="crlf", truncated_after_s=0.3),
            "garbled",
        ),
        (
            Framing(suffix=b"", stx_etx=True, lrc=True),
            ScannerFraming(stx_etx=True, lrc=True, truncated_after_s=0.3),
            "bad_lrc",
        ),
    ],
    ids=["crlf", "stx-etx-lrc"],
)
def test_garbage_and_truncated_frames_are_dropped_and_counted(
    sim: Framing,
    driver_framing: ScannerFraming,
    garbled_reason: str,
    make_scanner,
    run_driver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="drivers.scanner")
    scanner = make_scanner(sim)
    driver, got = run_driver(driver_framing)
    scanner.scan("FIRST")
    scanner.scan_garbled(EAN, errors=2)
    scanner.scan_truncated(EAN, keep=0.5)
    time.sleep(driver_framing.silence_timeout_s + 0.1)  # the line goes quiet mid-frame
    scanner.scan_back_to_back("SECOND", "THIRD")
    assert wait_for(lambda: len(got.readings) == 3), driver.state()
    assert got.payloads == ["FIRST", "SECOND", "THIRD"]
    state = driver.state()
    assert state.frames_ok == 3
    assert state.frames_dropped == 2
    assert state.drop_reasons == {garbled_reason: 1, "truncated": 1}
    assert "dropped a truncated frame" in caplog.text
    assert EAN[:6] not in caplog.text  # digits are masked in the log (a bank card may be swiped)


def test_unplug_and_replug_reconnects(make_scanner, run_driver, link: Path) -> None:
    scanner = make_scanner(Framing.with_suffix("cr"))
    driver, got = run_driver(ScannerFraming())
    scanner.scan("BEFORE")
    assert wait_for(lambda: got.payloads == ["BEFORE"])

    scanner.unplug()
    assert not link.exists()
    assert wait_for(lambda: not driver.state().connected)
    assert driver.state().last_error is not None

    scanner.start()  # plugged back in: a new pty behind the same path
    assert wait_for(lambda: driver.state().connected)
    scanner.scan("AFTER")
    assert wait_for(lambda: got.payloads == ["BEFORE", "AFTER"]), driver.state()
    assert driver.state().reconnects == 1


def test_a_driver_started_before_the_scanner_waits_for_it(link: Path, make_scanner) -> None:
    got = Collected()
    driver = SerialScanner(str(link), baudrate=BAUD, on_payload=got, poll_s=0.05).start()
    try:
        time.sleep(0.15)
        assert not driver.state().connected
        assert "not present" in (driver.state().last_error or "")
        scanner = make_scanner(Framing.with_suffix("cr"))
        assert wait_for(lambda: driver.state().connected)
        scanner.scan(EAN)
        assert wait_for(lambda: got.payloads == [EAN])
    finally:
        driver.stop(timeout=2.0)


def test_without_a_callback_readings_queue(make_scanner, link: Path) -> None:
    scanner = make_scanner(Framing.with_suffix("lf"))
    with SerialScanner(str(link), baudrate=BAUD, poll_s=0.05) as driver:
        assert wait_for(lambda: driver.state().connected)
        scanner.scan(EAN)
        reading = driver.next_reading(timeout=2.0)
        assert reading is not None and reading.payload == EAN
        assert driver.next_reading(timeout=0.05) is None


def test_sim_scanner_command_sends_each_typed_line_as_a_scan(tmp_path: Path) -> None:
    """`pos-loyalty sim scanner`: lines on stdin come out of the port framed, byte for byte."""
    link = tmp_path / "scanner0"
    entry_point = "from pos_loyalty.cli import main; main()"
    options = ["--link", str(link), "--baud", str(BAUD), "--suffix", "crlf"]
    command = [sys.executable, "-c", entry_point, "sim", "scanner", *options]
    with subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        stdin = process.stdin

        def type_line(line: str) -> None:
            stdin.write(line + "\n")
            stdin.flush()

        try:
            assert "plugged in at" in process.stdout.readline()
            assert link.is_symlink()
            with serial.Serial(str(link), BAUD, timeout=2.0) as port:
                type_line(EAN)
                assert port.read(len(EAN) + 2) == f"{EAN}\r\n".encode()
                type_line(f"!swipe {PAN} PETROVA/ANNA 2812 2")
                swipe = swipe_text(PAN, "PETROVA/ANNA", "2812", tracks="2").encode() + b"\r\n"
                assert port.read(len(swipe)) == swipe
            type_line("!unplug")
            assert "unplugged" in process.stdout.readline()
            assert not link.exists()
            type_line("!replug")
            assert "plugged back in" in process.stdout.readline()
            assert link.is_symlink()
            stdin.close()  # Ctrl-D
            assert process.wait(timeout=SAFETY_S) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(5.0)
    assert not link.exists()


def test_sim_scanner_command_refuses_a_link_in_a_missing_directory(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pos_loyalty.cli.app import app

    link = tmp_path / "missing" / "scanner0"
    result = CliRunner(env=WIDE_TERMINAL).invoke(
        app, ["sim", "scanner", "--link", str(link)], input=""
    )
    assert result.exit_code == 2
    said = " ".join(result.output.replace("│", " ").split())
    assert f"no directory {link.parent} to put the link in" in said


def test_a_scan_split_across_two_reads_is_one_scan(make_scanner, run_driver) -> None:
    scanner = make_scanner(Framing.with_suffix("crlf"))
    driver, got = run_driver(ScannerFraming(suffix="crlf"))
    scanner.scan_split(EAN, symbology="ean13", gap_s=0.5)
    scanner.scan("AFTER")
    assert wait_for(lambda: len(got.readings) == 2), driver.state()
    assert got.payloads == [EAN, "AFTER"] and driver.state().frames_dropped == 0


def test_the_same_scan_five_times_in_a_burst_is_one_reading(make_scanner, run_driver) -> None:
    scanner = make_scanner(Framing.with_suffix("cr"))
    driver, got = run_driver(ScannerFraming(suffix="cr"))
    scanner.scan_repeated(EAN, 5, symbology="ean13")
    scanner.scan("OTHER")
    assert wait_for(lambda: driver.state().frames_ok == 6), driver.state()
    assert got.payloads == [EAN, "OTHER"] and driver.state().frames_repeated == 4


def test_gs1_128_with_group_separators_reaches_the_lane(make_scanner, run_driver) -> None:
    scanner = make_scanner(Framing(suffix=b"\r", aim=True))
    driver, got = run_driver(ScannerFraming(suffix="cr"))
    scanner.scan("0104601234567890\x1d10LOT42", symbology="gs1-128")
    assert wait_for(lambda: len(got.readings) == 1), driver.state()
    assert got.payloads == ["0104601234567890\x1d10LOT42"] and driver.state().frames_dropped == 0
