"""A laid-out receipt as the ESC/POS bytes a printer of a given model expects.

python-escpos builds the commands with the printer's capability profile: its magic encoding picks
the code page that has Cyrillic at the slot this model uses (CP866 is ESC t 17 on Epson, 59 on
many 58 mm Chinese models), QR codes are native (GS ( k) where the profile says the printer draws
them and a raster image (GS v 0) otherwise, and the cut is the one the model has.
"""

from __future__ import annotations

import codecs
from functools import lru_cache
from typing import Any

from escpos.capabilities import get_profile
from escpos.constants import QR_ECLEVEL_M
from escpos.escpos import Escpos
from escpos.magicencode import Encoder
from escpos.printer import Dummy

from pos_loyalty.receipts.document import ReceiptDocument
from pos_loyalty.receipts.layout import (
    Cut,
    Feed,
    LaidOutReceipt,
    QrBlock,
    TextLine,
    layout_receipt,
)
from pos_loyalty.receipts.media import UnknownPrinterProfile, print_width
from pos_loyalty.receipts.media import profile_data as _profile_data

__all__ = ["UnknownPrinterProfile", "document_to_escpos", "receipt_columns", "render_escpos"]

DEFAULT_PROFILE = "TM-T88V"
# Dots per QR module: a 25-module code (our PLC1 payloads at level M) is 150 dots wide on 58 mm
# paper and 200 on 80 mm, comfortably inside the paper and large enough for a phone or till camera.
QR_MODULE_DOTS = {30: 6, 32: 6, 42: 8, 48: 8}
_UNMAPPED = "\ufffe"  # a noncharacter: never in a receipt, so never encoded


def receipt_columns(profile: str = DEFAULT_PROFILE, width_mm: int | None = None) -> int:
    """Font A columns of the receipt layout for the lane's printer (`receipts.media`): 42 on a
    TM-T88V's 80 mm roll, 30 on its 58 mm roll; the profile's own roll when `width_mm` is None."""
    if width_mm is None:
        mm = _profile_data(profile).get("media", {}).get("width", {}).get("mm")
        width_mm = 58 if isinstance(mm, int | float) and mm < 70 else 80
    return print_width(profile, width_mm).layout_columns


def supports_native_qr(profile: str) -> bool:
    return bool(_profile_data(profile).get("features", {}).get("qrCode"))


@lru_cache(maxsize=64)
def _encoder(profile: str) -> Encoder:
    """One magic-encoding `Encoder` per model: it caches each code page's character map."""
    return Encoder(get_profile(profile).get_code_pages())


@lru_cache(maxsize=64)
def _charmap(encoding: str) -> Any:
    """A charmap codec for a code page: ASCII plus the upper half magic encoding would use."""
    upper = [
        char if char and ord(char) >= 128 else _UNMAPPED
        for char in Encoder._get_codepage_char_list(encoding)
    ]
    seen: set[str] = set()
    for index, char in enumerate(upper):  # the first byte wins for a character listed twice
        if char in seen:
            upper[index] = _UNMAPPED
        seen.add(char)
    return codecs.charmap_build("".join(map(chr, range(128))) + "".join(upper))


def _write_text(printer: Escpos, text: str) -> None:
    """Text through magic encoding, with a fast path for lines the current code page holds.

    Magic encoding looks at every character; a receipt is mostly one code page, so a line whose
    characters are all in the page magic encoding already selected is translated in one call,
    giving the same bytes. Anything else goes through magic encoding, which switches pages.
    """
    if text.isascii():
        printer._raw(text.encode("ascii"))  # the same bytes in every code page
        return
    current = printer.magic.encoding
    if current is not None and not printer.magic.disabled:
        try:
            printer._raw(codecs.charmap_encode(text, "strict", _charmap(current))[0])
            return
        except UnicodeEncodeError:
            pass  # a character from another page: let magic encoding switch
    printer.text(text)


def write_receipt(printer: Escpos, receipt: LaidOutReceipt) -> None:
    """Send `receipt` through any python-escpos printer (Network, Serial, Usb, Dummy)."""
    native_qr = bool(printer.profile.supports("qrCode"))
    module = QR_MODULE_DOTS.get(receipt.columns, 6)
    printer.hw("INIT")
    # ESC @ puts the printer back on code page 0: make magic encoding select its page again, or
    # a second receipt on the same connection would print Cyrillic as CP437.
    printer.magic.encoding = None
    style: tuple[str, bool, bool, bool] | None = None
    for line in receipt.lines:
        if isinstance(line, TextLine):
            wanted = (line.align.value, line.bold, line.double_width, line.double_height)
            if wanted != style:
                printer.set(
                    align=line.align.value,
                    bold=line.bold,
                    normal_textsize=True,
                    double_width=line.double_width,
                    double_height=line.double_height,
                )
                style = wanted
            _write_text(printer, line.text + "\n")
        elif isinstance(line, QrBlock):
            if native_qr:
                printer.set(align="center", bold=False, normal_textsize=True)
                printer.qr(line.payload, ec=QR_ECLEVEL_M, size=module, native=True)
                printer._raw(b"\n")
            else:
                printer.set(align="left", bold=False, normal_textsize=True)
                printer.qr(line.payload, ec=QR_ECLEVEL_M, size=module, native=False, center=True)
            style = None
        elif isinstance(line, Feed):
            printer._raw(b"\n" * line.lines)
        elif isinstance(line, Cut):
            printer.set(align="left", bold=False, normal_textsize=True)
            style = None
            # Feeds past the cutter, then GS V; a model without a cutter only feeds (tear by hand).
            printer.cut()


def render_escpos(receipt: LaidOutReceipt, *, profile: str = DEFAULT_PROFILE) -> bytes:
    """The bytes for one receipt on a printer of model `profile` (lay it out `for_printer`)."""
    _profile_data(profile)
    printer = Dummy(profile=profile, magic_encode_args={"encoder": _encoder(profile)})
    write_receipt(printer, receipt)
    return bytes(printer.output)


def document_to_escpos(
    document: ReceiptDocument,
    *,
    profile: str = DEFAULT_PROFILE,
    width_mm: int | None = None,
    columns: int | None = None,
) -> bytes:
    """Lay out `document` for the printer (its columns unless given) and render it: what the
    print worker sends for an outbox row."""
    laid_out = layout_receipt(
        document, columns or receipt_columns(profile, width_mm), for_printer=True
    )
    return render_escpos(laid_out, profile=profile)
