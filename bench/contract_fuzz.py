"""Drill: schemathesis, the long run, against a real `pos-loyalty serve` on SQLite and PostgreSQL.

The e2e test runs 3 seeded examples per operation; this runs many more, unseeded (new inputs every
run), through every phase: examples, coverage (boundary and invalid values), fuzzing and stateful
sequences (enrol → identify → sell → refund). Prints what it tried and what failed (the target:
no server error, no schema violation).

    .venv/bin/python bench/contract_fuzz.py [--examples 50]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import console, free_port, pg_server_url, results_table, throwaway_database
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.apikeys.service import create_key
from tests.contract import CHECKS, schemathesis_command
from tests.crash_drill import Server, open_store, write_store_config


def admin_key(config: Path) -> str:
    store = open_store(config)
    try:
        with store.uow(write=True) as uow:
            return create_key(uow=uow, scope=Scope.ADMIN, label="contract fuzz")
    finally:
        store.close()


def fuzz(kind: str, examples: int, workdir: Path) -> tuple[int, str]:
    with throwaway_database(kind, workdir) as url:
        port = free_port()
        server = Server(write_store_config(workdir, url, port), port, workdir / "server.log")
        server.start()  # migrates the database
        try:
            token = admin_key(server.config)
            run = subprocess.run(
                schemathesis_command(
                    server.url, token, examples=examples, report_dir=workdir, seed=None
                ),
                capture_output=True,
                text=True,
            )
        finally:
            server.stop()
    return run.returncode, run.stdout


def figure(pattern: str, text: str) -> str:
    """The last match of `pattern` in schemathesis' report (its summary comes last)."""
    found = re.findall(pattern, text)
    return str(found[-1]) if found else "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=50, help="per operation and phase")
    args = parser.parse_args()
    kinds = ["sqlite"] + (["pg"] if pg_server_url() else [])
    console.print(f"checks: {', '.join(CHECKS)}")
    rows, clean = [], True
    for kind in kinds:
        with tempfile.TemporaryDirectory(prefix="contract-fuzz-") as folder:
            code, out = fuzz(kind, args.examples, Path(folder))
        clean &= code == 0
        if code != 0:
            console.print(out[-8000:], markup=False)
        rows.append(
            [
                kind,
                figure(r"Tested: (\d+)", out),
                figure(r"(\d+) generated", out),
                figure(r"API Links:\s+(\d+ covered / \d+)", out),
                figure(r"found (\d+) unique failures", out) if code else "0",
                figure(r" in ([\d.]+s) =", out),
            ]
        )
    results_table(
        f"schemathesis, {args.examples} examples per operation, every phase",
        ["database", "operations", "test cases", "stateful links", "failures", "time"],
        rows,
    )
    console.print(
        "server errors and schema violations: [green]none[/] (target: none)"
        if clean
        else "[red]failures found (above)[/]"
    )
    return 0 if clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
