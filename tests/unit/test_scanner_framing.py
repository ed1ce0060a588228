"""Scanner framing: the exact bytes the virtual scanner sends; the driver's parser reads them."""

from __future__ import annotations

import pytest

from drivers.scanner import FrameSplitter, ScannerFraming, card_number_from_tracks, interpret_frame
from firmware_sim.scanner import Framing, frame_scan, lrc, swipe_text, track1, track2

EAN = "4601234567893"
PAN = "4000001234562"


@pytest.mark.parametrize(
    ("framing", "symbology", "wire"),
    [
        (Framing.with_suffix("none"), "ean13", b"4601234567893"),
        (Framing.with_suffix("cr"), "ean13", b"4601234567893\r"),
        (Framing.with_suffix("lf"), "ean13", b"4601234567893\n"),
        (Framing.with_suffix("crlf"), "ean13", b"4601234567893\r\n"),
        (Framing.with_suffix("tab"), "ean13", b"4601234567893\t"),
        (Framing(prefix=b"#", suffix=b"\r"), "ean13", b"#4601234567893\r"),
        (Framing(suffix=b"\r", aim=True), "ean13", b"]E04601234567893\r"),
        (Framing(suffix=b"\r", aim=True), "qr", b"]Q14601234567893\r"),
        (Framing(suffix=b"", stx_etx=True), "ean13", b"\x024601234567893\x03"),
    ],
)
def test_frame_scan_bytes_are_exact(framing: Framing, symbology: str, wire: bytes) -> None:
    assert frame_scan(EAN, framing, symbology) == wire


def test_stx_etx_lrc_is_the_xor_of_data_and_etx() -> None:
    wire = frame_scan("AB", Framing(suffix=b"", stx_etx=True, lrc=True))
    assert wire == b"\x02AB\x03" + bytes([0x41 ^ 0x42 ^ 0x03])
    assert lrc(b"AB\x03") == 0x41 ^ 0x42 ^ 0x03


def test_magnetic_tracks_follow_iso_7813() -> None:
    assert track1(PAN, "Ivanov/Ivan", "2912") == f"%B{PAN}^IVANOV/IVAN^2912101?"
    assert track2(PAN, "2912") == f";{PAN}=2912101?"
    both = swipe_text(PAN, "IVANOV/IVAN", "2912", tracks="both")
    assert both.startswith(f"%B{PAN}^") and f"?;{PAN}=2912" in both and both.endswith("?")


def test_a_card_reader_sends_tracks_without_an_aim_identifier() -> None:
    wire = frame_scan(track2(PAN, "2912"), Framing(suffix=b"\r", aim=True), "msr")
    assert wire.startswith(b";")


def _parse(framing: ScannerFraming, chunks: list[tuple[bytes, float]]) -> list[object]:
    splitter = FrameSplitter(framing)
    out: list[object] = []
    for data, now in chunks:
        for frame in splitter.feed(data, now):
            out.append(
                frame.dropped
                if frame.dropped is not None
                else interpret_frame(frame.content, framing)
            )
    for frame in splitter.poll(1e9):
        out.append(frame.dropped or interpret_frame(frame.content, framing))
    return out


@pytest.mark.parametrize(
    ("sim", "driver"),
    [
        (Framing.with_suffix("cr"), ScannerFraming(suffix="cr")),
        (Framing.with_suffix("lf"), ScannerFraming(suffix="lf")),
        (Framing.with_suffix("crlf"), ScannerFraming(suffix="crlf")),
        (Framing.with_suffix("tab"), ScannerFraming(suffix="tab")),
        (Framing.with_suffix("crlf"), ScannerFraming(suffix="auto")),
        (Framing.with_suffix("none"), ScannerFraming(suffix="none")),
        (Framing(prefix=b"#", suffix=b"\r"), ScannerFraming(prefix=b"#")),
        (Framing(suffix=b"\r\n", aim=True), ScannerFraming()),
        (Framing(suffix=b"", stx_etx=True), ScannerFraming(stx_etx=True)),
        (
            Framing(suffix=b"\r", stx_etx=True, lrc=True, aim=True),
            ScannerFraming(stx_etx=True, lrc=True),
        ),
    ],
)
def test_driver_parser_recovers_each_scan(sim: Framing, driver: ScannerFraming) -> None:
    wire = frame_scan(EAN, sim, "ean13")
    (decoded,) = _parse(driver, [(wire, 0.0)])
    assert decoded.payload == EAN  # type: ignore[attr-defined]
    assert decoded.symbology == ("ean13" if sim.aim else "unknown")  # type: ignore[attr-defined]


def test_back_to_back_frames_are_two_scans() -> None:
    framing = Framing.with_suffix("crlf")
    wire = frame_scan("111", framing) + frame_scan("222", framing)
    results = _parse(ScannerFraming(), [(wire, 0.0)])
    assert [r.payload for r in results] == ["111", "222"]  # type: ignore[attr-defined]


def test_a_scan_split_across_two_reads_half_a_second_apart_is_one_scan() -> None:
    wire = frame_scan(EAN, Framing.with_suffix("crlf"))
    splitter = FrameSplitter(ScannerFraming(suffix="crlf"))
    assert splitter.feed(wire[:5], now=0.0) == []
    assert splitter.poll(now=0.5) == []  # the terminator frames the scan, not the pause
    (frame,) = splitter.feed(wire[5:], now=0.5)
    assert frame.dropped is None and frame.content == EAN.encode()


def test_gs1_data_with_group_separators_is_a_scan_not_garbage() -> None:
    gs1 = b"]C1010460123456789017\x1d10ABC123\x1d21SERIAL"
    decoded = interpret_frame(gs1, ScannerFraming())
    assert not isinstance(decoded, str)
    assert decoded.symbology == "code128" and decoded.payload == gs1[3:].decode()
    assert interpret_frame(b"12\x0034", ScannerFraming()) == "garbled"  # other controls are not


def test_an_unfinished_frame_is_dropped_as_truncated_after_silence() -> None:
    framing = ScannerFraming(suffix="crlf", truncated_after_s=0.2)
    partial = frame_scan(EAN, Framing.with_suffix("crlf"))[:6]
    splitter = FrameSplitter(framing)
    assert splitter.feed(partial, now=0.0) == []
    assert splitter.poll(now=0.1) == []
    (frame,) = splitter.poll(now=0.3)
    assert frame.dropped == "truncated"
    # The line is clean again afterwards.
    (good,) = splitter.feed(b"123\r\n", now=1.0)
    assert good.dropped is None and good.content == b"123"


def test_stx_without_etx_then_a_new_frame_drops_the_first_as_truncated() -> None:
    results = _parse(ScannerFraming(stx_etx=True), [(b"\x02123\x02456\x03", 0.0)])
    assert results[0] == "truncated"
    assert results[1].payload == "456"  # type: ignore[attr-defined]


def test_bad_lrc_is_dropped() -> None:
    wire = bytearray(frame_scan(EAN, Framing(suffix=b"", stx_etx=True, lrc=True)))
    wire[3] = ord("9") if wire[3] != ord("9") else ord("8")  # one digit misread, LRC now wrong
    assert _parse(ScannerFraming(stx_etx=True, lrc=True), [(bytes(wire), 0.0)]) == ["bad_lrc"]


def test_line_noise_and_missing_prefix_are_garbage() -> None:
    framing = ScannerFraming(prefix=b"#")
    assert _parse(framing, [(b"#46\xff\x0012\r", 0.0)]) == ["garbled"]
    assert _parse(framing, [(b"4601234567893\r", 0.0)]) == ["missing_prefix"]


@pytest.mark.parametrize("tracks", ["1", "2", "both"])
def test_swipes_are_reduced_to_the_card_number(tracks: str) -> None:
    text = swipe_text(PAN, "IVANOV/IVAN", "2912", tracks=tracks)  # type: ignore[arg-type]
    (decoded,) = _parse(ScannerFraming(), [(text.encode() + b"\r", 0.0)])
    assert decoded.payload == PAN  # type: ignore[attr-defined]
    assert decoded.symbology == "msr"  # type: ignore[attr-defined]
    assert decoded.raw == text  # type: ignore[attr-defined]


def test_garbled_or_inconsistent_tracks_are_dropped() -> None:
    assert card_number_from_tracks(f"%B{PAN}^IVANOV/IVAN^2912101") is None  # no end sentinel
    assert (
        card_number_from_tracks(track1(PAN, "A", "2912") + track2("4111111111111111", "2912"))
        is None
    )
    assert _parse(ScannerFraming(), [(b";4000001234\r", 0.0)]) == ["garbled_track"]
