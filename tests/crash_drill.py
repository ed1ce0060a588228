"""A store under attack by bad luck: a real `serve` process, tills committing sales with their
idempotency keys, and a fault in the middle (SIGKILL, the database going away). Afterwards every
acknowledged sale must be there, a retry with the same key must never sell twice, and every
ledger must sum. Used by tests/e2e/test_crash_recovery.py and by the drills in bench/.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx  # the maintained fork starlette points to; the API is the same

from pos_loyalty.apikeys.models import Scope
from pos_loyalty.apikeys.service import create_key
from pos_loyalty.ledger.service import verify_ledger
from pos_loyalty.settings import load_settings
from pos_loyalty.store import Store
from tests.conftest import REPO
from tests.serving import SAFETY_S, wait_serving, wait_until

CLI = str(REPO / ".venv" / "bin" / "pos-loyalty")
RULES_TOML = """
[points]
point_value_minor = 100
redeem_max_percent = 100
expire_days = 365

[[rules]]
id = "bonus-5"
kind = "points"
label = "Бонусы 5%"
earn_percent = 5
"""
LINE = {
    "sku": "4601234567890",
    "name": "Молоко",
    "category": "dairy",
    "qty": 2,
    "unit_price": 10000,
}
SALE_TOTAL, SALE_POINTS = 20000, 10  # one sale of LINE under RULES_TOML


LANES = 16  # lane-0 … lane-15: one per till a drill may run


def write_store_config(workdir: Path, database_url: str, port: int, extra: str = "") -> Path:
    config = workdir / "config.toml"
    config.write_text(
        f'[store]\nid = "msk-001"\nname = "Магазин у дома"\ndatabase_url = "{database_url}"\n'
        f'secret_file = "{workdir / "secret.key"}"\n\n[api]\nport = {port}\n'
        + extra
        + RULES_TOML
        # the tills' lanes: a basket from an undeclared lane is refused (lane_unknown)
        + "".join(f'\n[[lanes]]\nid = "lane-{n}"\n' for n in range(LANES)),
        encoding="utf-8",
    )
    return config


class Server:
    """`pos-loyalty serve` on a config file, started and killed like an operator (or bad luck)."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.port, self.log = config, port, log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [CLI, "serve", "--config", str(self.config), "--no-devices"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.config.parent,
            )
        wait_serving(self.url, self.process, lambda: self.log.read_text(errors="replace"))

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=SAFETY_S)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=SAFETY_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=SAFETY_S)


def open_store(config: Path) -> Store:
    return Store.open(load_settings(config, environ={}))


def till_key(config: Path) -> str:
    """Created in-process: starting the CLI costs seconds, the server's start is what matters."""
    store = open_store(config)
    try:
        with store.uow(write=True) as uow:
            return create_key(uow=uow, scope=Scope.TILL, label="crash drill")
    finally:
        store.close()


def ledger_problems(config: Path) -> list[Any]:
    store = open_store(config)
    try:
        with store.uow() as uow:
            return verify_ledger(uow=uow)[1]
    finally:
        store.close()


@dataclass
class Rush:
    """Tills committing one sale after another for one customer until told to stop; what each
    heard back. A till whose connection breaks keeps the sale it was sending for a retry."""

    url: str
    headers: dict[str, str]
    customer_id: str
    tills: int = 4
    acknowledged: dict[str, str] = field(default_factory=dict)  # idempotency key → transaction
    unanswered: dict[str, dict[str, Any]] = field(default_factory=dict)  # key → body, no answer
    refused: dict[int, int] = field(default_factory=dict)  # status → count (503 while down …)
    stop_on_transport_error: bool = True
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def body(self, n: int) -> dict[str, Any]:
        return {
            "store_id": "msk-001",
            "lane_id": f"lane-{n}",
            "customer": {"id": self.customer_id},
            "lines": [LINE],
        }

    def _till(self, n: int) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=SAFETY_S) as client:
            pending: tuple[str, dict[str, Any]] | None = None
            while not self._stop.is_set():
                key, body = pending or (uuid.uuid4().hex, self.body(n))
                try:
                    reply = client.post(
                        "/v1/transactions", json=body, headers={"Idempotency-Key": key}
                    )
                except httpx.TransportError:
                    with self._lock:
                        self.unanswered[key] = body
                    if self.stop_on_transport_error:
                        return
                    pending = (key, body)  # the same sale again, with the same key
                    self._stop.wait(0.2)
                    continue
                with self._lock:
                    self.unanswered.pop(key, None)
                    if reply.status_code == 201:
                        self.acknowledged[key] = reply.json()["transaction_id"]
                        pending = None
                    else:
                        self.refused[reply.status_code] = self.refused.get(reply.status_code, 0) + 1
                        # Refused before anything was written (503): retry it with the same key.
                        pending = (key, body) if reply.status_code == 503 else None
                if pending is not None:
                    self._stop.wait(0.2)

    def start(self) -> Rush:
        self._threads = [threading.Thread(target=self._till, args=(n,)) for n in range(self.tills)]
        for thread in self._threads:
            thread.start()
        return self

    def wait_for_sales(self, count: int) -> None:
        """Until `count` sales are acknowledged (or every till has stopped)."""
        wait_until(
            lambda: len(self.acknowledged) >= count,
            f"fewer than {count} sales acknowledged",
            alive=lambda: any(t.is_alive() for t in self._threads),
            diagnose=lambda: f"refused {self.refused}",
        )

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=SAFETY_S)


@dataclass
class Audit:
    """What a drill found after the fault: must be all zeros and empty."""

    acknowledged: int
    retried: int
    lost: list[str]  # acknowledged sales missing after the restart
    sold_twice: list[str]  # keys that made a second sale when replayed
    retries_failed: list[str]
    balance_off: int  # points the customer has more or less than the sales say
    spend_off: int
    ledger_problems: list[Any]

    @property
    def clean(self) -> bool:
        return not (
            self.lost
            or self.sold_twice
            or self.retries_failed
            or self.balance_off
            or self.spend_off
            or self.ledger_problems
        )


def audit(server: Server, rush: Rush, *, stop_server: Callable[[], None] | None = None) -> Audit:
    """After the fault: every acknowledged sale is there, replays never sell twice, the sales the
    tills never heard back about are retried with their keys (sold at most once), sums hold."""
    lost, twice, failed = [], [], []
    with httpx.Client(base_url=server.url, headers=rush.headers, timeout=SAFETY_S) as client:
        for key, transaction_id in rush.acknowledged.items():
            if client.get(f"/v1/transactions/{transaction_id}").status_code != 200:
                lost.append(transaction_id)
            replay = client.post(
                "/v1/transactions", json={"quote_id": "other"}, headers={"Idempotency-Key": key}
            )
            if replay.json().get("error", {}).get("code") != "idempotency_mismatch":
                twice.append(key)
        for key, body in rush.unanswered.items():
            retry = client.post("/v1/transactions", json=body, headers={"Idempotency-Key": key})
            if retry.status_code != 201:
                failed.append(f"{key}: {retry.status_code} {retry.text[:200]}")
        sales = len(rush.acknowledged) + len(rush.unanswered) - len(failed)
        profile = client.get(f"/v1/customers/{rush.customer_id}").json()
    (stop_server or server.stop)()
    return Audit(
        acknowledged=len(rush.acknowledged),
        retried=len(rush.unanswered),
        lost=lost,
        sold_twice=twice,
        retries_failed=failed,
        balance_off=profile["balance"] - sales * SALE_POINTS,
        spend_off=profile["lifetime_spend"] - sales * SALE_TOTAL,
        ledger_problems=ledger_problems(server.config),
    )


def enrol_customer(server: Server, headers: dict[str, str]) -> str:
    enrolled = httpx.post(
        server.url + "/v1/customers",
        json={"phone": "9161234567", "name": "Иван Петров"},
        headers=headers,
        timeout=SAFETY_S,
    )
    assert enrolled.status_code == 201, enrolled.text
    return str(enrolled.json()["id"])


def kill_during_rush(server: Server, *, sales_before_kill: int = 30, tills: int = 4) -> Audit:
    """The drill: start, enrol, rush, SIGKILL after `sales_before_kill` acknowledged sales,
    restart, audit."""
    server.start()
    headers = {"Authorization": f"Bearer {till_key(server.config)}"}
    rush = Rush(server.url, headers, enrol_customer(server, headers), tills=tills).start()
    try:
        rush.wait_for_sales(sales_before_kill)
    finally:
        server.kill()
        rush.stop()
    server.start()
    return audit(server, rush)
