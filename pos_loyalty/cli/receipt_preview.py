"""Composition of the receipt PNG preview: ESC/POS bytes from the printer driver, printed by the
simulated printer, which draws them exactly as the paper would look.

Imports of `drivers` and `firmware_sim` stay inside the function (the core never loads an adapter
at import time); pass `render_receipt_png` to `create_app(..., receipt_png=...)`.
"""

from __future__ import annotations

from pos_loyalty.receipts.document import ReceiptDocument


def render_receipt_png(
    document: ReceiptDocument, *, profile: str, width_mm: int | None = None
) -> bytes:
    """The PNG of `document` printed on a virtual printer of model `profile` (a python-escpos
    profile name) with paper `width_mm` wide (the profile's own paper when None)."""
    from drivers.receipt_escpos import document_to_escpos
    from firmware_sim.printer import VirtualPrinter

    data = document_to_escpos(document, profile=profile, width_mm=width_mm)
    printer = VirtualPrinter(
        profile, paper_mm=None, paper_width_mm=float(width_mm) if width_mm else None
    )
    printer.feed(data)
    receipt = printer.receipts[-1] if printer.receipts else printer.tear_off()
    if receipt is None:  # pragma: no cover - a receipt always prints something
        raise RuntimeError("the virtual printer printed nothing for this receipt")
    return receipt.png
