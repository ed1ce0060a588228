"""Drill: the database goes away under load (PostgreSQL: every connection cut, new ones refused).

Tills commit sales; mid-rush the drill terminates the service's database sessions and refuses
new ones for `--outage-s` seconds, then lets them back. Tills that hear 503 (or nothing) retry the
same sale with the same Idempotency-Key until it goes through, as a till should. Afterwards the
audit of tests/crash_drill.py: every acknowledged sale there, none sold twice, sums hold. Prints
what it tried and what was lost (the target: nothing).

    .venv/bin/python bench/outage_drill.py [--outage-s 5] [--sales 50] [--tills 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from bench.common import console, free_port, pg_server_url, results_table, throwaway_database
from tests.crash_drill import Rush, Server, audit, enrol_customer, till_key, write_store_config


def set_outage(server_url: str, database: str, *, down: bool) -> None:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            allow = "false" if down else "true"
            conn.exec_driver_sql(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {allow}')
            if down:
                conn.exec_driver_sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{database}' AND pid <> pg_backend_pid()"
                )
    finally:
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage-s", type=float, default=5.0)
    parser.add_argument("--sales", type=int, default=50, help="acknowledged before the outage")
    parser.add_argument("--tills", type=int, default=8)
    args = parser.parse_args()
    pg = pg_server_url()
    if pg is None:
        console.print("[red]no PostgreSQL server answers (POS_LOYALTY_BENCH_PG)[/]")
        return 2
    with tempfile.TemporaryDirectory(prefix="outage-drill-") as folder:
        workdir = Path(folder)
        with throwaway_database("pg", workdir) as url:
            port = free_port()
            server = Server(write_store_config(workdir, url, port), port, workdir / "server.log")
            server.start()
            try:
                headers = {"Authorization": f"Bearer {till_key(server.config)}"}
                rush = Rush(server.url, headers, enrol_customer(server, headers), tills=args.tills)
                rush.stop_on_transport_error = False
                rush.start()
                try:
                    rush.wait_for_sales(args.sales)
                    before = len(rush.acknowledged)
                    set_outage(pg, str(make_url(url).database), down=True)
                    time.sleep(args.outage_s)  # the outage's length is what the drill is about
                    during = len(rush.acknowledged) - before
                    set_outage(pg, str(make_url(url).database), down=False)
                    rush.wait_for_sales(len(rush.acknowledged) + args.sales)
                finally:
                    rush.stop()
                found = audit(server, rush)
            finally:
                server.stop()
    results_table(
        f"PostgreSQL outage of {args.outage_s:.0f} s under {args.tills} tills",
        [
            "acknowledged",
            "during the outage",
            "refused (status: count)",
            "lost",
            "sold twice",
            "retry failed",
            "points / spend off",
            "ledger problems",
        ],
        [
            [
                str(found.acknowledged),
                str(during),
                ", ".join(f"{k}: {v}" for k, v in sorted(rush.refused.items())) or "—",
                str(len(found.lost)),
                str(len(found.sold_twice)),
                str(len(found.retries_failed)),
                f"{found.balance_off} / {found.spend_off}",
                str(len(found.ledger_problems)),
            ]
        ],
    )
    console.print(
        "lost: [green]nothing[/] (target: nothing)" if found.clean else f"[red]{found}[/]"
    )
    # An outage is a 503 the till retries; any other refusal is the service failing it.
    unclear = {status: n for status, n in rush.refused.items() if int(status) != 503}
    console.print(
        f"[red]refused other than with 503: {unclear}[/]"
        if unclear
        else "refusals: [green]all 503[/] (target: only 503, the answer a till retries)"
    )
    return 0 if found.clean and not unclear else 1


if __name__ == "__main__":
    raise SystemExit(main())
