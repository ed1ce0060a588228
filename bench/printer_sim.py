"""Virtual printer throughput: parse + render of a 40-line receipt with a native QR code.

Each receipt is a distinct python-escpos byte stream (different prices, totals and QR payload, as
on a real till) fed to one `VirtualPrinter`; "render" stops at the 1-bit paper image, "+ PNG" also
encodes the PNG that `--out` writes. Shown for the TM-T88V (512 dots) and a 576-dot 80 mm model.
Target: at least 50 receipts/s on the TM-T88V (issue 5). Reference, measured in the same run: the
other end of the wire, python-escpos encoding the same receipts (the simulator should keep up).

    .venv/bin/python bench/printer_sim.py [--receipts 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from escpos.printer import Dummy

from bench.common import Stats, console, results_table, verdict
from firmware_sim.printer import VirtualPrinter

TARGET_RECEIPTS_PER_S = 50.0
LINES = 40
PROFILES = ["TM-T88V", "NT-80-V-UL"]
GOODS = ["Молоко 3,2% 1 л", "Хлеб Бородинский", "Сыр Российский", "Кофе молотый 250 г",
         "Яблоки Гала 1 кг", "Вода 1,5 л", "Шоколад тёмный", "Йогурт греческий"]  # fmt: skip


def receipt_bytes(number: int, profile: str) -> bytes:
    """A 40-line sale as python-escpos sends it: title, goods, totals, loyalty QR, cut."""
    job = Dummy(profile=profile)
    job.set(align="center", bold=True, double_width=True, double_height=True)
    job.textln("Магазин у дома")
    job.set(normal_textsize=True, bold=False)
    job.textln(f"Чек № {number:06d}   Касса 1")
    job.set(align="left")
    total = 0
    for line in range(LINES - 6):
        price = 4_990 + (number * 37 + line * 101) % 50_000
        total += price
        name = GOODS[(number + line) % len(GOODS)]
        job.textln(f"{name:<28}{price // 100:>7},{price % 100:02d}"[:42])
    job.set(bold=True)
    job.textln(f"{'ИТОГО':<28}{total // 100:>7},{total % 100:02d}")
    job.set(bold=False, font="b")
    job.textln("Начислено баллов: 17. Купон на 70 руб. до 18.05")
    job.set(font="a", align="center")
    job.qr(f"PLQ1.c{number}.1700000000.K5QW3ZB2", native=True, size=4)
    job.textln("Спасибо за покупку!")
    job.cut()
    return bytes(job.output)


def run(profile: str, receipts: int, with_png: bool) -> tuple[Stats, float]:
    streams = [receipt_bytes(number, profile) for number in range(receipts)]
    printer = VirtualPrinter(profile, paper_mm=None, keep_receipts=1)
    printer.feed(receipt_bytes(10**6, profile))  # warm the glyph cache as a running printer has
    seconds: list[float] = []
    started = time.perf_counter()
    for data in streams:
        begin = time.perf_counter()
        printer.feed(data)
        if with_png:
            _ = printer.receipts[-1].png
        seconds.append(time.perf_counter() - begin)
    elapsed = time.perf_counter() - started
    assert printer.receipt_count == receipts + 1
    return Stats.of(seconds), receipts / elapsed


def encode_reference(profile: str, receipts: int) -> tuple[Stats, float]:
    """python-escpos building the same byte streams: what a till does per receipt."""
    receipt_bytes(10**6, profile)  # load the profile and code pages once, as a running till has
    seconds: list[float] = []
    started = time.perf_counter()
    for number in range(receipts):
        begin = time.perf_counter()
        receipt_bytes(number, profile)
        seconds.append(time.perf_counter() - begin)
    return Stats.of(seconds), receipts / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=300)
    args = parser.parse_args()
    rows: list[list[str]] = []
    for profile in PROFILES:
        stats, throughput = encode_reference(profile, args.receipts)
        rows.append(
            [
                f"{profile} python-escpos encode",
                f"{stats.median_ms:.2f}",
                f"{stats.p99_ms:.2f}",
                f"{throughput:.0f}",
                "",
                "(reference)",
            ]
        )
        for with_png in (False, True):
            stats, throughput = run(profile, args.receipts, with_png)
            target = profile == "TM-T88V"
            rows.append(
                [
                    f"{profile} parse + render{' + PNG' if with_png else ''}",
                    f"{stats.median_ms:.2f}",
                    f"{stats.p99_ms:.2f}",
                    f"{throughput:.0f}",
                    f"≥ {TARGET_RECEIPTS_PER_S:.0f}" if target else "",
                    verdict(throughput >= TARGET_RECEIPTS_PER_S) if target else "",
                ]
            )
    results_table(
        f"Virtual printer: {args.receipts} distinct {LINES}-line receipts with a QR",
        ["case", "median ms", "p99 ms", "receipts/s", "target", "verdict"],
        rows,
    )
    console.print("Single thread, in process; the TCP path adds one socket read per chunk.")


if __name__ == "__main__":
    main()
