"""Scanner prefix/suffix programming: the driver strips what the scanner adds around each scan."""

from __future__ import annotations

import pytest

from drivers.manager import scanner_framing
from drivers.scanner import FrameSplitter, ScannerFraming, interpret_frame
from firmware_sim.scanner import Framing, frame_scan
from pos_loyalty.settings import ScannerConfig

EAN = "4601234567893"


def parse(framing: ScannerFraming, wire: bytes) -> list[object]:
    splitter = FrameSplitter(framing)
    frames = splitter.feed(wire, now=0.0) + splitter.poll(now=1e9)
    return [f.dropped or interpret_frame(f.content, framing) for f in frames]


@pytest.mark.parametrize(
    ("config", "sim"),
    [
        (
            ScannerConfig(port="/dev/ttyACM0", framing="crlf", prefix="L1:", suffix="#"),
            Framing(prefix=b"L1:", suffix=b"#\r\n"),
        ),
        (
            ScannerConfig(port="/dev/ttyACM0", framing="tab", suffix="!END"),
            Framing(suffix=b"!END\t", aim=True),
        ),
        (
            ScannerConfig(port="/dev/ttyACM0", framing="stx-etx-lrc", prefix="@", suffix="\r"),
            Framing(prefix=b"@", suffix=b"\r", stx_etx=True, lrc=True),
        ),
    ],
)
def test_configured_affixes_are_stripped(config: ScannerConfig, sim: Framing) -> None:
    framing = scanner_framing(config)
    wire = frame_scan(EAN, sim, "ean13") * 2
    results = parse(framing, wire)
    assert [r.payload for r in results] == [EAN, EAN]  # type: ignore[attr-defined]


def test_a_scan_without_its_affixes_is_dropped_with_the_reason() -> None:
    framing = scanner_framing(
        ScannerConfig(port="/dev/ttyACM0", framing="cr", prefix="L1:", suffix="#")
    )
    assert parse(framing, b"4601234567893#\r") == ["missing_prefix"]
    assert parse(framing, b"L1:4601234567893\r") == ["missing_suffix"]
    assert parse(framing, b"L1:#\r") == ["garbled"]
