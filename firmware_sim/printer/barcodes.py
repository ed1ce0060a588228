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
    if name == "UPC-E":
        return _upc_e(text)
    if name == "CODE93":
        return _code93(text)
    raise BarcodeNotPrinted(f"{name} is not simulated")


# EAN/UPC digit patterns: odd parity (set A) and even parity (set B), 7 modules each.
_ODD = ["0001101", "0011001", "0010011", "0111101", "0100011",
        "0110001", "0101111", "0111011", "0110111", "0001011"]  # fmt: skip
_EVEN = ["0100111", "0110011", "0011011", "0100001", "0011101",
         "0111001", "0000101", "0010001", "0001001", "0010111"]  # fmt: skip
# UPC-E parity of the six digits by check digit, number system 0 (E even, O odd); NS 1 inverts.
_UPC_E_PARITY = ["EEEOOO", "EEOEOO", "EEOOEO", "EEOOOE", "EOEEOO",
                 "EOOEEO", "EOOOEE", "EOEOEO", "EOEOOE", "EOOEOE"]  # fmt: skip


def upc_e_to_upc_a(number_system: str, six: str) -> str:
    """The 11 UPC-A digits (without check digit) a zero-suppressed UPC-E stands for."""
    d1, d2, d3, d4, d5, d6 = tuple(six)
    if d6 in "012":
        return f"{number_system}{d1}{d2}{d6}0000{d3}{d4}{d5}"
    if d6 == "3":
        return f"{number_system}{d1}{d2}{d3}00000{d4}{d5}"
    if d6 == "4":
        return f"{number_system}{d1}{d2}{d3}{d4}00000{d5}"
    return f"{number_system}{d1}{d2}{d3}{d4}{d5}0000{d6}"


def upc_check_digit(eleven: str) -> str:
    total = sum(int(d) * (3 if index % 2 == 0 else 1) for index, d in enumerate(eleven))
    return str((10 - total % 10) % 10)


def _upc_e(text: str) -> EncodedBarcode:
    """GS k UPC-E: 6 digits (number system 0), 7 (with the number system, 0 or 1) or 8 (and
    the check digit, which must be right); the printer adds the check digit."""
    if not text.isdigit() or len(text) not in (6, 7, 8):
        raise BarcodeNotPrinted(f"UPC-E needs 6, 7 or 8 digits, got {text!r}")
    number_system, six = ("0", text) if len(text) == 6 else (text[0], text[1:7])
    if number_system not in "01":
        raise BarcodeNotPrinted(f"UPC-E number system must be 0 or 1, got {number_system}")
    check = upc_check_digit(upc_e_to_upc_a(number_system, six))
    if len(text) == 8 and text[7] != check:
        raise BarcodeNotPrinted(f"UPC-E {text!r}: the check digit should be {check}")
    parity = _UPC_E_PARITY[int(check)]
    if number_system == "1":
        parity = parity.translate(str.maketrans("EO", "OE"))
    digits = "".join(
        (_EVEN if side == "E" else _ODD)[int(d)] for d, side in zip(six, parity, strict=True)
    )
    full = number_system + six + check
    return EncodedBarcode("UPC-E", "101" + digits + "010101", full, full)


_CODE93_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-. $/+%"
_CODE93_PATTERNS = [
    "100010100", "101001000", "101000100", "101000010", "100101000", "100100100", "100100010",
    "101010000", "100010010", "100001010", "110101000", "110100100", "110100010", "110010100",
    "110010010", "110001010", "101101000", "101100100", "101100010", "100110100", "100011010",
    "101011000", "101001100", "101000110", "100101100", "100010110", "110110100", "110110010",
    "110101100", "110100110", "110010110", "110011010", "101101100", "101100110", "100110110",
    "100111010", "100101110", "111010100", "111010010", "111001010", "101101110", "101110110",
    "110101110", "100100110", "111011010", "111010110", "100110010",
]  # fmt: skip
_CODE93_START_STOP = "101011110"
_CODE93_SHIFT_PLUS = 46  # (+): the next letter is lower case (full ASCII)


def _code93_check(values: list[int], max_weight: int) -> int:
    total = sum(value * ((index % max_weight) + 1) for index, value in enumerate(reversed(values)))
    return total % 47


def _code93(text: str) -> EncodedBarcode:
    """GS k CODE93: digits, upper-case letters, space and - . $ / + %, and lower-case letters
    (sent as the full-ASCII shift (+) and the letter); the printer adds both check characters."""
    values: list[int] = []
    for char in text:
        if char in _CODE93_CHARS:
            values.append(_CODE93_CHARS.index(char))
        elif "a" <= char <= "z":
            values += [_CODE93_SHIFT_PLUS, _CODE93_CHARS.index(char.upper())]
        else:
            raise BarcodeNotPrinted(f"CODE93 cannot encode {char!r} in {text!r}")
    if not values:
        raise BarcodeNotPrinted("CODE93 needs at least one character")
    c_check = _code93_check(values, 20)
    k_check = _code93_check([*values, c_check], 15)
    body = "".join(_CODE93_PATTERNS[value] for value in [*values, c_check, k_check])
    modules = _CODE93_START_STOP + body + _CODE93_START_STOP + "1"
    return EncodedBarcode("CODE93", modules, text, text)


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
