"""Text from outside — basket lines, names, config, head-office bundles — is data, never a command.

One definition of what a control character is, used in both directions: input that carries one is
refused where it enters (`has_control_characters`, the `PlainText` field type), and text on its way
to paper is made printable (`printable`, applied to every field of a receipt document), so that no
ESC, GS, DLE or FS sequence can reach a printer, whatever is already stored.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

# Categories refused at the door: C0, DEL and C1 controls (Cc), lone surrogates (Cs), line and
# paragraph separators (Zl, Zp). None of them belongs in a product name, an id or a label.
_REFUSED = frozenset({"Cc", "Cs", "Zl", "Zp"})
# Breaks become a space on paper, so the words on either side stay apart.
_BREAKS = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u2028\u2029")
# Invisible format characters (Cf: bidi overrides that reorder text, BOM, soft hyphen) are dropped
# from paper too, except the joiners some scripts need between letters.
_KEPT_FORMAT = frozenset("\u200c\u200d")
_DROPPED = frozenset({"Cc", "Cs", "Cf", "Zl", "Zp"})

CONTROL_CHARACTERS_MESSAGE = "must not contain control characters (NUL, ESC, tabs, line breaks …)"


def has_control_characters(text: str) -> bool:
    """True if `text` holds a character no field from outside may carry (see `_REFUSED`)."""
    if text.isprintable():  # the common case, one C call; NBSP and other spaces fall through
        return False
    return any(unicodedata.category(ch) in _REFUSED for ch in text)


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with nothing a printer could take for a command: breaks become spaces (newlines kept
    with `keep_newlines`, for multi-line store texts), other controls and format characters go."""
    if text.isprintable():
        return text
    out: list[str] = []
    for ch in text:
        if ch == "\n" and keep_newlines:
            out.append(ch)
        elif ch in _BREAKS:
            out.append(" ")
        elif ch in _KEPT_FORMAT or unicodedata.category(ch) not in _DROPPED:
            out.append(ch)
    return "".join(out)


def _refuse_control_characters(value: str) -> str:
    if has_control_characters(value):
        raise PydanticCustomError("control_characters", CONTROL_CHARACTERS_MESSAGE)
    return value


# A string field of a request body or file that may not carry control characters; the 422 names
# the field (e.g. `lines.0.name: must not contain control characters …`).
PlainText = Annotated[str, AfterValidator(_refuse_control_characters)]
