"""Drill: kill -9 under load, on SQLite and on PostgreSQL.

Tills commit sales as fast as the server takes them; after `--sales` acknowledged sales the server
is killed with SIGKILL mid-rush, restarted, and audited (tests/crash_drill.py, the same drill the
e2e test runs once): every acknowledged sale is there, a replay with its key never sells twice,
the sales the tills never heard back about are retried with their keys and sold at most once, and
the customer's balance, lifetime spend and every ledger sum. Prints what it tried and what was lost
(the target: nothing).

    .venv/bin/python bench/kill_drill.py [--rounds 3] [--sales 100] [--tills 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import console, free_port, pg_server_url, results_table, throwaway_database
from tests.crash_drill import Audit, Server, kill_during_rush, write_store_config


def drill(kind: str, sales: int, tills: int, workdir: Path) -> Audit:
    with throwaway_database(kind, workdir) as url:
        port = free_port()
        server = Server(write_store_config(workdir, url, port), port, workdir / "server.log")
        try:
            return kill_during_rush(server, sales_before_kill=sales, tills=tills)
        finally:
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="kills per database")
    parser.add_argument("--sales", type=int, default=100, help="acknowledged sales before a kill")
    parser.add_argument("--tills", type=int, default=8)
    args = parser.parse_args()
    kinds = ["sqlite"] + (["pg"] if pg_server_url() else [])
    if "pg" not in kinds:
        console.print("[yellow]no PostgreSQL server answers: SQLite only[/]")
    rows, clean = [], True
    for kind in kinds:
        for n in range(args.rounds):
            with tempfile.TemporaryDirectory(prefix="kill-drill-") as folder:
                found = drill(kind, args.sales, args.tills, Path(folder))
            clean &= found.clean
            rows.append(
                [
                    f"{kind} #{n + 1}",
                    str(found.acknowledged),
                    str(found.retried),
                    str(len(found.lost)),
                    str(len(found.sold_twice)),
                    str(len(found.retries_failed)),
                    f"{found.balance_off} / {found.spend_off}",
                    str(len(found.ledger_problems)),
                ]
            )
    results_table(
        f"kill -9 under load: {args.tills} tills, SIGKILL after {args.sales} acknowledged sales",
        [
            "database",
            "acknowledged",
            "unanswered, retried",
            "lost",
            "sold twice",
            "retry failed",
            "points / spend off",
            "ledger problems",
        ],
        rows,
    )
    console.print(
        "lost: [green]nothing[/] (target: nothing)" if clean else "[red]something was lost[/]"
    )
    return 0 if clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
