"""Identification latency with 100,000 enrolled customers.

p50/p99 of identify by phone, card and loyalty QR: in-process (ASGI client) and through uvicorn
(a separate `pos-loyalty serve` process), on SQLite and on PostgreSQL (when one answers).
Target: p99 ≤ 5 ms in-process.

    .venv/bin/python bench/identify.py [--customers 100000] [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx2
from sqlalchemy import insert

from api.app import create_app
from bench.common import (
    Stats,
    console,
    pg_server_url,
    results_table,
    running_server,
    throwaway_database,
    verdict,
    write_config,
)
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.apikeys.service import create_key
from pos_loyalty.customers.models import Card, Customer
from pos_loyalty.identity.tokens import (
    luhn_check_digit,
    mask_phone,
    mint_qr,
    phone_lookup_hash,
)
from pos_loyalty.settings import load_settings
from pos_loyalty.storage.migrate import upgrade
from pos_loyalty.store import Store

TARGET_P99_MS = 5.0


def enrol_in_bulk(store: Store, count: int, rng: random.Random) -> list[dict[str, str]]:
    """Insert `count` customers with a card each, straight into the tables (setup, not timed)."""
    now = datetime.now(UTC)
    numbers = rng.sample(range(10_000_000), count)
    people: list[dict[str, str]] = []
    customers: list[dict[str, Any]] = []
    cards: list[dict[str, Any]] = []
    for i, n in enumerate(numbers):
        e164 = f"+7916{n:07d}"
        cid = f"{i:032x}"
        body = f"2775{i:011d}"
        card = body + luhn_check_digit(body)
        customers.append(
            {
                "id": cid,
                "name": f"Покупатель {i}",
                "phone_hash": phone_lookup_hash(store.secret, e164),
                "phone_e164": None,
                "phone_masked": mask_phone(e164),
                "birthday": None,
                "consents": {},
                "lifetime_spend": 0,
                "points_balance": 0,
                "created_at": now,
            }
        )
        cards.append({"number": card, "customer_id": cid, "created_at": now})
        people.append({"id": cid, "phone": f"8 (916) {n:07d}", "card": card})
    with store.engine.begin() as conn:
        for start in range(0, count, 10_000):
            conn.execute(insert(Customer.__table__), customers[start : start + 10_000])  # type: ignore[attr-defined]
            conn.execute(insert(Card.__table__), cards[start : start + 10_000])  # type: ignore[attr-defined]
    return people


def measure(post: Callable[[dict[str, str]], int], bodies: list[dict[str, str]]) -> Stats:
    for body in bodies[:50]:  # warm-up: connections, caches, JIT-free but lazy imports
        post(body)
    times = []
    for body in bodies:
        start = time.perf_counter()
        status = post(body)
        times.append(time.perf_counter() - start)
        if status != 200:
            raise RuntimeError(f"identify returned {status} for {body}")
    return Stats.of(times)


def measure_in_process(
    app: Any, headers: dict[str, str], bodies: dict[str, list[dict[str, str]]]
) -> list[tuple[str, Stats]]:
    """An ASGI client on one event loop: the app's own cost, no socket and no portal thread."""

    async def run() -> list[tuple[str, Stats]]:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers
        ) as client:
            out = [("healthz", await timed(client, "GET", "/healthz", [{}] * 500))]
            for method, items in bodies.items():
                out.append((method, await timed(client, "POST", "/v1/identify", items)))
            return out

    return asyncio.run(run())


async def timed(client: Any, verb: str, path: str, bodies: list[dict[str, str]]) -> Stats:
    for body in bodies[:50]:
        await client.request(verb, path, json=body or None)
    times = []
    for body in bodies:
        start = time.perf_counter()
        reply = await client.request(verb, path, json=body or None)
        times.append(time.perf_counter() - start)
        if reply.status_code != 200:
            raise RuntimeError(f"{path} returned {reply.status_code} for {body}")
    return Stats.of(times)


def request_bodies(
    store: Store, people: list[dict[str, str]], n: int, rng: random.Random
) -> dict[str, list[dict[str, str]]]:
    sample = [rng.choice(people) for _ in range(n)]
    issued = int(time.time())
    return {
        "phone": [{"phone": p["phone"]} for p in sample],
        "card": [{"card": p["card"]} for p in sample],
        "qr": [{"qr": mint_qr(store.secret, p["id"], issued)} for p in sample],
    }


def run_backend(kind: str, customers: int, requests: int, rows: list[list[str]]) -> None:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp, throwaway_database(kind, Path(tmp)) as url:
        config = write_config(Path(tmp), url)
        settings = load_settings(config, environ={})
        store = Store.open(settings)
        upgrade(store.engine)
        started = time.perf_counter()
        people = enrol_in_bulk(store, customers, rng)
        console.print(
            f"{kind}: {customers:,} customers loaded in {time.perf_counter() - started:.1f} s"
        )
        with store.uow(write=True) as uow:
            key = create_key(uow=uow, scope=Scope.TILL)
        bodies = request_bodies(store, people, requests, rng)
        headers = {"Authorization": f"Bearer {key}"}

        app = create_app(settings, store=store)
        for method, stats in measure_in_process(app, headers, bodies):
            rows.append(_row(kind, "in-process", method, stats, TARGET_P99_MS))
        store.close()

        with running_server(config) as base, httpx2.Client(base_url=base, headers=headers) as http:
            floor = measure(lambda b: http.get("/healthz").status_code, [{}] * 500)
            rows.append(_row(kind, "uvicorn", "healthz", floor, None))
            for method, items in bodies.items():
                stats = measure(lambda b: http.post("/v1/identify", json=b).status_code, items)
                rows.append(_row(kind, "uvicorn", method, stats, None))


def _row(kind: str, mode: str, method: str, stats: Stats, target: float | None) -> list[str]:
    if method == "healthz":
        target = None  # the floor: what any request costs in this mode
    goal = f"≤ {target:.1f}" if target else "—"
    ok = verdict(stats.p99_ms <= target) if target else ""
    return [
        kind,
        mode,
        method,
        f"{stats.n}",
        f"{stats.median_ms:.2f}",
        f"{stats.p99_ms:.2f}",
        goal,
        ok,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--backends", default="sqlite,pg")
    args = parser.parse_args()
    rows: list[list[str]] = []
    for kind in args.backends.split(","):
        if kind == "pg" and pg_server_url() is None:
            console.print("[yellow]PostgreSQL: no server answers; skipped[/]")
            continue
        run_backend(kind, args.customers, args.requests, rows)
    results_table(
        f"identify with {args.customers:,} customers (ms)",
        ["db", "mode", "method", "n", "p50", "p99", "target p99", ""],
        rows,
    )


if __name__ == "__main__":
    main()
