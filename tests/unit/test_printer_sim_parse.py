"""The virtual printer's receive side: command framing, real-time status bytes, faults, paper."""

from __future__ import annotations

import random
import time

import pytest
from escpos.printer import Dummy

from firmware_sim.printer import EscPosParser, VirtualPrinter, parse

ESC, GS, DLE, EOT = b"\x1b", b"\x1d", b"\x10", b"\x04"
CUT = GS + b"V\x00"


def dle_eot(n: int) -> bytes:
    return DLE + EOT + bytes([n])


def statuses(printer: VirtualPrinter) -> list[int]:
    return list(printer.feed(b"".join(dle_eot(n) for n in (1, 2, 3, 4))))


def receipt_job() -> bytes:
    job = Dummy(profile="TM-T88V")
    job.set(bold=True, double_width=True, double_height=True)
    job.text("Итого: 179,80 ₽\n")
    job.qr("PLQ1.c42.1700000000.ABCDEF", native=True)
    job.barcode("4601234567893", "EAN13")
    job.barcode("{BCOUPON-7", "CODE128", function_type="B")
    job.cut()
    return bytes(job.output)


def names(data: bytes) -> list[str]:
    return [command.name for command in parse(data)]


def test_python_escpos_job_parses_the_same_whatever_the_split() -> None:
    data = receipt_job()
    whole = parse(data)
    parser = EscPosParser()
    byte_by_byte = [command for i in range(len(data)) for command in parser.feed(data[i : i + 1])]
    # Text runs split with the bytes; everything else must be identical.
    assert [c for c in byte_by_byte if c.name != "TEXT"] == [c for c in whole if c.name != "TEXT"]
    assert b"".join(c.data for c in byte_by_byte if c.name == "TEXT") == b"".join(
        c.data for c in whole if c.name == "TEXT"
    )
    assert parser.pending == 0
    assert "TRUNCATED" not in names(data)


def test_every_command_form_is_framed_by_its_own_length() -> None:
    data = (
        ESC + b"@" + ESC + b"!\x38" + ESC + b"E\x01" + ESC + b"-\x02" + ESC + b"a\x01"
        + ESC + b"d\x02" + ESC + b"J\x10" + ESC + b"2" + ESC + b"3\x20" + ESC + b"t\x11"
        + ESC + b"p\x00\x19\xfa" + GS + b"!\x11" + GS + b"B\x01" + GS + b"h\x50"
        + GS + b"w\x02" + GS + b"H\x02" + GS + b"k\x02" + b"460123456789\x00"
        + GS + b"k\x49\x05{B123" + GS + b"(k\x03\x001C\x04" + GS + b"v0\x00\x01\x00\x02\x00\xff\x81"
        + GS + b"(L\x0b\x000p0\x01\x011\x08\x00\x01\x00\xaa" + GS + b"V\x41\x03"
        + GS + b"V\x01" + GS + b"V\x30" + GS + b"V\x42\x00" + GS + b"V\x61\x10"
        + GS + b"V\x62\x10" + GS + b"V\x67\x10" + GS + b"V\x68\x10" + b"\t\r\nA"
    )  # fmt: skip
    assert names(data) == [
        "ESC @", "ESC !", "ESC E", "ESC -", "ESC a", "ESC d", "ESC J", "ESC 2", "ESC 3",
        "ESC t", "ESC p", "GS !", "GS B", "GS h", "GS w", "GS H", "GS k", "GS k", "GS ( k",
        "GS v 0", "GS ( L", "GS V", "GS V", "GS V", "GS V", "GS V", "GS V", "GS V", "GS V",
        "HT", "CR", "LF", "TEXT",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("form", "cut", "fed_dots"),
    [(b"\x00", "full", 0), (b"0", "full", 0), (b"\x01", "partial", 0), (b"1", "partial", 0),
     (b"A\x30", "full", 48), (b"B\x30", "partial", 48), (b"a\x30", "full", 48),
     (b"b\x30", "partial", 48), (b"g\x30", "full", 48), (b"h\x30", "partial", 48)],
)  # fmt: skip
def test_every_gs_v_form_ends_the_receipt_with_its_cut(
    form: bytes, cut: str, fed_dots: int
) -> None:
    """Function A cuts where the paper is; B, C and D first feed n motion units (1/180 inch)."""
    plain = VirtualPrinter()
    plain.feed(b"x\n" + CUT)
    printer = VirtualPrinter()
    assert printer.feed(b"x\n" + GS + b"V" + form + b"after\n" + CUT) == b""
    first, second = printer.receipts
    assert (first.cut, first.lines, second.lines) == (cut, ["x"], ["after"])
    assert first.image.height - plain.receipts[0].image.height == fed_dots


def test_unknown_commands_are_skipped_and_the_text_after_them_prints() -> None:
    printer = VirtualPrinter()
    printer.feed(ESC + b"\xfe" + b"after unknown\n" + GS + b"\xfe" + b"and another\n" + CUT)
    assert printer.unknown_commands == 2
    assert printer.receipts[0].lines == ["after unknown", "and another"]


def test_a_command_cut_off_at_the_end_of_the_stream_is_not_fatal() -> None:
    assert names(b"ok\n" + GS + b"v0\x00\x10\x00\x10\x00\xff\xff")[-1] == "TRUNCATED"
    printer = VirtualPrinter()
    stream = printer.open_stream()
    stream.feed(b"first\n" + GS + b"(k\x20\x00")
    stream.close()
    printer.feed(b"second\n" + CUT)
    assert printer.receipts[0].lines == ["first", "second"]


@pytest.mark.parametrize(
    "refused",
    [GS + b"k\x06" + b"0230025315754645\x00",  # CODABAR without its A-D start/stop characters
     GS + b"k\x47\x00",  # CODABAR with no data at all
     GS + b"k\x02" + b"46012345ABCD\x00",  # EAN-13 with letters
     GS + b"k\x49\x05" + b"PLQ1-",  # CODE128 without the {A / {B / {C code set
     GS + b"(L\x0b\x000p0\x01\x011\xff\x00\xff\x00\xaa"],  # 255 x 255 graphic, 1 byte of dots
    ids=["codabar-no-start", "codabar-empty", "ean13-letters", "code128-no-set", "short-graphic"],
)  # fmt: skip
def test_data_the_printer_refuses_prints_nothing_and_the_job_goes_on(refused: bytes) -> None:
    printer = VirtualPrinter()
    printer.feed(b"before\n" + refused + GS + b"(L\x02\x0002" + b"after\n" + CUT)
    (receipt,) = printer.receipts
    assert receipt.lines == ["before", "after"]
    assert receipt.barcodes == [] and receipt.images == 0
    assert printer.failed_commands == 0


def test_random_bytes_never_stop_the_printer() -> None:
    """Line noise, half commands and nonsense parameters are skipped; the next job prints."""
    heads = [ESC, GS, DLE, b"\x1c", GS + b"(k", GS + b"(k\x03\x001", GS + b"(L", GS + b"k",
             GS + b"k\x49", GS + b"v0", GS + b"V", ESC + b"*", ESC + b"t", GS + b"!", ESC + b"D",
             GS + b"(L\x0b\x000p0", b"\x1cq", ESC + b"&"]  # fmt: skip
    for seed in range(300):
        rng = random.Random(seed)
        noise = b"".join(rng.choice(heads) + rng.randbytes(rng.randrange(12)) for _ in range(30))
        printer = VirtualPrinter(paper_mm=None)
        stream = printer.open_stream()
        stream.feed(noise)
        stream.close()  # the connection ends, perhaps inside a command
        printer.feed(ESC + b"@still printing\n" + CUT)
        assert printer.receipts[-1].lines[-1] == "still printing", seed
        assert printer.failed_commands == 0, seed


def test_healthy_printer_answers_0x12_to_each_status_request() -> None:
    assert statuses(VirtualPrinter()) == [0x12, 0x12, 0x12, 0x12]


def test_status_is_answered_at_once_in_the_middle_of_a_job() -> None:
    printer = VirtualPrinter()
    answer = printer.feed(b"line one\n" + dle_eot(4) + b"line two\n" + CUT)
    assert answer == b"\x12"
    assert printer.receipts[0].lines == ["line one", "line two"]


def test_status_bytes_in_image_data_are_only_answered_when_asked_for() -> None:
    image = GS + b"v0\x00\x03\x00\x01\x00" + dle_eot(1)  # 3 bytes of dots that look like DLE EOT 1
    assert VirtualPrinter().feed(image) == b""
    assert VirtualPrinter(realtime_in_data=True).feed(image) == b"\x12"


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("cover_open", [0x1A, 0x16, 0x12, 0x12]),
        ("paper_near_end", [0x12, 0x12, 0x12, 0x1E]),
        ("paper_end", [0x1A, 0x32, 0x12, 0x7E]),
        ("offline", [0x1A, 0x12, 0x12, 0x12]),
        ("recoverable", [0x1A, 0x52, 0x16, 0x12]),
        ("autocutter", [0x1A, 0x52, 0x1A, 0x12]),
        ("unrecoverable", [0x1A, 0x52, 0x32, 0x12]),
        ("auto_recoverable", [0x1A, 0x52, 0x52, 0x12]),
        ("drawer_pin_high", [0x16, 0x12, 0x12, 0x12]),
    ],
)
def test_each_fault_sets_the_epson_status_bits(fault: str, expected: list[int]) -> None:
    printer = VirtualPrinter(paper_mm=5_000, near_end_mm=1_000)
    if fault == "cover_open":
        printer.set_cover_open(True)
    elif fault == "paper_near_end":
        printer.set_paper_remaining(500)
    elif fault == "paper_end":
        printer.set_paper_remaining(0)
    elif fault == "offline":
        printer.set_offline(True)
    elif fault == "drawer_pin_high":
        printer.set_drawer_pin_high(True)
    else:
        printer.set_error(fault)
    assert statuses(printer) == expected


def test_ordinary_status_queries_are_answered_in_order() -> None:
    printer = VirtualPrinter(paper_mm=5_000, near_end_mm=1_000)
    assert printer.feed(GS + b"r\x01") == b"\x00"
    printer.set_paper_remaining(10)
    assert printer.feed(GS + b"r\x01") == b"\x03"
    assert printer.feed(GS + b"I\x43") == b"_TM-T88V\x00"


def test_paper_runs_out_mid_receipt_and_the_rest_prints_on_the_new_roll() -> None:
    printer = VirtualPrinter(paper_mm=40, near_end_mm=20)
    lines = b"".join(f"Строка {i}\n".encode("cp866") for i in range(20))
    assert printer.feed(ESC + b"t\x11" + lines + CUT + GS + b"r\x01") == b""  # not done yet
    assert printer.feed(b"second\n" + CUT) == b""
    torn = printer.receipts[0]
    assert not torn.complete and torn.cut == "none"
    assert 0 < len(torn.lines) < 20 and torn.lines[0] == "Строка 0"
    assert printer.paper_out and printer.status(4) == 0x7E and printer.status(2) == 0x32
    assert printer.receipt_count == 1 and printer.dropped_bytes == 0
    printer.refill(1_000)
    rest, second = printer.receipts[1:]
    # The line the paper ran out in (its top on the torn piece) prints again in full on the new
    # roll, so between them the two pieces hold every line once.
    assert torn.lines + rest.lines == [f"Строка {i}" for i in range(20)]
    assert rest.complete and rest.cut == "full" and second.lines == ["second"]
    # The GS r 1 placed after the first receipt is answered once that receipt is out.
    assert printer.feed(b"") == b"\x00"


def test_gs_r_is_answered_only_after_the_data_before_it_is_processed() -> None:
    printer = VirtualPrinter()
    stream = printer.open_stream()
    printer.set_cover_open(True)
    assert stream.feed(b"held\n" + CUT + GS + b"r\x01" + dle_eot(2)) == b"\x16"  # DLE EOT only
    assert printer.receipts == []
    printer.set_cover_open(False)
    assert printer.receipts[0].lines == ["held"]
    assert stream.take_answers() == b"\x00"  # the GS r answer, after the receipt


def test_with_the_cover_open_the_job_waits_and_prints_when_it_closes() -> None:
    printer = VirtualPrinter()
    printer.set_cover_open(True)
    printer.feed(b"held\n" + CUT)
    assert printer.receipts == []
    printer.set_cover_open(False)
    assert printer.receipts[0].lines == ["held"]


def test_an_offline_printer_answers_and_prints_when_back_online() -> None:
    printer = VirtualPrinter()
    printer.set_offline(True)
    assert printer.feed(b"kept\n" + dle_eot(1) + CUT) == b"\x1a"  # answers: offline
    assert printer.receipts == [] and printer.buffered_commands == 3  # text, LF, cut
    assert not printer.refuses_connections
    printer.set_offline(False)
    assert printer.receipts[0].lines == ["kept"]


def test_power_off_loses_the_buffer_and_what_is_sent_while_off() -> None:
    printer = VirtualPrinter()
    printer.set_cover_open(True)
    printer.feed(b"in the buffer\n" + CUT)
    printer.set_power(False)
    assert printer.refuses_connections
    printer.feed(b"while off\n" + CUT)
    printer.set_power(True)
    assert printer.receipts == [] and printer.lost_cuts == 2
    assert printer.dropped_bytes == 2 * len(CUT) + len(b"in the buffer\n") + len(b"while off\n")
    assert statuses(printer) == [0x12, 0x12, 0x12, 0x12]


def test_feed_button_sets_its_bit_and_holds_printing() -> None:
    printer = VirtualPrinter()
    printer.press_feed(True)
    assert statuses(printer) == [0x1A, 0x1A, 0x12, 0x12]
    printer.feed(b"after feed\n" + CUT)
    assert printer.receipts == []
    printer.press_feed(False)
    assert printer.receipts[0].lines == ["after feed"]


@pytest.mark.parametrize(("n", "printed"), [(1, ["one", "two"]), (2, [])])
def test_an_autocutter_jam_waits_for_dle_enq_once_cleared(n: int, printed: list[str]) -> None:
    printer = VirtualPrinter()
    printer.arm_fault("autocutter")
    printer.feed(b"one\ntwo\n" + CUT + GS + b"r\x01")
    assert printer.receipts == [] and printer.error == "autocutter"
    assert printer.feed(DLE + b"\x05\x01") == b""  # cause not removed: DLE ENQ does nothing
    assert printer.error == "autocutter"
    printer.remove_error_cause()
    assert statuses(printer) == [0x3A, 0x52, 0x1A, 0x12]  # n=1 bit 5: waiting for recovery
    answer = printer.feed(DLE + b"\x05" + bytes([n]))
    assert printer.error is None and statuses(printer)[:3] == [0x12, 0x12, 0x12]
    if printed:  # DLE ENQ 1: goes on from where it stopped, and the cut is made
        assert printer.receipts[0].lines == printed and printer.receipts[0].cut == "full"
        assert answer == b"\x00"  # and the GS r after the job is answered
    else:  # DLE ENQ 2: the buffers are cleared; what was on paper stays uncut in the printer
        assert printer.receipts == [] and printer.lost_cuts == 1


def test_a_fault_armed_for_the_next_receipt_happens_part_way_through_it() -> None:
    printer = VirtualPrinter()
    printer.arm_fault("cover_open", after_lines=2)
    printer.feed(b"".join(f"line {i}\n".encode() for i in range(5)) + CUT)
    assert printer.cover_open and printer.receipts == []
    printer.set_cover_open(False)
    assert printer.receipts[0].lines == [f"line {i}" for i in range(5)]


def test_automatic_status_back_reports_each_change_it_was_asked_for() -> None:
    printer = VirtualPrinter(paper_mm=5_000, near_end_mm=1_000)
    stream = printer.open_stream()
    assert stream.feed(GS + b"a\xff") == b"\x10\x00\x00\x00"  # enabled: the status at once
    printer.set_cover_open(True)
    printer.set_paper_remaining(500)
    printer.set_cover_open(False)
    assert stream.take_answers() == (
        b"\x38\x00\x00\x00" + b"\x38\x00\x03\x00" + b"\x10\x00\x03\x00"
    )
    stream.feed(GS + b"a\x00")
    printer.set_cover_open(True)
    assert stream.take_answers() == b""


def test_drawer_kick_is_counted() -> None:
    printer = VirtualPrinter()
    job = Dummy(profile="TM-T88V")
    job.cashdraw(2)
    printer.feed(bytes(job.output))
    assert printer.drawer_kicks == 1


def test_print_speed_makes_a_long_receipt_take_real_time() -> None:
    printer = VirtualPrinter(print_speed_mm_s=500)
    started = time.monotonic()
    printer.feed(b"\n" * 12 + b"end\n" + CUT)  # 13 lines of 1/6 inch = 55 mm
    elapsed = time.monotonic() - started
    assert printer.receipts[0].length_mm == pytest.approx(55, abs=1)
    assert 0.1 <= elapsed < 3.0
