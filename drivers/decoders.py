"""QR and barcode decoders for camera frames, chosen by name: `zxing` (default), `zbar`, `opencv`.

Each backend's library is imported when the decoder is made, so a missing one fails at start-up
with `DecoderUnavailable` naming what to install, not mid-shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

DECODER_NAMES = ("zxing", "zbar", "opencv")


class DecoderUnavailable(RuntimeError):
    """The chosen decoder's library cannot be loaded; the message says what to install."""


@dataclass(frozen=True, slots=True)
class Symbol:
    text: str
    symbology: str  # "qr", "ean13", "code128", …


class Decoder(Protocol):
    name: str

    def decode(self, frame: np.ndarray) -> list[Symbol]:
        """Every symbol found in a BGR or greyscale frame."""
        ...


def load_decoder(name: str) -> Decoder:
    """The decoder called `name`; raises DecoderUnavailable (or ValueError for an unknown name)."""
    if name == "zxing":
        return ZxingDecoder()
    if name == "zbar":
        return ZbarDecoder()
    if name == "opencv":
        return OpencvDecoder()
    raise ValueError(f"unknown decoder {name!r}; one of {', '.join(DECODER_NAMES)}")


def _grey(frame: np.ndarray) -> np.ndarray:
    import cv2

    if frame.ndim == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return frame


def _symbology_name(raw: str) -> str:
    name = raw.lower().replace("-", "").replace(" ", "").replace("_", "")
    return {"qrcode": "qr", "upca": "upca", "i25": "itf"}.get(name, name)


class ZxingDecoder:
    """zxing-cpp tuned for a till camera: one QR pass at full resolution, then linear codes.

    Restricting formats and skipping the inverted and 90°-rotated retries cuts decode time to a
    fraction of zxing-cpp's defaults. Linear barcodes are searched on every 4th row (and every 4th
    column, for barcodes held upright): a 1-D code is the same on neighbouring lines.
    """

    name = "zxing"

    def __init__(self, *, linear: bool = True, try_invert: bool = False) -> None:
        try:
            import zxingcpp
        except ImportError as exc:
            raise DecoderUnavailable(
                "the zxing decoder needs zxing-cpp: pip install zxing-cpp"
            ) from exc
        self._zx = zxingcpp
        self._qr = zxingcpp.BarcodeFormat.QRCode
        self._linear = (
            zxingcpp.barcode_formats_from_str("EAN13,EAN8,UPCA,UPCE,Code128,Code39,ITF")
            if linear
            else None
        )
        self._try_invert = try_invert

    def decode(self, frame: np.ndarray) -> list[Symbol]:
        grey = _grey(frame)
        found = self._read(grey, self._qr, downscale=True)
        if found or self._linear is None:
            return found
        found = self._read(np.ascontiguousarray(grey[::4]), self._linear, downscale=False)
        if not found:
            found = self._read(np.ascontiguousarray(grey[:, ::4].T), self._linear, downscale=False)
        return found

    def _read(self, grey: np.ndarray, formats: Any, *, downscale: bool) -> list[Symbol]:
        results = self._zx.read_barcodes(
            grey,
            formats=formats,
            try_rotate=False,
            try_invert=self._try_invert,
            try_downscale=downscale,
        )
        return [Symbol(r.text, _symbology_name(str(r.format))) for r in results if r.valid]


class ZbarDecoder:
    """pyzbar over the system libzbar (slower; kept for sites that standardised on zbar)."""

    name = "zbar"

    def __init__(self) -> None:
        try:
            from pyzbar import pyzbar
        except ImportError as exc:
            raise DecoderUnavailable(
                "the zbar decoder needs pyzbar and the system zbar library: "
                "pip install pyzbar; apt-get install libzbar0 (brew install zbar on macOS)"
            ) from exc
        self._pyzbar = pyzbar

    def decode(self, frame: np.ndarray) -> list[Symbol]:
        results = self._pyzbar.decode(_grey(frame))
        return [
            Symbol(r.data.decode("utf-8", errors="replace"), _symbology_name(r.type))
            for r in results
        ]


class OpencvDecoder:
    """OpenCV's ArUco-based QR detector (QR only; no extra dependency beyond OpenCV)."""

    name = "opencv"

    def __init__(self) -> None:
        try:
            import cv2

            self._detector = cv2.QRCodeDetectorAruco()
        except (ImportError, AttributeError) as exc:
            raise DecoderUnavailable(
                "the opencv decoder needs OpenCV 4.8 or later with QRCodeDetectorAruco: "
                "pip install opencv-python-headless"
            ) from exc

    def decode(self, frame: np.ndarray) -> list[Symbol]:
        ok, texts, _points, _straight = self._detector.detectAndDecodeMulti(_grey(frame))
        if not ok:
            return []
        return [Symbol(text, "qr") for text in texts if text]
