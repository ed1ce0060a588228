"""What the virtual printer puts on paper: widths, code pages, styles, codes a decoder reads."""

from __future__ import annotations

import io

import numpy as np
import pytest
import zxingcpp
from escpos.printer import Dummy
from PIL import Image

from firmware_sim.printer import Receipt, VirtualPrinter, load_profile

ESC, GS = b"\x1b", b"\x1d"
CUT = GS + b"V\x00"


def print_one(data: bytes, profile: str = "TM-T88V") -> Receipt:
    printer = VirtualPrinter(profile)
    printer.feed(data + CUT)
    assert len(printer.receipts) == 1
    return printer.receipts[0]


def ink(image: Image.Image) -> np.ndarray:
    """True where the head burned a dot."""
    return np.asarray(image.convert("L")) < 128


def inked_columns(image: Image.Image) -> tuple[int, int]:
    columns = np.flatnonzero(ink(image).any(axis=0))
    return int(columns[0]), int(columns[-1])


def decoded(receipt: Receipt) -> set[tuple[str, str]]:
    return {
        (result.format.name, result.text)
        for result in zxingcpp.read_barcodes(receipt.image.convert("L"))
    }


@pytest.mark.parametrize(
    ("profile", "width_mm", "dots"),
    [("TM-T88V", None, 512), ("NT-80-V-UL", None, 576), ("POS-5890", None, 384),
     ("TM-T20II", 58, 384), ("TM-T20II", 80, 576)],
)  # fmt: skip
def test_paper_is_as_many_dots_wide_as_the_head(
    profile: str, width_mm: float | None, dots: int
) -> None:
    assert load_profile(profile, paper_width_mm=width_mm).dots_per_line == dots
    printer = VirtualPrinter(profile, paper_width_mm=width_mm)
    printer.feed(b"x\n" + CUT)
    assert printer.receipts[0].image.width == dots


@pytest.mark.parametrize(
    ("slot", "encoding", "text"),
    [(0, "cp437", "Ærø Ñandú"), (16, "cp1252", "Crème brûlée €"),
     (17, "cp866", "Съешь ещё этих булок"), (46, "cp1251", "Съешь ещё этих булок")],
)  # fmt: skip
def test_esc_t_selects_the_code_page_at_the_epson_slot(slot: int, encoding: str, text: str) -> None:
    data = text.encode(encoding, errors="replace")
    receipt = print_one(ESC + b"t" + bytes([slot]) + data + b"\n")
    assert receipt.lines == [data.decode(encoding)]


def test_the_same_russian_text_uses_different_slots_on_different_profiles() -> None:
    for profile in ("TM-T88V", "NT-80-V-UL"):
        job = Dummy(profile=profile)
        job.text("Привет, покупатель!\n")
        assert print_one(bytes(job.output), profile).lines == ["Привет, покупатель!"]
    # NT-80-V-UL keeps CP866 at slot 59, where an Epson has nothing useful.
    job = Dummy(profile="NT-80-V-UL")
    job.text("Привет\n")
    assert b"\x1bt;" in job.output
    assert print_one(bytes(job.output), "TM-T88V").lines != ["Привет"]


def test_lines_wrap_at_the_width_of_the_head() -> None:
    receipt = print_one(b"1234567890" * 5 + b"\n")  # 50 characters of Font A on 42 columns
    assert receipt.lines == ["1234567890" * 4 + "12", "34567890"]


def test_double_width_and_height_double_the_glyph_box() -> None:
    normal = ink(print_one(b"W\n").image)
    double = ink(print_one(GS + b"!\x11W\n").image)
    rows, columns = np.flatnonzero(normal.any(axis=1)), np.flatnonzero(normal.any(axis=0))
    rows2, columns2 = np.flatnonzero(double.any(axis=1)), np.flatnonzero(double.any(axis=0))
    assert np.ptp(rows2) + 1 == 2 * (np.ptp(rows) + 1)
    assert np.ptp(columns2) + 1 == 2 * (np.ptp(columns) + 1)


def test_bold_burns_more_dots_and_font_b_is_narrower() -> None:
    regular = ink(print_one(b"Bold\n").image).sum()
    bold = ink(print_one(ESC + b"E\x01Bold\n").image).sum()
    assert bold > regular * 1.2
    _, right_a = inked_columns(print_one(b"MMMMMMMMMM\n").image)
    _, right_b = inked_columns(print_one(ESC + b"M\x01MMMMMMMMMM\n").image)
    assert right_b < right_a * 0.8


def test_underline_draws_a_line_under_the_whole_run() -> None:
    image = ink(print_one(ESC + b"-\x01" + b"ab cd\n").image)
    full_rows = [row for row in range(image.shape[0]) if image[row, : 5 * 12].all()]
    assert full_rows, "no row is inked across the five underlined cells"


def test_alignment_moves_the_line() -> None:
    left, _ = inked_columns(print_one(b"Hi\n").image)
    center, _ = inked_columns(print_one(ESC + b"a\x01Hi\n").image)
    _, right = inked_columns(print_one(ESC + b"a\x02Hi\n").image)
    assert left < 12 and 240 <= center <= 256 and right >= 500


def test_text_output_pads_centred_lines_like_the_paper() -> None:
    receipt = print_one(ESC + b"t\x11" + ESC + b"a\x01" + "ИТОГ".encode("cp866") + b"\n")
    assert receipt.lines == [" " * 19 + "ИТОГ"]  # (512 - 4 * 12) / 2 dots = 19 cells
    right = print_one(ESC + b"t\x11" + ESC + b"a\x02" + "справа".encode("cp866") + b"\n")
    assert right.lines == [" " * 36 + "справа"]  # ends in column 42, the last of the line


def test_native_qr_codes_decode_at_every_module_size_and_error_level() -> None:
    for size, level in ((2, 0), (3, 1), (6, 3)):
        job = Dummy(profile="TM-T88V")
        job.qr("PLQ1.c42.1700000000.ABCDEF", native=True, size=size, ec=level)
        receipt = print_one(bytes(job.output))
        assert receipt.qr_payloads == ["PLQ1.c42.1700000000.ABCDEF"]
        assert decoded(receipt) == {("QRCode", "PLQ1.c42.1700000000.ABCDEF")}


@pytest.mark.parametrize(
    ("code", "symbology", "function", "printed", "read"),
    [("4601234567893", "EAN13", "A", "4601234567893", ("EAN13", "4601234567893")),
     ("460123456789", "EAN13", "B", "4601234567893", ("EAN13", "4601234567893")),
     ("9638507", "EAN8", "A", "96385074", ("EAN8", "96385074")),
     ("96385074", "EAN8", "B", "96385074", ("EAN8", "96385074")),
     ("036000291452", "UPC-A", "A", "036000291452", ("EAN13", "0036000291452")),
     # zxing-cpp reads UPC-A as its EAN-13 form, with a leading 0.
     ("03600029145", "UPC-A", "B", "036000291452", ("EAN13", "0036000291452")),
     ("COUPON 42", "CODE39", "A", "COUPON 42", ("Code39", "COUPON 42")),
     ("PLQ-7", "CODE39", "B", "PLQ-7", ("Code39", "PLQ-7")),
     ("{BPLQ1-x7", "CODE128", "B", "PLQ1-x7", ("Code128", "PLQ1-x7")),
     ("{AABC{B12ab", "CODE128", "B", "ABC12ab", ("Code128", "ABC12ab"))],
)  # fmt: skip
def test_barcodes_decode_to_what_the_printer_reports(
    code: str, symbology: str, function: str, printed: str, read: tuple[str, str]
) -> None:
    job = Dummy(profile="TM-T88V")
    job.barcode(code, symbology, function_type=function, width=2)
    receipt = print_one(bytes(job.output))
    assert [(b.symbology, b.data) for b in receipt.barcodes] == [(symbology, printed)]
    assert decoded(receipt) == {read}


@pytest.mark.parametrize(
    ("command", "printed", "read"),
    [(GS + b"k\x01" + b"0425261\x00", ("UPC-E", "04252614"), ("UPCE", "0042100005264")),
     (GS + b"kB\x06" + b"123456", ("UPC-E", "01234565"), ("UPCE", "0012345000065")),
     # zxing-cpp reads UPC-E as the GTIN of the UPC-A it stands for.
     (GS + b"kH\x0d" + b"CODE93 TEST-1", ("CODE93", "CODE93 TEST-1"), ("Code93", "CODE93 TEST-1")),
     (GS + b"kH\x06" + b"Abc123", ("CODE93", "Abc123"), ("Code93", "Abc123"))],
)  # fmt: skip
def test_upc_e_and_code93_print_and_read_back(
    command: bytes, printed: tuple[str, str], read: tuple[str, str]
) -> None:
    receipt = print_one(GS + b"w\x02" + command)
    assert [(b.symbology, b.data) for b in receipt.barcodes] == [printed]
    assert decoded(receipt) == {read}


def test_upc_e_with_a_wrong_check_digit_prints_nothing() -> None:
    receipt = print_one(b"before\n" + GS + b"k\x01" + b"04252615\x00" + b"after\n")
    assert receipt.barcodes == [] and receipt.lines == ["before", "after"]


def test_code128_set_c_packs_two_digits_per_byte() -> None:
    data = b"{C" + bytes([46, 1, 23, 45])
    receipt = print_one(GS + b"k\x49" + bytes([len(data)]) + data)
    assert decoded(receipt) == {("Code128", "46012345")}


def test_barcode_too_wide_for_the_paper_is_not_printed() -> None:
    receipt = print_one(b"before\n" + GS + b"w\x06" + GS + b"k\x49\x22{B" + b"X" * 32)
    assert receipt.barcodes == [] and receipt.lines == ["before"]


def test_raster_images_land_dot_for_dot() -> None:
    # GS v 0: 2 bytes wide, 2 rows: a 16-dot bar, then a dot at each end.
    raster = GS + b"v0\x00\x02\x00\x02\x00" + b"\xff\xff\x80\x01"
    # GS ( L: an 8 x 1 graphic printed through the graphics buffer at double width.
    graphic = GS + b"(L\x0b\x000p0\x02\x011\x08\x00\x01\x00\xf0" + GS + b"(L\x02\x0002"
    receipt = print_one(raster + graphic)
    dots = ink(receipt.image)
    assert dots[0, :16].all() and not dots[0, 16:].any()
    assert dots[1, 0] and dots[1, 15] and not dots[1, 1:15].any()
    assert dots[2, :8].all() and not dots[2, 8:].any()
    assert receipt.images == 2


def test_python_escpos_images_print_in_every_implementation() -> None:
    picture = Image.new("1", (64, 48), 1)
    picture.paste(0, (8, 8, 56, 40))
    for impl in ("bitImageRaster", "graphics", "bitImageColumn"):
        job = Dummy(profile="TM-T88V")
        job.image(picture, impl=impl)
        dots = ink(print_one(bytes(job.output)).image)
        rows, columns = np.flatnonzero(dots.any(axis=1)), np.flatnonzero(dots.any(axis=0))
        assert (columns[0], columns[-1]) == (8, 55), impl
        assert np.ptp(rows) + 1 == 32, impl


def test_receipt_png_is_a_one_bit_png_of_the_paper() -> None:
    receipt = print_one(b"PNG\n")
    image = Image.open(io.BytesIO(receipt.png))
    assert image.format == "PNG" and image.mode == "1" and image.size == receipt.image.size
    assert receipt.text == "PNG" and receipt.cut == "full" and receipt.complete
