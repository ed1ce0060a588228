"""Kill the real server with SIGKILL in the middle of a rush of commits; after a restart every
acknowledged sale is there, retries with the same keys never sell twice, and every ledger sums."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx  # the maintained fork starlette points to; the API is the same
import pytest

from pos_loyalty.apikeys.models import Scope
from pos_loyalty.apikeys.service import create_key
from pos_loyalty.ledger.service import verify_ledger
from pos_loyalty.settings import load_settings
from pos_loyalty.storage import make_engine
from pos_loyalty.store import Store
from tests.conftest import REPO, _empty_pg

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
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
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("server did not start:\n" + self.log.read_text())

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path, db_url: str) -> Iterator[Server]:
    if db_url.startswith("postgresql"):
        engine = make_engine(db_url)
        _empty_pg(engine)
        engine.dispose()
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[store]\nid = "msk-001"\nname = "Магазин у дома"\ndatabase_url = "{db_url}"\n'
        f'secret_file = "{tmp_path / "secret.key"}"\n\n[api]\nport = {port}\n'
        + RULES_TOML
        + "".join(f'\n[[lanes]]\nid = "lane-{n}"\n' for n in range(8)),
        encoding="utf-8",
    )
    srv = Server(config, port, tmp_path / "server.log")
    try:
        yield srv
    finally:
        srv.stop()


def till_key(config: Path) -> str:
    """Created in-process: starting the CLI costs seconds, the server's start is what matters."""
    settings = load_settings(config, environ={})
    store = Store.open(settings)
    try:
        with store.uow(write=True) as uow:
            return create_key(uow=uow, scope=Scope.TILL, label="crash test")
    finally:
        store.close()


def ledger_problems(config: Path) -> list[Any]:
    store = Store.open(load_settings(config, environ={}))
    try:
        with store.uow() as uow:
            return verify_ledger(uow=uow)[1]
    finally:
        store.close()


@pytest.mark.slow
def test_every_acknowledged_sale_survives_sigkill(server: Server) -> None:
    server.start()
    headers = {"Authorization": f"Bearer {till_key(server.config)}"}
    enrolled = httpx.post(
        server.url + "/v1/customers",
        json={"phone": "9161234567", "name": "Иван Петров"},
        headers=headers,
        timeout=10,
    )
    assert enrolled.status_code == 201, enrolled.text
    customer_id = enrolled.json()["id"]
    acknowledged: dict[str, str] = {}  # idempotency key → transaction id
    unanswered: dict[str, dict[str, Any]] = {}  # key → body, the server died meanwhile
    stop = threading.Event()
    lock = threading.Lock()

    def till(n: int) -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=5) as client:
            while not stop.is_set():
                key = uuid.uuid4().hex
                body = {
                    "store_id": "msk-001",
                    "lane_id": f"lane-{n}",
                    "customer": {"id": customer_id},
                    "lines": [
                        {
                            "sku": "4601234567890",
                            "name": "Молоко",
                            "category": "dairy",
                            "qty": 2,
                            "unit_price": 10000,
                        }
                    ],
                }
                try:
                    reply = client.post(
                        "/v1/transactions", json=body, headers={"Idempotency-Key": key}
                    )
                except httpx.TransportError:
                    with lock:
                        unanswered[key] = body
                    return
                if reply.status_code == 201:
                    with lock:
                        acknowledged[key] = reply.json()["transaction_id"]

    tills = [threading.Thread(target=till, args=(n,)) for n in range(4)]
    for t in tills:
        t.start()
    deadline = time.monotonic() + 10
    while len(acknowledged) < 30 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.kill()
    stop.set()
    for t in tills:
        t.join(timeout=10)
    assert len(acknowledged) >= 30

    server.start()
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        for key, transaction_id in acknowledged.items():
            reply = client.get(f"/v1/transactions/{transaction_id}")
            assert reply.status_code == 200, (key, reply.text)
            replay = client.post(
                "/v1/transactions", json={"quote_id": "other"}, headers={"Idempotency-Key": key}
            )
            assert replay.json()["error"]["code"] == "idempotency_mismatch"  # never a 2nd sale
        # What the tills never heard back about is retried with the same key: at most once.
        for key, body in unanswered.items():
            retry = client.post("/v1/transactions", json=body, headers={"Idempotency-Key": key})
            assert retry.status_code == 201, retry.text
        sales = len(acknowledged) + len(unanswered)
        profile = client.get(f"/v1/customers/{customer_id}").json()
        assert profile["lifetime_spend"] == sales * 20000
        assert profile["balance"] == sales * 10
        history = client.get(f"/v1/customers/{customer_id}/ledger?limit=200").json()
        assert len(history["entries"]) == sales
    server.stop()
    assert ledger_problems(server.config) == []
