"""The print mechanism: applies commands to the printer's modes and lays dots on the paper.

It keeps the modes a TM-T88 keeps (font, emphasis, sizes, justification, code page, barcode and QR
settings), buffers one line of print data at a time as the real head does, and ends a receipt at
every cut. It knows nothing of sockets or faults beyond what the paper roll tells it.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Protocol

from PIL import Image

from firmware_sim.printer import barcodes, render
from firmware_sim.printer.parser import Command
from firmware_sim.printer.profiles import PrinterProfile
from firmware_sim.printer.render import FONT_A, FONT_B, TextStyle

log = logging.getLogger(__name__)

LEFT, CENTER, RIGHT = 0, 1, 2
_QR_ERROR_LEVELS = {48: "L", 49: "M", 50: "Q", 51: "H"}
_FULL_CUTS = {0, 48, 65, 97, 103}
_PARTIAL_CUTS = {1, 49, 66, 98, 104}
# Commands the engine accepts without a visible effect in this simulation.
_ACCEPTED = {
    "ESC V", "ESC {", "ESC R", "ESC r", "ESC U", "ESC c", "ESC =", "ESC ?", "ESC L", "ESC S",
    "ESC T", "ESC W", "ESC u", "ESC %", "ESC &", "ESC f", "ESC B", "ESC e", "ESC K", "ESC <",
    "ESC C", "ESC O", "ESC q", "ESC SP", "ESC  ", "ESC p", "ESC v", "ESC (", "GS b", "GS |",
    "GS a", "GS P", "GS L", "GS W", "GS T", "GS ^", "GS :", "GS j", "GS E", "GS c", "GS r",
    "GS I", "GS *", "GS /", "FS .", "FS &", "FS !", "FS -", "FS C", "FS S", "FS W", "FS p",
    "FS q", "DLE EOT", "DLE ENQ", "DLE DC4", "CR", "CAN", "CONTROL", "TRUNCATED",
}  # fmt: skip


class PaperRoll(Protocol):
    """What the engine asks of the paper: feed it, and whether any is left."""

    def advance(self, dots: int) -> int:
        """Feed `dots` rows; returns how many were fed before the roll ran out."""
        ...

    def is_out(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class PrintedBarcode:
    symbology: str  # "EAN13", "CODE128", ... as python-escpos names them
    data: str  # what a scanner reads back (with the check digit the printer added)


@dataclass(eq=False)
class Receipt:
    """One piece of paper as it left the printer (at a cut, or torn off when the roll ran out)."""

    image: Image.Image  # 1-bit, dots_per_line wide
    text: str  # UTF-8 text of what was printed, codes and images as [bracketed] lines
    qr_payloads: list[str] = field(default_factory=list)
    barcodes: list[PrintedBarcode] = field(default_factory=list)
    images: int = 0  # raster/graphics images printed
    cut: str = "full"  # "full", "partial", or "none" when the paper ran out
    complete: bool = True  # False if the roll ran out while printing it
    length_mm: float = 0.0
    number: int = 0  # 1, 2, ... in the order the printer cut them

    @cached_property
    def png(self) -> bytes:
        buffer = io.BytesIO()
        self.image.save(buffer, format="PNG")
        return buffer.getvalue()

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def save(self, directory: Path) -> tuple[Path, Path]:
        """Write NNNN.png and NNNN.txt into `directory`."""
        stem = f"{self.number:04d}"
        png_path, text_path = directory / f"{stem}.png", directory / f"{stem}.txt"
        png_path.write_bytes(self.png)
        text_path.write_text(self.text + "\n", encoding="utf-8")
        return png_path, text_path


@dataclass
class _Modes:
    font_b: bool = False
    bold: bool = False
    underline: int = 0
    width: int = 1
    height: int = 1
    reverse: bool = False
    align: int = LEFT
    code_page: int = 0
    line_spacing: int | None = None  # dots; None = the default 1/6 inch
    tab_stops: tuple[int, ...] = tuple(range(8, 256, 8))
    barcode_height: int = 162
    barcode_module: int = 3
    hri_position: int = 0
    hri_font_b: bool = False
    qr_module: int = 3
    qr_error: str = "L"

    def style(self) -> TextStyle:
        return TextStyle(
            self.font_b, self.bold, self.underline, self.width, self.height, self.reverse
        )


_FIELD = re.compile(r"[^ ]+(?: [^ ]+)*")  # words apart by single spaces; wider gaps part fields


def _wide_run_as_text(run: str, style: TextStyle, align: int) -> str:
    """A magnified run in the text transcript, one character a column, over the columns it
    covers on paper: a lone field keeps the line's alignment, fields parted by a wider gap keep
    their paper edges (the first its left, the last its right), so a double-width
    "TOTAL     12,50" still spans the line and a centred double-width code stays centred."""
    if style.width == 1:
        return run
    span = len(run) * style.width
    fields = [(match.start(), match.group()) for match in _FIELD.finditer(run)]
    if not fields:
        return " " * span
    out = [" "] * span
    cursor = 0
    for index, (start, text) in enumerate(fields):
        paper_start, paper_end = start * style.width, (start + len(text)) * style.width
        if len(fields) == 1:
            column = {
                LEFT: paper_start,
                CENTER: (paper_start + paper_end - len(text)) // 2,
                RIGHT: paper_end - len(text),
            }[align]
        elif index == 0:
            column = paper_start
        elif index == len(fields) - 1:
            column = paper_end - len(text)
        else:
            column = (paper_start + paper_end - len(text)) // 2
        column = max(column, cursor)
        out[column : column + len(text)] = text
        cursor = column + len(text) + 1
    return "".join(out)


@dataclass
class _Segment:
    width: int
    height: int
    style: TextStyle | None = None
    chars: list[str] = field(default_factory=list)
    image: Image.Image | None = None


class PrintEngine:
    """Applies commands in order; calls `on_receipt` for each finished piece of paper."""

    def __init__(
        self, profile: PrinterProfile, paper: PaperRoll, on_receipt: Callable[[Receipt], None]
    ) -> None:
        self.profile = profile
        self._paper = paper
        self._on_receipt = on_receipt
        self._dots = profile.dots_per_line
        # Paper end stops the head: what was still to print waits here (lines, cuts) and comes
        # out on the new roll, starting again with the line the paper ran out in.
        self.stalled = False
        self._backlog: list[tuple[Image.Image | None, str | None, bool, str | None]] = []
        self._inked = False  # the piece in the printer has something printed on it
        self.unknown_commands = 0
        self.failed_commands = 0  # commands whose handler failed on their data (logged)
        self._modes = _Modes()
        self._translations: dict[int, dict[int, str]] = {}
        self._qr_data = b""
        self._graphics: Image.Image | None = None
        self._reset_line()
        self._reset_receipt()

    # -- command dispatch -------------------------------------------------------------------

    def execute(self, command: Command) -> None:
        name = command.name
        handler = _HANDLERS.get(name)
        if handler is not None:
            try:
                handler(self, command)
            except Exception:  # a printer never stops on bad data: lose this command only
                self.failed_commands += 1
                log.exception("%s (%d bytes) could not be printed; skipped", name, command.size)
        elif name == "UNKNOWN":
            self.unknown_commands += 1
        elif name not in _ACCEPTED:
            log.info("command %s has no effect in the simulator", name)

    def tear_off(self) -> Receipt | None:
        """End the current receipt without a cut (e.g. when the simulator stops)."""
        self._print_line()
        return self._finish_receipt(cut="none", complete=True)

    def paper_ran_out(self) -> None:
        """The roll ended mid-receipt: what was printed hangs out of the printer, uncut."""
        self._finish_receipt(cut="none", complete=False)

    def resume(self) -> None:
        """A new roll is in: print what waited (lines and cuts) in order, until done or the paper
        runs out again."""
        backlog, self._backlog = self._backlog, []
        self.stalled = False
        for index, (strip, text, inked, cut) in enumerate(backlog):
            if self.stalled:
                self._backlog.extend(backlog[index:])
                return
            if strip is None:
                self._finish_receipt(cut=cut or "full", complete=True)
                continue
            self._inked = self._inked or inked
            self._emit(strip, text)

    def discard(self) -> int:
        """Power off or DLE ENQ 2: the print buffer is cleared; returns how many cuts it held."""
        cuts = sum(1 for strip, *_ in self._backlog if strip is None)
        self._backlog = []
        self.stalled = False
        self._reset_line()
        return cuts

    @property
    def lines_on_paper(self) -> int:
        """Text lines printed on the piece of paper now in the printer (not yet cut)."""
        return len(self._text_lines)

    # -- modes ------------------------------------------------------------------------------

    def _initialize(self, _: Command) -> None:
        self._modes = _Modes()
        self._reset_line()
        self._graphics = None

    def _print_mode(self, command: Command) -> None:
        n = command.args[0]
        modes = self._modes
        modes.font_b = bool(n & 0x01)
        modes.bold = bool(n & 0x08)
        modes.height = 2 if n & 0x10 else 1
        modes.width = 2 if n & 0x20 else 1
        modes.underline = 1 if n & 0x80 else 0

    def _size(self, command: Command) -> None:
        n = command.args[0]
        self._modes.width = min((n >> 4) & 0x07, 7) + 1
        self._modes.height = (n & 0x07) + 1

    def _bold(self, command: Command) -> None:
        self._modes.bold = bool(command.args[0] & 0x01)

    def _underline(self, command: Command) -> None:
        n = command.args[0]
        self._modes.underline = {0: 0, 48: 0, 1: 1, 49: 1, 2: 2, 50: 2}.get(n, 0)

    def _reverse(self, command: Command) -> None:
        self._modes.reverse = bool(command.args[0] & 0x01)

    def _font(self, command: Command) -> None:
        self._modes.font_b = command.args[0] not in (0, 48)

    def _justify(self, command: Command) -> None:
        n = command.args[0]
        self._modes.align = {0: LEFT, 48: LEFT, 1: CENTER, 49: CENTER, 2: RIGHT, 50: RIGHT}.get(
            n, self._modes.align
        )

    def _code_page(self, command: Command) -> None:
        slot = command.args[0]
        if self.profile.code_page_name(slot) is None:
            log.warning("ESC t %d: %s has no such code page", slot, self.profile.name)
        self._modes.code_page = slot

    def _spacing_default(self, _: Command) -> None:
        self._modes.line_spacing = None

    def _spacing(self, command: Command) -> None:
        per_inch = {"ESC 3": 180, "ESC A": 60, "ESC +": 360}[command.name]
        self._modes.line_spacing = round(command.args[0] * self.profile.dpi / per_inch)

    def _tab_stops(self, command: Command) -> None:
        stops: list[int] = []
        for stop in command.args:
            if stops and stop <= stops[-1]:
                break
            stops.append(stop)
        self._modes.tab_stops = tuple(stops)

    def _barcode_setting(self, command: Command) -> None:
        n = command.args[0]
        modes = self._modes
        if command.name == "GS h":
            modes.barcode_height = max(n, 1)
        elif command.name == "GS w":
            if 1 <= n <= 6:
                modes.barcode_module = n
        elif command.name == "GS H":
            modes.hri_position = n - 48 if n >= 48 else n
        elif command.name == "GS f":
            modes.hri_font_b = n in (1, 49)

    # -- text -------------------------------------------------------------------------------

    def _text(self, command: Command) -> None:
        slot = self._modes.code_page
        table = self._translations.get(slot)
        if table is None:
            upper = self.profile.upper_half(slot)
            table = {0x80 + index: char for index, char in enumerate(upper)}
            self._translations[slot] = table
        text = command.data.decode("latin-1").translate(table)
        style = self._modes.style()
        advance = style.advance
        while text:
            room = (self._dots - self._line_x) // advance
            if room <= 0:
                if self._line:
                    self._print_line()  # the line is full: the head prints it and goes on
                    continue
                room = 1  # a character wider than the whole line prints clipped
            self._add_chars(text[:room], style)
            text = text[room:]

    def _add_chars(self, chars: str, style: TextStyle) -> None:
        if not self._line:
            self._line_align = self._modes.align
        width = style.advance * len(chars)
        last = self._line[-1] if self._line else None
        if last is not None and last.style == style:
            last.chars.append(chars)
            last.width += width
        else:
            self._line.append(_Segment(width, style.line_height, style, [chars]))
        self._line_x += width

    def _tab(self, _: Command) -> None:
        advance = self._modes.style().advance
        for stop in self._modes.tab_stops:
            if stop * advance > self._line_x:
                self._gap(min(stop * advance, self._dots) - self._line_x)
                return

    def _position(self, command: Command) -> None:
        units = command.args[0] | command.args[1] << 8
        if command.name == "ESC \\" and units >= 0x8000:
            return  # moving left is not simulated
        dots = round(units * self.profile.dpi / 180)
        target = dots if command.name == "ESC $" else self._line_x + dots
        if self._line_x < target <= self._dots:
            self._gap(target - self._line_x)

    def _gap(self, width: int) -> None:
        if width <= 0:
            return
        if not self._line:
            self._line_align = self._modes.align
        self._line.append(_Segment(width, 0))
        self._line_x += width

    def _line_feed(self, _: Command) -> None:
        self._print_line(force=True)

    def _form_feed(self, _: Command) -> None:
        self._print_line()

    def _feed_lines(self, command: Command) -> None:
        self._print_line()
        for _ in range(command.args[0]):
            self._emit(Image.new("1", (self._dots, self._line_spacing()), 1), "")

    def _feed_dots(self, command: Command) -> None:
        self._print_line()
        dots = round(command.args[0] * self.profile.dpi / 180)
        if dots:
            self._emit(Image.new("1", (self._dots, dots), 1), None)

    def _line_spacing(self) -> int:
        spacing = self._modes.line_spacing
        return self.profile.default_line_spacing() if spacing is None else spacing

    def _print_line(self, *, force: bool = False) -> None:
        """Print the buffered line; with force (LF) an empty line still feeds one line."""
        if not self._line and not force:
            return
        height = max((segment.height for segment in self._line), default=0)
        advance = max(self._line_spacing(), height)
        strip = Image.new("1", (self._dots, advance), 1)
        free = max(self._dots - self._line_x, 0)
        offset = {LEFT: 0, CENTER: free // 2, RIGHT: free}[self._line_align]
        x = offset
        text_parts: list[str] = []
        for segment in self._line:
            if segment.style is not None:
                run = "".join(segment.chars)
                render.place(strip, render.text_run(run, segment.style), x, height - segment.height)
                text_parts.append(_wide_run_as_text(run, segment.style, self._line_align))
                if run.strip():
                    self._inked = True
            elif segment.image is not None:
                render.place(strip, segment.image, x, height - segment.height)
                self._inked = True
            else:
                text_parts.append(" " * round(segment.width / FONT_A.width))
            x += segment.width
        first_style = next((s.style for s in self._line if s.style is not None), None)
        cell = (first_style.cell if first_style else FONT_A).width
        # Whole cells only, so right-justified text ends within the columns of the line.
        text = (" " * (offset // cell) + "".join(text_parts)).rstrip()
        self._reset_line()
        self._emit(strip, text)

    def _reset_line(self) -> None:
        self._line: list[_Segment] = []
        self._line_x = 0
        self._line_align = self._modes.align

    # -- graphics ---------------------------------------------------------------------------

    def _raster(self, command: Command) -> None:
        mode, width_bytes, height = command.args
        image = render.raster_image(command.data, width_bytes, height)
        image = render.scale(image, 2 if mode & 1 else 1, 2 if mode & 2 else 1)
        self._print_block(image, f"[image {image.width}x{image.height}]")
        self.images += 1

    def _graphics_command(self, command: Command) -> None:
        data = command.data
        if len(data) < 2:
            return
        function = data[1]
        if function == 112 and len(data) >= 10:
            x_scale, y_scale = data[3], data[4]
            width, height = data[6] | data[7] << 8, data[8] | data[9] << 8
            if not width or not height or len(data) - 10 < (width + 7) // 8 * height:
                log.warning(
                    "GS ( L graphic of %dx%d dots came with %d bytes of data: not stored",
                    width,
                    height,
                    len(data) - 10,
                )
                return
            image = render.raster_image(data[10:], (width + 7) // 8, height)
            image = image.crop((0, 0, width, height)) if width % 8 else image
            self._graphics = render.scale(image, 2 if x_scale == 2 else 1, 2 if y_scale == 2 else 1)
        elif function in (2, 50):
            if self._graphics is not None:
                image = self._graphics
                self._graphics = None
                self._print_block(image, f"[image {image.width}x{image.height}]")
                self.images += 1
        else:
            log.info("GS ( L function %d has no effect in the simulator", function)

    def _column_image(self, command: Command) -> None:
        mode, columns = command.args
        dots_high = 24 if mode in (32, 33) else 8
        image = render.column_image(command.data, columns, dots_high)
        image = render.scale(image, 2 if mode in (0, 32) else 1, 3 if dots_high == 8 else 1)
        if self._line_x + image.width > self._dots:
            image = image.crop((0, 0, max(self._dots - self._line_x, 1), image.height))
        if not self._line:
            self._line_align = self._modes.align
        self._line.append(_Segment(image.width, image.height, image=image))
        self._line_x += image.width

    def _print_block(self, image: Image.Image, text: str | None) -> None:
        """Print a picture, barcode or QR symbol on lines of its own, justified like text."""
        self._print_line()
        strip = Image.new("1", (self._dots, image.height), 1)
        free = max(self._dots - image.width, 0)
        x = {LEFT: 0, CENTER: free // 2, RIGHT: free}[self._modes.align]
        render.place(strip, image, x)
        self._inked = True
        self._emit(strip, text)

    # -- two-dimensional codes and barcodes -------------------------------------------------

    def _two_dimensional(self, command: Command) -> None:
        data = command.data
        if len(data) < 2:
            return
        symbol, function = data[0], data[1]
        if symbol != 49:
            log.info("GS ( k symbol type %d (not QR) is not simulated", symbol)
            return
        modes = self._modes
        if function == 65 and len(data) >= 3 and data[2] != 50:
            log.info("QR model %d requested; printing model 2", data[2] - 48)
        elif function == 67 and len(data) >= 3 and 1 <= data[2] <= 16:
            modes.qr_module = data[2]
        elif function == 69 and len(data) >= 3:
            modes.qr_error = _QR_ERROR_LEVELS.get(data[2], modes.qr_error)
        elif function == 80 and len(data) >= 3:
            self._qr_data = bytes(data[3:])
        elif function == 81:
            self._print_qr()

    def _print_qr(self) -> None:
        if not self._qr_data:
            log.warning("QR print requested with no stored data")
            return
        image = render.qr_image(self._qr_data, self._modes.qr_module, self._modes.qr_error)
        if image is None:
            return
        if image.width > self._dots:
            log.warning(
                "QR code %d dots wide does not fit %d dots: not printed", image.width, self._dots
            )
            return
        payload = self._qr_data.decode("utf-8", errors="replace")
        self._print_block(image, f"[QR {payload}]")
        self.qr_payloads.append(payload)

    def _barcode(self, command: Command) -> None:
        try:
            encoded = barcodes.encode(command.args[0], command.data)
        except barcodes.BarcodeNotPrinted as exc:
            log.warning("barcode not printed: %s", exc)
            return
        modes = self._modes
        bare = len(encoded.modules) * modes.barcode_module
        if bare > self._dots:
            log.warning(
                "%s barcode %d dots wide does not fit %d dots: not printed",
                encoded.symbology,
                bare,
                self._dots,
            )
            return
        quiet = min(10, (self._dots - bare) // (2 * modes.barcode_module))
        image = render.barcode_image(
            encoded.modules, modes.barcode_module, modes.barcode_height, quiet_modules=quiet
        )
        self._print_line()
        hri = self._hri_strip(encoded.human_readable, image.width)
        if hri is not None and modes.hri_position in (1, 3):
            self._print_block(hri, None)
        self._print_block(image, f"[{encoded.symbology} {encoded.payload}]")
        if hri is not None and modes.hri_position in (2, 3):
            self._print_block(hri, None)
        self.barcodes.append(PrintedBarcode(encoded.symbology, encoded.payload))

    def _hri_strip(self, text: str, width: int) -> Image.Image | None:
        if self._modes.hri_position not in (1, 2, 3):
            return None
        cell = FONT_B if self._modes.hri_font_b else FONT_A
        run = render.text_run(text, TextStyle(font_b=self._modes.hri_font_b))
        strip = Image.new("1", (max(width, run.width), cell.height + 4), 1)
        render.place(strip, run, (strip.width - run.width) // 2, 2)
        return strip

    # -- paper ------------------------------------------------------------------------------

    def _cut(self, command: Command) -> None:
        self._print_line()
        if command.name == "GS V":
            mode = command.args[0]
            if len(command.args) > 1 and command.args[1]:
                self._feed_dots(Command("ESC J", (command.args[1],)))
            cut = "partial" if mode in _PARTIAL_CUTS else "full"
            if mode not in _FULL_CUTS | _PARTIAL_CUTS:
                log.info("GS V %d treated as a full cut", mode)
        else:
            cut = "partial"
        if self.stalled:
            self._backlog.append((None, None, False, cut))
            return
        self._finish_receipt(cut=cut, complete=True)

    def _emit(self, strip: Image.Image, text: str | None) -> None:
        if self.stalled:
            self._backlog.append((strip, text, self._inked, None))
            return
        fed = self._paper.advance(strip.height)
        if fed < strip.height:
            inked = self._inked
            if fed > 0:
                self._strips.append(strip.crop((0, 0, strip.width, fed)))
                self._height += fed
            log.warning("paper ran out while printing; the rest waits for a new roll")
            self.paper_ran_out()
            self.stalled = True
            self._backlog.append((strip, text, inked, None))
            return
        self._strips.append(strip)
        self._height += strip.height
        if text is not None:
            self._text_lines.append(text)

    def _finish_receipt(self, *, cut: str, complete: bool) -> Receipt | None:
        if not self._inked:
            if self._strips:
                log.info("cut of blank paper: no receipt recorded")
            self._reset_receipt()
            return None
        receipt = Receipt(
            image=render.stack(self._strips, self._dots),
            text="\n".join(self._text_lines).rstrip("\n"),
            qr_payloads=self.qr_payloads,
            barcodes=self.barcodes,
            images=self.images,
            cut=cut,
            complete=complete,
            length_mm=round(self._height / self.profile.dpi * 25.4, 1),
        )
        self._reset_receipt()
        self._on_receipt(receipt)
        return receipt

    def _reset_receipt(self) -> None:
        self._strips: list[Image.Image] = []
        self._text_lines: list[str] = []
        self._height = 0
        self._inked = False
        self.qr_payloads: list[str] = []
        self.barcodes: list[PrintedBarcode] = []
        self.images = 0


_HANDLERS: dict[str, Callable[[PrintEngine, Command], None]] = {
    "TEXT": PrintEngine._text,
    "LF": PrintEngine._line_feed,
    "FF": PrintEngine._form_feed,
    "HT": PrintEngine._tab,
    "ESC @": PrintEngine._initialize,
    "ESC !": PrintEngine._print_mode,
    "ESC E": PrintEngine._bold,
    "ESC G": PrintEngine._bold,
    "ESC -": PrintEngine._underline,
    "ESC a": PrintEngine._justify,
    "ESC M": PrintEngine._font,
    "ESC t": PrintEngine._code_page,
    "ESC 2": PrintEngine._spacing_default,
    "ESC 3": PrintEngine._spacing,
    "ESC A": PrintEngine._spacing,
    "ESC +": PrintEngine._spacing,
    "ESC d": PrintEngine._feed_lines,
    "ESC J": PrintEngine._feed_dots,
    "ESC D": PrintEngine._tab_stops,
    "ESC $": PrintEngine._position,
    "ESC \\": PrintEngine._position,
    "ESC *": PrintEngine._column_image,
    "ESC i": PrintEngine._cut,
    "ESC m": PrintEngine._cut,
    "GS !": PrintEngine._size,
    "GS B": PrintEngine._reverse,
    "GS h": PrintEngine._barcode_setting,
    "GS w": PrintEngine._barcode_setting,
    "GS H": PrintEngine._barcode_setting,
    "GS f": PrintEngine._barcode_setting,
    "GS k": PrintEngine._barcode,
    "GS ( k": PrintEngine._two_dimensional,
    "GS ( L": PrintEngine._graphics_command,
    "GS v 0": PrintEngine._raster,
    "GS V": PrintEngine._cut,
}
