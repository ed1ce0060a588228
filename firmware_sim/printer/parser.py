"""Turns an ESC/POS byte stream into commands, as the receive buffer of a TM-T88-class printer does.

The parser is incremental: bytes may arrive in any split (TCP segments, serial reads), and a command
cut off at the end of a chunk waits for the rest. It knows the length of every command it meets, so
unknown ones are skipped with their parameters where the length is known, and logged.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)

NUL, LF, HT, FF, CR, CAN = 0x00, 0x0A, 0x09, 0x0C, 0x0D, 0x18
DLE, EOT, ENQ, DC4, ESC, FS, GS = 0x10, 0x04, 0x05, 0x14, 0x1B, 0x1C, 0x1D

_TEXT_RUN = re.compile(rb"[\x20-\xff]+")
_MAX_FUNCTION_A_BARCODE = 255


@dataclass(frozen=True, slots=True)
class Command:
    """One command as received: a mnemonic such as "ESC !" or "GS ( k", its numeric parameters and
    its data bytes. `size` is how many bytes it took on the wire."""

    name: str
    args: tuple[int, ...] = ()
    data: bytes = b""
    size: int = 0


# ESC x: number of fixed parameter bytes. Commands with data of their own are parsed in code.
_ESC_FIXED: dict[int, tuple[str, int]] = {
    ord(c): (f"ESC {c}", n)
    for c, n in {
        "@": 0, "!": 1, "E": 1, "G": 1, "-": 1, "a": 1, "d": 1, "e": 1, "J": 1, "K": 1,
        "2": 0, "3": 1, "A": 1, "+": 1, "t": 1, "p": 3, "M": 1, "V": 1, "{": 1, "R": 1,
        "r": 1, " ": 1, "$": 2, "\\": 2, "=": 1, "?": 1, "U": 1, "L": 0, "S": 0, "T": 1,
        "W": 8, "i": 0, "m": 0, "B": 2, "u": 1, "v": 0, "%": 1, "c": 2, "f": 2, "<": 0,
        "C": 1, "O": 0, "q": 0,
    }.items()
}  # fmt: skip

_GS_FIXED: dict[int, tuple[str, int]] = {
    ord(c): (f"GS {c}", n)
    for c, n in {
        "!": 1, "B": 1, "h": 1, "w": 1, "H": 1, "f": 1, "r": 1, "I": 1, "a": 1, "b": 1,
        "|": 1, "L": 2, "W": 2, "P": 2, "$": 2, "\\": 2, "T": 1, "^": 3, ":": 0, "/": 1,
        "j": 1, "c": 0, "E": 1,
    }.items()
}  # fmt: skip

_FS_FIXED: dict[int, tuple[str, int]] = {
    ord(c): (f"FS {c}", n)
    for c, n in {".": 0, "&": 0, "!": 1, "-": 1, "C": 1, "S": 2, "W": 1, "p": 2}.items()
}


class EscPosParser:
    """Incremental ESC/POS parser: `feed(bytes)` returns the commands completed so far."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of a command that has started but not yet fully arrived."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Command]:
        self._buffer += data
        commands: list[Command] = []
        buffer = self._buffer
        position = 0
        end = len(buffer)
        while position < end:
            parsed = _parse_at(buffer, position)
            if parsed is None:
                break
            command, position = parsed
            commands.append(command)
        del buffer[:position]
        return commands

    def finish(self) -> list[Command]:
        """End of the stream: a command cut short is reported as TRUNCATED, never fatal."""
        if not self._buffer:
            return []
        leftover = bytes(self._buffer)
        self._buffer.clear()
        log.warning(
            "stream ended inside a command; %d bytes discarded: %r", len(leftover), leftover[:16]
        )
        return [Command("TRUNCATED", data=leftover, size=len(leftover))]


def parse(data: bytes) -> list[Command]:
    """All commands in a complete byte string (a truncated tail comes back as TRUNCATED)."""
    parser = EscPosParser()
    return parser.feed(data) + parser.finish()


def _parse_at(buf: bytearray, i: int) -> tuple[Command, int] | None:
    first = buf[i]
    if first >= 0x20:
        match = _TEXT_RUN.match(buf, i)
        assert match is not None
        return Command("TEXT", data=match.group(), size=match.end() - i), match.end()
    if first == LF:
        return Command("LF", size=1), i + 1
    if first == ESC:
        return _parse_esc(buf, i)
    if first == GS:
        return _parse_gs(buf, i)
    if first == DLE:
        return _parse_dle(buf, i)
    if first == FS:
        return _parse_fs(buf, i)
    if first == HT:
        return Command("HT", size=1), i + 1
    if first == CR:
        return Command("CR", size=1), i + 1
    if first == FF:
        return Command("FF", size=1), i + 1
    if first == CAN:
        return Command("CAN", size=1), i + 1
    return Command("CONTROL", (first,), size=1), i + 1


def _need(buf: bytearray, end: int) -> bool:
    return len(buf) >= end


def _fixed(name: str, buf: bytearray, i: int, head: int, count: int) -> tuple[Command, int] | None:
    end = i + head + count
    if not _need(buf, end):
        return None
    return Command(name, tuple(buf[i + head : end]), size=end - i), end


def _unknown(buf: bytearray, i: int, length: int) -> tuple[Command, int]:
    raw = bytes(buf[i : i + length])
    log.warning("unknown command %s skipped", raw.hex(" "))
    return Command("UNKNOWN", data=raw, size=length), i + length


def _length_prefixed(name: str, buf: bytearray, i: int, head: int) -> tuple[Command, int] | None:
    """Commands of the form <prefix> pL pH d1..dk with k = pL + 256 pH (GS ( x, ESC ( x, FS ( x)."""
    if not _need(buf, i + head + 2):
        return None
    length = buf[i + head] | buf[i + head + 1] << 8
    end = i + head + 2 + length
    if not _need(buf, end):
        return None
    return Command(name, data=bytes(buf[i + head + 2 : end]), size=end - i), end


def _parse_esc(buf: bytearray, i: int) -> tuple[Command, int] | None:
    if not _need(buf, i + 2):
        return None
    code = buf[i + 1]
    if code == ord("*"):
        if not _need(buf, i + 5):
            return None
        mode, columns = buf[i + 2], buf[i + 3] | buf[i + 4] << 8
        end = i + 5 + columns * (3 if mode in (32, 33) else 1)
        if not _need(buf, end):
            return None
        return Command("ESC *", (mode, columns), bytes(buf[i + 5 : end]), end - i), end
    if code == ord("D"):
        stop = buf.find(NUL, i + 2, i + 2 + 33)
        if stop < 0:
            if len(buf) - (i + 2) >= 33:
                return _unknown(buf, i, 2)
            return None
        return Command("ESC D", tuple(buf[i + 2 : stop]), size=stop + 1 - i), stop + 1
    if code == ord("&"):
        return _parse_user_characters(buf, i)
    if code == ord("("):
        if not _need(buf, i + 3):
            return None
        return _length_prefixed(f"ESC ( {chr(buf[i + 2])}", buf, i, 3)
    spec = _ESC_FIXED.get(code)
    if spec is None:
        return _unknown(buf, i, 2)
    return _fixed(spec[0], buf, i, 2, spec[1])


def _parse_user_characters(buf: bytearray, i: int) -> tuple[Command, int] | None:
    """ESC & y c1 c2 [x d1..d(y*x)]...: downloads glyphs; parsed only to be skipped exactly."""
    if not _need(buf, i + 5):
        return None
    height, first, last = buf[i + 2], buf[i + 3], buf[i + 4]
    position = i + 5
    for _ in range(max(0, last - first + 1)):
        if not _need(buf, position + 1):
            return None
        position += 1 + height * buf[position]
    if not _need(buf, position):
        return None
    return Command("ESC &", (height, first, last), size=position - i), position


def _parse_gs(buf: bytearray, i: int) -> tuple[Command, int] | None:
    if not _need(buf, i + 2):
        return None
    code = buf[i + 1]
    if code == ord("("):
        if not _need(buf, i + 3):
            return None
        return _length_prefixed(f"GS ( {chr(buf[i + 2])}", buf, i, 3)
    if code == ord("V"):
        if not _need(buf, i + 3):
            return None
        mode = buf[i + 2]
        if mode in (65, 66, 97, 98, 103, 104):
            return _fixed("GS V", buf, i, 2, 2)
        return Command("GS V", (mode,), size=3), i + 3
    if code == ord("k"):
        return _parse_barcode(buf, i)
    if code == ord("v"):
        if not _need(buf, i + 8):
            return None
        if buf[i + 2] != ord("0"):
            return _unknown(buf, i, 3)
        mode = buf[i + 3]
        width_bytes, height = buf[i + 4] | buf[i + 5] << 8, buf[i + 6] | buf[i + 7] << 8
        end = i + 8 + width_bytes * height
        if not _need(buf, end):
            return None
        args = (mode, width_bytes, height)
        return Command("GS v 0", args, bytes(buf[i + 8 : end]), end - i), end
    if code == ord("8"):
        if not _need(buf, i + 7):
            return None
        if buf[i + 2] != ord("L"):
            return _unknown(buf, i, 3)
        length = int.from_bytes(buf[i + 3 : i + 7], "little")
        end = i + 7 + length
        if not _need(buf, end):
            return None
        # Same payload as GS ( L, only with a four-byte length.
        return Command("GS ( L", data=bytes(buf[i + 7 : end]), size=end - i), end
    if code == ord("*"):
        if not _need(buf, i + 4):
            return None
        end = i + 4 + buf[i + 2] * buf[i + 3] * 8
        if not _need(buf, end):
            return None
        return Command("GS *", (buf[i + 2], buf[i + 3]), bytes(buf[i + 4 : end]), end - i), end
    spec = _GS_FIXED.get(code)
    if spec is None:
        return _unknown(buf, i, 2)
    return _fixed(spec[0], buf, i, 2, spec[1])


def _parse_barcode(buf: bytearray, i: int) -> tuple[Command, int] | None:
    """GS k m d1..dk NUL (function A, m 0..6) or GS k m n d1..dn (function B, m 65..)."""
    if not _need(buf, i + 3):
        return None
    symbology = buf[i + 2]
    if symbology <= 6:
        stop = buf.find(NUL, i + 3, i + 3 + _MAX_FUNCTION_A_BARCODE + 1)
        if stop < 0:
            if len(buf) - (i + 3) > _MAX_FUNCTION_A_BARCODE:
                return _unknown(buf, i, 3)
            return None
        return Command("GS k", (symbology,), bytes(buf[i + 3 : stop]), stop + 1 - i), stop + 1
    if not _need(buf, i + 4):
        return None
    end = i + 4 + buf[i + 3]
    if not _need(buf, end):
        return None
    return Command("GS k", (symbology,), bytes(buf[i + 4 : end]), end - i), end


def _parse_dle(buf: bytearray, i: int) -> tuple[Command, int] | None:
    if not _need(buf, i + 2):
        return None
    code = buf[i + 1]
    if code == EOT:
        if not _need(buf, i + 3):
            return None
        extra = 1 if buf[i + 2] in (7, 8, 18) else 0
        return _fixed("DLE EOT", buf, i, 2, 1 + extra)
    if code == ENQ:
        return _fixed("DLE ENQ", buf, i, 2, 1)
    if code == DC4:
        if not _need(buf, i + 3):
            return None
        function = buf[i + 2]
        count = {1: 2, 2: 2, 3: 2, 7: 1, 8: 7}.get(function, 0)
        return _fixed("DLE DC4", buf, i, 2, 1 + count)
    return _unknown(buf, i, 1)


def _parse_fs(buf: bytearray, i: int) -> tuple[Command, int] | None:
    if not _need(buf, i + 2):
        return None
    code = buf[i + 1]
    if code == ord("("):
        if not _need(buf, i + 3):
            return None
        return _length_prefixed(f"FS ( {chr(buf[i + 2])}", buf, i, 3)
    if code == ord("q"):
        return _parse_nv_images(buf, i)
    spec = _FS_FIXED.get(code)
    if spec is None:
        return _unknown(buf, i, 2)
    return _fixed(spec[0], buf, i, 2, spec[1])


def _parse_nv_images(buf: bytearray, i: int) -> tuple[Command, int] | None:
    """FS q n [xL xH yL yH d...]...: defines NV images; parsed only to be skipped exactly."""
    if not _need(buf, i + 3):
        return None
    position = i + 3
    for _ in range(buf[i + 2]):
        if not _need(buf, position + 4):
            return None
        width = buf[position] | buf[position + 1] << 8
        height = buf[position + 2] | buf[position + 3] << 8
        position += 4 + width * height * 8
    if not _need(buf, position):
        return None
    return Command("FS q", (buf[i + 2],), size=position - i), position
