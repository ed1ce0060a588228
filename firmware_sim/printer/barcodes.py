"""Encodes GS k barcode data into bars the way the printer would, and says what a scanner will read.

CODE128 follows the Epson rules exactly (the data starts with a code-set prefix {A, {B or {C; in set
C each byte is one codeword 0..99, i.e. two digits); the other symbologies are built with
python-barcode, which computes the check digits the printer adds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import barcode
from barcode.charsets import code128

log = logging.getLogger(__name__)

SYMBOLOGIES: dict[int, str] = {
    0: "UPC-A", 1: "UPC-E", 2: "EAN13", 3: "EAN8", 4: "CODE39", 5: "ITF", 6: "CODABAR",
    65: "UPC-A", 66: "UPC-E", 67: "EAN13", 68: "EAN8", 69: "CODE39", 70: "ITF", 71: "CODABAR",
    72: "CODE93", 73: "CODE128", 74: "GS1-128", 75: "GS1 DATABAR OMNIDIRECTIONAL",
    76: "GS1 DATABAR TRUNCATED", 77: "GS1 DATABAR LIMITED", 78: "GS1 DATABAR EXPANDED",
}  # fmt: skip


_SWITCH_TO = {"A": 101, "B": 100, "C": 99}  # CODE A / CODE B / CODE C symbol values


class BarcodeNotPrinted(ValueError):
    """The printer refuses this data for this symbology (it prints nothing, as real ones do)."""


@dataclass(frozen=True, slots=True)
class EncodedBarcode:
    symbology: str
    modules: str  # "1" = bar module, "0" = space module
    payload: str  # what a scanner reads back
    human_readable: str  # the HRI characters printed under or over the bars


def encode(symbology_code: int, data: bytes) -> EncodedBarcode:
    name = SYMBOLOGIES.get(symbology_code)
    if name is None:
        raise BarcodeNotPrinted(f"unknown barcode system m={symbology_code}")
    text = data.decode("latin-1")
    if name == "CODE128":
        return _code128(data)
    if name in ("EAN13", "EAN8", "UPC-A"):
        digits = {"EAN13": 12, "EAN8": 7, "UPC-A": 11}[name]
        if not text.isdigit() or len(text) not in (digits, digits + 1):
            raise BarcodeNotPrinted(f"{name} needs {digits} or {digits + 1} digits, got {text!r}")
        kind = {"EAN13": "ean13", "EAN8": "ean8", "UPC-A": "upca"}[name]
        symbol = barcode.get(kind, text[:digits])
        full = symbol.get_fullcode()
        return EncodedBarcode(name, symbol.build()[0], full, full)
    if name == "CODE39":
        stripped = text.strip("*")
        try:
            code39 = barcode.codex.Code39(stripped, add_checksum=False)
        except barcode.errors.IllegalCharacterError as exc:
            raise BarcodeNotPrinted(f"CODE39 cannot encode {text!r}") from exc
        return EncodedBarcode(name, code39.build()[0], stripped, f"*{stripped}*")
    if name == "ITF":
        if not text.isdigit() or len(text) % 2:
            raise BarcodeNotPrinted(f"ITF needs an even number of digits, got {text!r}")
        symbol = barcode.get("itf", text)
        return EncodedBarcode(name, symbol.build()[0], text, text)
    if name == "CODABAR":
        # The start/stop characters (A-D) are part of the data; python-barcode checks them
        # only when building, so the build is inside the guard too.
        upper = text.upper()
        try:
            modules = barcode.get("codabar", upper).build()[0]
        except (barcode.errors.BarcodeError, KeyError, IndexError) as exc:
            raise BarcodeNotPrinted(f"CODABAR cannot encode {text!r}") from exc
        return EncodedBarcode(name, modules, upper[1:-1], upper)
    raise BarcodeNotPrinted(f"{name} is not simulated")


def _code128(data: bytes) -> EncodedBarcode:
    if len(data) < 2 or data[0] != ord("{") or data[1] not in b"ABC":
        raise BarcodeNotPrinted(f"CODE128 data must start with {{A, {{B or {{C: {data!r}")
    code_set = chr(data[1])
    values = [code128.START_CODES[code_set]]
    payload: list[str] = []
    index = 2
    shift_next = False
    while index < len(data):
        byte = data[index]
        index += 1
        if byte == ord("{"):
            if index >= len(data):
                raise BarcodeNotPrinted("CODE128 data ends inside a {x escape")
            escape = chr(data[index])
            index += 1
            if escape in "ABC":
                if escape != code_set:
                    values.append(_SWITCH_TO[escape])
                    code_set = escape
                continue
            if escape == "S":
                values.append(98)
                shift_next = True
                continue
            if escape in "1234":
                fnc = {"1": 102, "2": 97, "3": 96, "4": 101 if code_set == "A" else 100}[escape]
                values.append(fnc)
                continue
            if escape == "{":
                byte = ord("{")
            else:
                raise BarcodeNotPrinted(f"CODE128 unknown escape {{{escape}")
        active = code_set
        if shift_next:
            active = "B" if code_set == "A" else "A"
            shift_next = False
        if active == "C":
            if byte > 99:
                raise BarcodeNotPrinted(f"CODE128 set C codeword {byte} is not 0..99")
            values.append(byte)
            payload.append(f"{byte:02d}")
        elif active == "A":
            if byte > 0x5F:
                raise BarcodeNotPrinted(f"CODE128 set A cannot encode byte {byte:#x}")
            values.append(byte - 0x20 if byte >= 0x20 else byte + 64)
            payload.append(chr(byte))
        else:
            if not 0x20 <= byte <= 0x7F:
                raise BarcodeNotPrinted(f"CODE128 set B cannot encode byte {byte:#x}")
            values.append(byte - 0x20)
            payload.append(chr(byte))
    weighted = sum(position * value for position, value in enumerate(values) if position)
    checksum = (values[0] + weighted) % 103
    values.append(checksum)
    modules = "".join(code128.CODES[value] for value in values) + code128.STOP + "11"
    text = "".join(payload)
    return EncodedBarcode("CODE128", modules, text, text)
