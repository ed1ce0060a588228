"""Drill: the disk under the SQLite database fills up under load, then space returns.

A real `pos-loyalty serve` keeps its database on a small tmpfs (mounting needs root); tills commit
sales; mid-rush a ballast file takes every free byte for `--full-s` seconds, then is deleted. The
service must refuse new sales early (503 disk_low, Retry-After) instead of failing half way, and
come back by itself; tills retry with the same Idempotency-Key. Afterwards the audit of
tests/crash_drill.py: every acknowledged sale there, none sold twice, sums hold. Prints what it
tried and what was lost (the target: nothing).

    .venv/bin/python bench/disk_full_drill.py [--disk-mb 24] [--full-s 5] [--sales 50]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _pytest.outcomes import Skipped

from bench.common import console, free_port, results_table
from tests.crash_drill import Rush, Server, audit, enrol_customer, till_key, write_store_config
from tests.filesystems import fill, tiny_filesystem


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--disk-mb", type=int, default=24)
    parser.add_argument("--full-s", type=float, default=5.0)
    parser.add_argument("--sales", type=int, default=50, help="acknowledged before the disk fills")
    parser.add_argument("--tills", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="disk-drill-") as folder:
        workdir = Path(folder)
        try:
            disk_context = tiny_filesystem(workdir / "disk", f"{args.disk_mb}m")
            disk = disk_context.__enter__()
        except Skipped as exc:
            console.print(f"[red]cannot run: {exc}[/]")
            return 2
        try:
            port = free_port()
            storage = "\n[storage]\nmin_free_mb = 4\nreserve_mb = 2\n"
            config = write_store_config(workdir, f"sqlite:///{disk / 'store.db'}", port, storage)
            server = Server(config, port, workdir / "server.log")
            server.start()
            try:
                headers = {"Authorization": f"Bearer {till_key(config)}"}
                rush = Rush(server.url, headers, enrol_customer(server, headers), tills=args.tills)
                rush.stop_on_transport_error = False
                rush.start()
                try:
                    rush.wait_for_sales(args.sales)
                    before = len(rush.acknowledged)
                    ballast = fill(disk)
                    time.sleep(args.full_s)  # how long the disk stays full is the drill's knob
                    during = len(rush.acknowledged) - before
                    free_when_full = shutil.disk_usage(disk).free
                    ballast.unlink()
                    rush.wait_for_sales(len(rush.acknowledged) + args.sales)
                finally:
                    rush.stop()
                found = audit(server, rush)
            finally:
                server.stop()
            wal = disk / "store.db-wal"
            wal_kib = wal.stat().st_size // 1024 if wal.exists() else 0
        finally:
            disk_context.__exit__(None, None, None)
    results_table(
        f"a {args.disk_mb} MB disk full for {args.full_s:.0f} s under {args.tills} tills",
        [
            "acknowledged",
            "while full",
            "refused (status: count)",
            "free when full",
            "WAL after",
            "lost",
            "sold twice",
            "retry failed",
            "points / spend off",
        ],
        [
            [
                str(found.acknowledged),
                str(during),
                ", ".join(f"{k}: {v}" for k, v in sorted(rush.refused.items())) or "—",
                f"{free_when_full // 1024} KiB",
                f"{wal_kib} KiB",
                str(len(found.lost)),
                str(len(found.sold_twice)),
                str(len(found.retries_failed)),
                f"{found.balance_off} / {found.spend_off}",
            ]
        ],
    )
    console.print(
        "lost: [green]nothing[/] (target: nothing)" if found.clean else f"[red]{found}[/]"
    )
    return 0 if found.clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
