"""Draws what the print head burns: glyph cells, barcodes, QR codes and raster images, 1 bit a dot.

Everything here works in printer dots on 1-bit PIL images (mode "1", white = 1), because a thermal
head has no grey. Text uses DejaVu Sans Mono (it has Cyrillic) fitted to Epson's cells: Font A is
12 x 24 dots, Font B 9 x 17 dots; bold uses the bold face.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import segno
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

FONTS_DIR = Path(__file__).resolve().parent.parent / "fonts"
_INVERT = bytes(255 - b for b in range(256))


@dataclass(frozen=True, slots=True)
class CellFont:
    """A printer font: the cell every character occupies, and the TrueType size drawn into it."""

    name: str
    width: int
    height: int
    point_size: int
    baseline_offset: int = 0


FONT_A = CellFont("A", 12, 24, 20)
FONT_B = CellFont("B", 9, 17, 14)


@dataclass(frozen=True, slots=True)
class TextStyle:
    font_b: bool = False
    bold: bool = False
    underline: int = 0
    width: int = 1
    height: int = 1
    reverse: bool = False

    @property
    def cell(self) -> CellFont:
        return FONT_B if self.font_b else FONT_A

    @property
    def advance(self) -> int:
        return self.cell.width * self.width

    @property
    def line_height(self) -> int:
        return self.cell.height * self.height


@lru_cache(maxsize=8)
def _truetype(point_size: int, bold: bool) -> ImageFont.FreeTypeFont:
    name = "DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf"
    return ImageFont.truetype(str(FONTS_DIR / name), point_size)


@lru_cache(maxsize=4096)
def glyph_ink(char: str, font_b: bool, bold: bool) -> np.ndarray:
    """One character in its cell as a boolean array (True = ink), drawn without anti-aliasing."""
    cell = FONT_B if font_b else FONT_A
    mask = Image.new("L", (cell.width, cell.height), 0)
    if char != " ":
        draw = ImageDraw.Draw(mask)
        draw.fontmode = "1"
        draw.text((0, 0), char, font=_truetype(cell.point_size, bold), fill=255)
    ink = np.asarray(mask) >= 128
    ink.flags.writeable = False
    return ink


@lru_cache(maxsize=2048)
def text_run(text: str, style: TextStyle) -> Image.Image:
    """A run of characters in one style, scaled and decorated, as a 1-bit image (white = 1)."""
    ink = np.hstack([glyph_ink(char, style.font_b, style.bold) for char in text])
    if style.width != 1 or style.height != 1:
        ink = ink.repeat(style.height, axis=0).repeat(style.width, axis=1)
    if style.underline:
        ink[-min(style.underline, 2) :, :] = True
    if style.reverse:
        ink = ~ink
    return Image.fromarray(~ink)


def raster_image(data: bytes, width_bytes: int, height: int) -> Image.Image:
    """GS v 0 / GS ( L raster data (bit 1 = a black dot, MSB leftmost) as a 1-bit image."""
    expected = width_bytes * height
    if len(data) < expected:
        data = data + bytes(expected - len(data))
    return Image.frombytes("1", (width_bytes * 8, height), data[:expected].translate(_INVERT))


def column_image(data: bytes, columns: int, dots_high: int) -> Image.Image:
    """ESC * column data (each column 1 or 3 bytes, MSB at the top) as a 1-bit image."""
    column_bytes = dots_high // 8
    array = np.frombuffer(data[: columns * column_bytes], dtype=np.uint8)
    if array.size < columns * column_bytes:
        array = np.pad(array, (0, columns * column_bytes - array.size))
    bits = np.unpackbits(array.reshape(columns, column_bytes), axis=1).T
    return Image.fromarray(((1 - bits) * 255).astype(np.uint8), "L").convert("1")


def scale(image: Image.Image, width: int, height: int) -> Image.Image:
    if width == 1 and height == 1:
        return image
    return image.resize((image.width * width, image.height * height), Image.Resampling.NEAREST)


@lru_cache(maxsize=256)
def qr_image(payload: bytes, module_dots: int, error_level: str) -> Image.Image | None:
    """A QR symbol (model 2) with its 4-module quiet zone, or None if the data does not fit."""
    try:
        symbol = segno.make_qr(payload, error=error_level, boost_error=False)
    except (segno.DataOverflowError, ValueError) as exc:
        log.warning("QR code not printed: %s", exc)
        return None
    return modules_image(symbol.matrix, module_dots, quiet_zone=4)


def modules_image(
    matrix: tuple[bytearray, ...] | list[list[int]], module_dots: int, *, quiet_zone: int
) -> Image.Image:
    array = np.array([list(row) for row in matrix], dtype=np.uint8)
    array = np.pad(array, quiet_zone)
    image = Image.fromarray(((1 - array) * 255).astype(np.uint8), "L").convert("1")
    return scale(image, module_dots, module_dots)


def barcode_image(
    modules: str, module_dots: int, height: int, *, quiet_modules: int = 10
) -> Image.Image:
    """Bars from a module string ("1" = bar) with a quiet zone on each side."""
    quiet = "0" * quiet_modules
    row = np.frombuffer((quiet + modules + quiet).encode("ascii"), dtype=np.uint8) == ord("1")
    line = np.repeat(np.where(row, 0, 255).astype(np.uint8), module_dots)
    return Image.fromarray(np.tile(line, (max(height, 1), 1)), "L").convert("1")


def place(strip: Image.Image, item: Image.Image, x: int, y: int = 0) -> None:
    """Paste a 1-bit item onto a 1-bit strip, clipping at the printable area."""
    if x >= strip.width:
        return
    if x + item.width > strip.width:
        item = item.crop((0, 0, strip.width - x, item.height))
    strip.paste(item, (x, y))


def stack(strips: list[Image.Image], width: int) -> Image.Image:
    """Join printed strips top to bottom into the paper as cut."""
    height = sum(strip.height for strip in strips)
    paper = Image.new("1", (width, max(height, 1)), 1)
    y = 0
    for strip in strips:
        paper.paste(strip, (0, y))
        y += strip.height
    return paper
