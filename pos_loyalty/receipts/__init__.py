"""Receipts as documents: built from a committed sale, laid out for 32/42/48 columns, as text.

Rendering to ESC/POS lives in `drivers.receipt_escpos`; the PNG preview is composed in
`pos_loyalty.cli.receipt_preview` (driver bytes through the simulated printer).
"""

from pos_loyalty.receipts.build import (
    ReceiptInput,
    ReceiptNotFound,
    build_receipt,
    receipt_from_input,
)
from pos_loyalty.receipts.document import (
    DiscountEntry,
    IssuedCoupon,
    LoyaltyBlock,
    PointsExpiry,
    ReceiptDocument,
    ReceiptItem,
    RefundBlock,
    StampCard,
    StoreHeader,
    Totals,
)
from pos_loyalty.receipts.layout import (
    SUPPORTED_COLUMNS,
    Align,
    Cut,
    Feed,
    LaidOutLine,
    LaidOutReceipt,
    QrBlock,
    TextLine,
    layout_receipt,
)
from pos_loyalty.receipts.text import render_text

__all__ = [
    "SUPPORTED_COLUMNS",
    "Align",
    "Cut",
    "DiscountEntry",
    "Feed",
    "IssuedCoupon",
    "LaidOutLine",
    "LaidOutReceipt",
    "LoyaltyBlock",
    "PointsExpiry",
    "QrBlock",
    "ReceiptDocument",
    "ReceiptInput",
    "ReceiptItem",
    "ReceiptNotFound",
    "RefundBlock",
    "StampCard",
    "StoreHeader",
    "TextLine",
    "Totals",
    "build_receipt",
    "layout_receipt",
    "receipt_from_input",
    "render_text",
]
