"""Receipt build + ESC/POS render time for a 40-line receipt with two QR coupons.

Build (the document from a committed sale's stored result), layout for the printer's columns and
python-escpos rendering, per printer model: TM-T88V (42 columns, native QR) is the target case;
TM-T20II (48 columns) and POS-5890 (58 mm, no native QR, so two raster QR images) are shown for
comparison. Target: median ≤ 5 ms on the native-QR printer.

    .venv/bin/python bench/receipt.py [--runs 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Stats, console, results_table, verdict
from drivers.receipt_escpos import document_to_escpos, receipt_columns
from pos_loyalty.receipts.build import ReceiptInput, receipt_from_input
from pos_loyalty.receipts.sample import SAMPLE_STORE, sample_receipt_input

TARGET_MEDIAN_MS = 5.0
LINES = 40
PRINTERS = [("TM-T88V", 80, True), ("TM-T20II", 80, False), ("POS-5890", 58, False)]


def time_printer(data: ReceiptInput, profile: str, width_mm: int, runs: int) -> tuple[Stats, int]:
    size = 0
    for _ in range(20):  # warm caches (profiles, babel, code pages)
        size = len(
            document_to_escpos(
                receipt_from_input(data, store=SAMPLE_STORE), profile=profile, width_mm=width_mm
            )
        )
    seconds: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        document = receipt_from_input(data, store=SAMPLE_STORE)
        document_to_escpos(document, profile=profile, width_mm=width_mm)
        seconds.append(time.perf_counter() - start)
    return Stats.of(seconds), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    data = sample_receipt_input(lines=LINES)
    rows: list[list[str]] = []
    for profile, width_mm, is_target in PRINTERS:
        stats, size = time_printer(data, profile, width_mm, args.runs)
        target = f"≤ {TARGET_MEDIAN_MS:g}" if is_target else "-"
        outcome = verdict(stats.median_ms <= TARGET_MEDIAN_MS) if is_target else "(reference)"
        rows.append(
            [
                f"{profile} ({receipt_columns(profile, width_mm)} col)",
                f"{stats.median_ms:.2f}",
                f"{stats.p99_ms:.2f}",
                f"{size:,}",
                target,
                outcome,
            ]
        )
    console.print(f"{LINES}-line receipt, 2 QR coupons, {args.runs} runs per printer")
    results_table(
        "receipt build + ESC/POS render",
        ["printer", "median ms", "p99 ms", "bytes", "target median ms", "verdict"],
        rows,
    )


if __name__ == "__main__":
    main()
