"""Shared by the sale-path benchmarks: concurrent HTTP tills, a TOML writer for generated rules,
a store with customers and a till key."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import httpx2 as httpx  # the maintained fork starlette points to; the API is the same

from bench.common import Stats


@dataclass
class Load:
    stats: Stats
    per_second: float
    errors: int


def concurrent(
    base: str,
    headers: dict[str, str],
    request: Callable[[httpx.Client, int, int], int],
    *,
    clients: int = 8,
    per_client: int = 250,
    warmup: int = 20,
) -> Load:
    """`clients` threads, each with its own keep-alive connection, each sending `per_client`
    requests; `request(client, till, i)` sends one and returns the status (2xx counts as ok)."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def till(n: int) -> None:
        nonlocal errors
        mine: list[float] = []
        bad = 0
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            for i in range(warmup):
                request(client, n, -1 - i)
            barrier.wait(timeout=60)
            for i in range(per_client):
                started = time.perf_counter()
                status = request(client, n, i)
                mine.append(time.perf_counter() - started)
                bad += not 200 <= status < 300
        with lock:
            latencies.extend(mine)
            errors += bad

    threads = [threading.Thread(target=till, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    barrier.wait(timeout=60)
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return Load(Stats.of(latencies), len(latencies) / elapsed, errors)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else str(value)
    if isinstance(value, date):
        return value.isoformat()  # a TOML local date
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f'"{k}" = {toml_value(v)}' for k, v in value.items() if v is not None)
        return "{" + items + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def rules_toml(section: dict[str, Any]) -> str:
    """`[points]`, `[[tiers]]` and `[[rules]]` from a dumped rules section."""
    out = ["", "[points]"]
    out += [f"{k} = {toml_value(v)}" for k, v in section.get("points", {}).items()]
    for table in ("tiers", "rules"):
        for item in section.get(table, []):
            out += ["", f"[[{table}]]"]
            out += [f'"{k}" = {toml_value(v)}' for k, v in item.items() if v is not None]
    return "\n".join(out) + "\n"
