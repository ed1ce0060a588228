"""The PNG preview's port: the HTTP adapter may not import drivers or the simulated printer, so the
composition root hands it a function that renders a document to PNG (see `cli.receipt_preview`)."""

from __future__ import annotations

from typing import Protocol

from pos_loyalty.receipts.document import ReceiptDocument

DEFAULT_PREVIEW_PROFILE = "TM-T88V"


class ReceiptPngRenderer(Protocol):
    def __call__(
        self, document: ReceiptDocument, *, profile: str, width_mm: int | None = None
    ) -> bytes:
        """The receipt as the printer model `profile` would print it, as a PNG."""
        ...
