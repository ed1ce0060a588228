"""How wide a lane's receipt is, in dots and in columns: one answer for the driver, the layout and
the API, from the printer's python-escpos capability profile and the roll the lane has.

A profile describes its printer on its own roll (TM-T88V: 512 dots at 180 dpi, 80 mm; POS-5890:
384 dots at 203 dpi, 58 mm). On the other roll width the printable width is the one printers of
that resolution have: 72 mm on 80 mm paper, and on 58 mm paper 50.8 mm at 180 dpi (Epson TM-T88:
360 dots) or 48 mm at 203 dpi (384 dots). Font A is as wide as the profile's own figures make it
(about 12 dots), so a TM-T88V prints 42 columns on 80 mm and 30 on 58 mm, a TM-T20II 48 and 32.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pos_loyalty.receipts.layout import SUPPORTED_COLUMNS

_FONT_A_DOTS = 12  # Epson and most clones: Font A is 12 x 24 dots
_PRINTABLE_80_MM = 72.0


class UnknownPrinterProfile(ValueError):
    """The configured profile is not one python-escpos knows."""


@dataclass(frozen=True, slots=True)
class PrintWidth:
    dots: int  # dots per line the head prints
    columns: int  # Font A characters per line
    layout_columns: int  # the widest receipt layout that fits (SUPPORTED_COLUMNS)


@lru_cache(maxsize=64)
def profile_data(profile: str) -> dict[str, Any]:
    """python-escpos' capability data for `profile` (imported here, lazily)."""
    from escpos.capabilities import get_profile

    try:
        data: dict[str, Any] = get_profile(profile).profile_data
    except KeyError:
        raise UnknownPrinterProfile(
            f"unknown printer profile {profile!r}; use a python-escpos profile name such as "
            f"'TM-T88V', 'TM-T20II' or 'POS-5890'"
        ) from None
    return data


def printable_mm(width_mm: int, dpi: int) -> float:
    """The printable width of a roll at a resolution (see the module docstring)."""
    if width_mm >= 76:
        return _PRINTABLE_80_MM
    return 50.8 if dpi == 180 else 48.0


def _roll_class(mm: object) -> int | None:
    """Which roll a profile's own `media.width.mm` describes (some give the printable width)."""
    if not isinstance(mm, int | float):
        return None
    return 80 if mm >= 70 else 58


@lru_cache(maxsize=64)
def print_width(profile: str, width_mm: int) -> PrintWidth:
    """Dots and columns of `profile` on a `width_mm` (58 or 80) roll."""
    data = profile_data(profile)
    media = data.get("media", {})
    width = media.get("width", {})
    dpi = media.get("dpi") if isinstance(media.get("dpi"), int) else 180
    own_pixels = width.get("pixels") if isinstance(width.get("pixels"), int) else None
    if own_pixels is not None and _roll_class(width.get("mm")) == (80 if width_mm >= 76 else 58):
        dots = int(own_pixels)
    else:
        dots = int(round(printable_mm(width_mm, dpi) / 25.4 * dpi / 8) * 8)
    font_a = data.get("fonts", {}).get("0", {})
    own_columns = font_a.get("columns")
    char_dots = _FONT_A_DOTS
    if own_pixels and isinstance(own_columns, int) and own_columns > 0:
        measured = own_pixels // own_columns
        if 9 <= measured <= 13:  # a profile's figures that describe a real Font A
            char_dots = measured
    columns = dots // char_dots
    fitting = [c for c in SUPPORTED_COLUMNS if c <= columns]
    return PrintWidth(dots, columns, max(fitting) if fitting else min(SUPPORTED_COLUMNS))
