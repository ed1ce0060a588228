"""A laid-out receipt as plain UTF-8 text: what `GET /v1/receipts/{id}.txt` and logs show."""

from __future__ import annotations

from pos_loyalty.receipts.layout import Align, Cut, Feed, LaidOutReceipt, QrBlock, TextLine, wrap


def _aligned(line: TextLine, columns: int) -> str:
    if line.double_width and line.align is Align.LEFT and " " in line.text:
        # A double-width pair (ИТОГО … 521,79 ₽) spans the paper: widen its gap to match.
        left, _, right = line.text.partition(" ")
        right = right.lstrip(" ")
        return left + " " * max(columns - len(left) - len(right), 1) + right
    if line.align is Align.CENTER:
        return line.text.center(columns).rstrip()
    if line.align is Align.RIGHT:
        return line.text.rjust(columns)
    return line.text.rstrip()


def render_text(receipt: LaidOutReceipt) -> str:
    """One line per printed line; double-size text shown once, a QR as its payload in brackets."""
    columns = receipt.columns
    out: list[str] = []
    for line in receipt.lines:
        if isinstance(line, TextLine):
            out.append(_aligned(line, columns))
        elif isinstance(line, QrBlock):
            out.extend(
                part.center(columns).rstrip() for part in wrap(f"[QR {line.payload}]", columns)
            )
        elif isinstance(line, Feed):
            out.extend([""] * line.lines)
        elif isinstance(line, Cut):
            break
    return "\n".join(out) + "\n"
