"""Printer models: paper width in dots, resolution, fonts and the code page table behind ESC t.

Slot numbers come from python-escpos's capabilities data, so a printer simulated as "TM-T88V"
decodes `ESC t 17` as CP866 exactly as python-escpos, configured with that profile, encodes it.
Different models put CP866 at different slots (17 on Epson, 59 on many Chinese 80 mm models).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_PROFILE = "TM-T88V"

# Used when python-escpos's capabilities file cannot be found: the Epson slot numbers.
_FALLBACK_CODE_PAGES = {0: "CP437", 2: "CP850", 16: "CP1252", 17: "CP866", 46: "CP1251"}
_FALLBACK_ENCODINGS: dict[str, dict[str, Any]] = {
    name: {"python_encode": name.lower()} for name in _FALLBACK_CODE_PAGES.values()
}


@dataclass(frozen=True)
class PrinterProfile:
    """What the print mechanism of one printer model looks like to the byte stream."""

    name: str
    dots_per_line: int
    dpi: int
    paper_width_mm: float
    code_pages: Mapping[int, str] = field(default_factory=dict)  # ESC t slot -> encoding name
    features: frozenset[str] = frozenset()
    vendor: str = ""

    def code_page_name(self, slot: int) -> str | None:
        return self.code_pages.get(slot)

    def upper_half(self, slot: int) -> str:
        """The characters bytes 0x80..0xFF print as under code page `slot` (CP437 if unknown)."""
        name = self.code_pages.get(slot)
        if name is None:
            log.warning("%s has no code page at ESC t %d; printing as CP437", self.name, slot)
            name = "CP437"
        return _upper_half(name)

    def default_line_spacing(self) -> int:
        """1/6 inch in dots, the power-on line spacing (ESC 2)."""
        return round(self.dpi / 6)


def printable_width_mm(paper_width_mm: float, dpi: int = 203) -> float:
    """The printable width of a roll: 72 mm on 80 mm paper; on 58 mm paper 50.8 mm on a 180 dpi
    head (Epson TM-T88: 360 dots) and 48 mm on a 203 dpi one (384 dots)."""
    if paper_width_mm >= 76:
        return 72.0
    if paper_width_mm >= 56:
        return 50.8 if dpi == 180 else 48.0
    return max(paper_width_mm - 8.0, 8.0)


def dots_for_width(paper_width_mm: float, dpi: int) -> int:
    """Dots per line for a roll width at a resolution, rounded to whole bytes as heads are built."""
    dots = printable_width_mm(paper_width_mm, dpi) / 25.4 * dpi
    return max(8, round(dots / 8) * 8)


def available_profiles() -> list[str]:
    return sorted(_capabilities()["profiles"])


def load_profile(
    name: str = DEFAULT_PROFILE, *, paper_width_mm: float | None = None, dpi: int | None = None
) -> PrinterProfile:
    """The profile python-escpos knows by `name`; `paper_width_mm`/`dpi` override its media."""
    capabilities = _capabilities()
    profiles = capabilities["profiles"]
    if name not in profiles:
        raise KeyError(f"unknown printer profile {name!r}; known: {', '.join(sorted(profiles))}")
    if paper_width_mm is not None and not 56 <= paper_width_mm <= 82:
        raise ValueError(
            f"paper width {paper_width_mm:g} mm: the simulator prints on 58 mm and 80 mm rolls"
        )
    data = profiles[name]
    media = data.get("media", {})
    width = media.get("width", {})
    profile_dpi = media.get("dpi")
    resolved_dpi = dpi or (profile_dpi if isinstance(profile_dpi, int) else 203)
    known_mm = width.get("mm") if isinstance(width.get("mm"), int | float) else None
    known_pixels = width.get("pixels") if isinstance(width.get("pixels"), int) else None
    if paper_width_mm is not None and paper_width_mm != known_mm:
        dots = dots_for_width(paper_width_mm, resolved_dpi)
        mm = paper_width_mm
    elif known_pixels is not None and (dpi is None or dpi == profile_dpi):
        dots = known_pixels
        mm = known_mm or 80.0
    else:
        mm = known_mm or 80.0
        dots = dots_for_width(mm, resolved_dpi)
    code_pages = {int(slot): enc for slot, enc in data.get("codePages", {}).items()}
    features = frozenset(k for k, v in data.get("features", {}).items() if v)
    return PrinterProfile(
        name=name,
        dots_per_line=dots,
        dpi=resolved_dpi,
        paper_width_mm=float(mm),
        code_pages=code_pages,
        features=features,
        vendor=str(data.get("vendor", "")),
    )


@cache
def _upper_half(encoding: str) -> str:
    spec = _capabilities()["encodings"].get(encoding, {})
    if "data" in spec:
        chars = "".join(spec["data"])
        if len(chars) == 128:
            return _without_controls(chars)
    codec = spec.get("python_encode")
    if codec is None:
        log.warning("no character table for code page %s; printing as CP437", encoding)
        codec = "cp437"
    chars = "".join(
        bytes([b]).decode(codec, errors="replace").replace("\ufffd", "?") or "?"
        for b in range(0x80, 0x100)
    )
    return _without_controls(chars)


def _without_controls(chars: str) -> str:
    """Control codes (the C1 block of the ISO 8859 pages) have no glyph: they print as "?"."""
    return "".join("?" if unicodedata.category(c) == "Cc" else c for c in chars)


@cache
def _capabilities() -> dict[str, Any]:
    path = _capabilities_path()
    if path is None:
        log.warning("python-escpos capabilities not found; using built-in Epson code pages")
        fallback = {
            "media": {"dpi": 180, "width": {"mm": 80, "pixels": 512}},
            "codePages": {str(k): v for k, v in _FALLBACK_CODE_PAGES.items()},
            "features": {"qrCode": True, "barcodeB": True},
        }
        return {
            "profiles": {"default": fallback, DEFAULT_PROFILE: fallback},
            "encodings": _FALLBACK_ENCODINGS,
        }
    with path.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def _capabilities_path() -> Path | None:
    override = os.environ.get("ESCPOS_CAPABILITIES_FILE")
    if override and Path(override).suffix == ".json" and Path(override).exists():
        return Path(override)
    spec = importlib.util.find_spec("escpos")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "capabilities.json"
        if candidate.exists():
            return candidate
    return None
