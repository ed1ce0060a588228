"""What the benchmarks share: timing statistics, a results table, throwaway databases, a server."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
console = Console(width=None if sys.stdout.isatty() else 120)


@dataclass
class Stats:
    """Latency figures in milliseconds."""

    n: int
    median_ms: float
    p99_ms: float
    mean_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Stats:
        ms = sorted(s * 1000 for s in seconds)
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        return cls(len(ms), statistics.median(ms), p99, statistics.fmean(ms))


def results_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right" if column != columns[0] else "left")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def verdict(ok: bool) -> str:
    return "[green]met[/]" if ok else "[red]missed[/]"


def pg_server_url() -> str | None:
    """The PostgreSQL server to benchmark on, if one answers (POS_LOYALTY_BENCH_PG overrides)."""
    url = os.environ.get("POS_LOYALTY_BENCH_PG", DEFAULT_PG)
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
    except Exception:
        return None
    return url


@contextmanager
def throwaway_database(kind: str, workdir: Path) -> Iterator[str]:
    """A fresh database URL of `kind` ('sqlite' or 'pg'), removed afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:6]}.db'}"
        return
    server = pg_server_url()
    if server is None:
        raise RuntimeError("no PostgreSQL server answers")
    name = f"pos_loyalty_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def write_config(workdir: Path, database_url: str, extra: str = "") -> Path:
    """A bench store; unless `extra` declares lanes, tills lane-0 … lane-15 without devices."""
    path = workdir / "config.toml"
    lanes = (
        "" if "[[lanes]]" in extra else "".join(f'[[lanes]]\nid = "lane-{n}"\n' for n in range(16))
    )
    path.write_text(
        "[store]\n"
        'id = "bench-001"\nname = "Бенчмарк"\n'
        f'database_url = "{database_url}"\nsecret_file = "{workdir / "secret.key"}"\n'
        + extra
        + "\n"
        + lanes,
        encoding="utf-8",
    )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# The process behind each running server's base URL, so a load run can read its CPU time.
SERVER_PIDS: dict[str, int] = {}


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time the process (all its threads) has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


@contextmanager
def running_server(config: Path, *, workers_env: dict[str, str] | None = None) -> Iterator[str]:
    """`pos-loyalty serve` as a separate process (so the client does not share its GIL)."""
    exe = Path(sys.executable).with_name("pos-loyalty")
    with _serving(
        lambda port: [str(exe), "serve", "--config", str(config), "--port", str(port)],
        {**os.environ, **(workers_env or {})},
    ) as base:
        yield base


@contextmanager
def running_floor(config: Path, key_hash: str) -> Iterator[str]:
    """The floor (`bench/floor.py`) under uvicorn, as `serve` runs, on the same config."""
    env = {
        **os.environ,
        "POS_FLOOR_CONFIG": str(config),
        "POS_FLOOR_KEY_HASH": key_hash,
        "PYTHONPATH": str(REPO),
    }
    with _serving(
        lambda port: [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.floor:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env,
    ) as base:
        yield base


@contextmanager
def _serving(command: Callable[[int], list[str]], env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    # The server's log goes to a file, not a pipe nobody reads while it runs: a full pipe (64 KiB
    # of log lines) would block the server mid-request and the tills would time out.
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below, with the server)
    proc = subprocess.Popen(command(port), stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    SERVER_PIDS[base] = proc.pid
    deadline = time.monotonic() + 300  # a safety: a loaded machine starts it when it can
    try:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    err = log.read().decode(errors="replace")
                    raise RuntimeError(f"server did not start: {err[-2000:]}") from None
                time.sleep(0.05)
        yield base
    finally:
        SERVER_PIDS.pop(base, None)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
