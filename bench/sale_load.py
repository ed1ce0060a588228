"""Shared by the sale-path benchmarks: concurrent HTTP tills on raw keep-alive sockets, a TOML
writer for generated rules.

The client is deliberately thin (a prebuilt HTTP/1.1 request on a socket, the reply read by
Content-Length: tens of microseconds of Python per request) because the tills share the machine's
cores with the server; httpx costs several hundred microseconds a request, which on a 2-core box is
CPU taken from the server being measured.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import (
    SERVER_PIDS,
    Stats,
    console,
    process_cpu_seconds,
    running_floor,
    running_server,
    verdict,
)

CLIENT = "raw HTTP/1.1 keep-alive sockets, one per till, in threads"


@dataclass
class Load:
    stats: Stats
    per_second: float
    errors: int
    # The server's CPU time (every thread) per request: what a request costs the machine,
    # whatever the tills' concurrency; None when the server is not a process we started.
    server_cpu_ms: float | None = None


@dataclass(frozen=True)
class Call:
    """One request: method, path, extra headers and a JSON body (bytes)."""

    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


class TillConnection:
    """One keep-alive connection: sends a request, reads the reply by its Content-Length."""

    def __init__(self, base: str, headers: dict[str, str], timeout: float = 30.0) -> None:
        url = urlsplit(base)
        self.host = f"{url.hostname}:{url.port}"
        self.sock = socket.create_connection((url.hostname, url.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.common = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.buffer = b""

    def send(self, call: Call) -> tuple[int, bytes]:
        extra = "".join(f"{k}: {v}\r\n" for k, v in call.headers)
        content = "Content-Type: application/json\r\n" if call.body else ""
        head = (
            f"{call.method} {call.path} HTTP/1.1\r\nHost: {self.host}\r\n{self.common}{extra}"
            f"{content}Content-Length: {len(call.body)}\r\n\r\n"
        )
        self.sock.sendall(head.encode() + call.body)
        while b"\r\n\r\n" not in self.buffer:
            self._receive()
        header, _, rest = self.buffer.partition(b"\r\n\r\n")
        status = int(header[9:12])
        length = 0
        for line in header.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            rest += self._receive_more()
        self.buffer = rest[length:]
        return status, rest[:length]

    def _receive(self) -> None:
        self.buffer += self._receive_more()

    def _receive_more(self) -> bytes:
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def close(self) -> None:
        self.sock.close()


def concurrent(
    base: str,
    headers: dict[str, str],
    request: Callable[[int, int], Call],
    *,
    clients: int = 8,
    per_client: int = 250,
    warmup: int = 20,
) -> Load:
    """`clients` threads (a closed loop: each waits for its reply before the next request), each
    on its own keep-alive connection, sending `per_client` requests built by
    `request(till, i)`; a 2xx counts as ok."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def till(n: int) -> None:
        nonlocal errors
        mine: list[float] = []
        bad = 0
        connection = TillConnection(base, headers)
        try:
            try:
                for i in range(warmup):
                    connection.send(request(n, -1 - i))
                calls = [request(n, i) for i in range(per_client)]  # built before the clock
            except BaseException:
                barrier.abort()  # the run fails at once instead of at the barrier's timeout
                raise
            barrier.wait(timeout=60)
            for call in calls:
                started = time.perf_counter()
                status, _ = connection.send(call)
                mine.append(time.perf_counter() - started)
                bad += not 200 <= status < 300
        finally:
            connection.close()
        with lock:
            latencies.extend(mine)
            errors += bad

    threads = [threading.Thread(target=till, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    pid = SERVER_PIDS.get(base)
    barrier.wait(timeout=60)
    started = time.perf_counter()
    cpu_before = process_cpu_seconds(pid) if pid else 0.0
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    server_cpu_ms = (process_cpu_seconds(pid) - cpu_before) * 1000 / len(latencies) if pid else None
    return Load(Stats.of(latencies), len(latencies) / elapsed, errors, server_cpu_ms)


def cpu_ms(load: Load) -> str:
    return f"{load.server_cpu_ms:.2f}" if load.server_cpu_ms is not None else "—"


def machine_note() -> str:
    """What else the machine was doing: its cores and load average, printed with the figures."""
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.2f} (1 min) {five:.2f} (5 min)"


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


def load_row(kind: str, what: str, load: Load) -> list[str]:
    return [
        kind,
        what,
        f"{load.per_second:,.0f}",
        f"{load.stats.median_ms:.2f}",
        f"{load.stats.p99_ms:.2f}",
        cpu_ms(load),
    ]


def serve_against_floor(
    *,
    kind: str,
    config: Path,
    key: str,
    key_hash: str,
    request: Callable[[int, int], Call],
    per_client: int,
    rounds: int,
    cpu_target: float,
    p99_target: float | None,
    rows: list[list[str]],
) -> None:
    """`rounds` times: the floor, then `serve`, under the same load; a row each, the second
    with serve ÷ floor (server CPU per request) and whether the targets are met."""
    headers = {"Authorization": f"Bearer {key}"}
    for _ in range(rounds):
        with running_floor(config, key_hash) as base:
            floor = concurrent(base, headers, request, per_client=per_client)
        with running_server(config) as base:
            served = concurrent(base, headers, request, per_client=per_client)
        rows.append([*load_row(kind, "floor", floor), "", "", ""])
        ratio = (served.server_cpu_ms or 0) / (floor.server_cpu_ms or 1)
        ok = (
            ratio <= cpu_target
            and (p99_target is None or served.stats.p99_ms <= p99_target)
            and not served.errors
            and not floor.errors
        )
        rows.append(
            [
                *load_row(kind, "serve", served),
                f"{ratio:.2f} (≤ {cpu_target:.0f})",
                f"p99 ≤ {p99_target:.0f}" if p99_target else "—",
                verdict(ok),
            ]
        )
        for name, load in (("floor", floor), ("serve", served)):
            if load.errors:
                console.print(f"[red]{kind} {name}: {load.errors} requests failed[/]")


COMPARISON_COLUMNS = [
    "db",
    "what",
    "per s",
    "p50 ms",
    "p99 ms",
    "server CPU ms/req",
    "CPU serve ÷ floor",
    "p99 target",
    "",
]
