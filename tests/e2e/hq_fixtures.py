"""Real head-office and store processes on loopback for the head-office tests, and a small TCP
proxy between them that can cut a download short or stall it mid-body."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import tomllib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx2 as httpx

from pos_loyalty.apikeys.models import Scope
from pos_loyalty.apikeys.service import create_key
from pos_loyalty.hq.fleet import register_store
from pos_loyalty.hq.local import LocalStatus, local_status
from pos_loyalty.hq.signing import create_signing_key, public_key_text
from pos_loyalty.settings import load_settings
from pos_loyalty.storage.migrate import upgrade
from pos_loyalty.store import Store
from tests.conftest import REPO

CLI = str(REPO / ".venv" / "bin" / "pos-loyalty")
WAIT_S = 90.0  # generous: the machine is shared; every wait ends on the awaited change

BASE_PROGRAM = """
[points]
point_value_minor = 100
redeem_max_percent = 100

[[rules]]
id = "bonus-5"
kind = "points"
label = "Бонусы 5%"
earn_percent = 5
"""


def discount_program(percent: int, rule_id: str = "promo") -> str:
    return BASE_PROGRAM + (
        f'\n[[rules]]\nid = "{rule_id}"\nkind = "discount"\nlabel = "Скидка {percent}%"\n'
        f'applies_to = "basket"\npercent = {percent}\n'
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(what: str, check: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    """Poll until `check` returns something truthy (the awaited change), or fail naming it."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POS_LOYALTY_")}
    return subprocess.run(
        [CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@dataclass
class Process:
    """`pos-loyalty serve` (a store) or `pos-loyalty hq serve` (head office)."""

    config: Path
    port: int
    command: tuple[str, ...]
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.config.with_suffix(".log")

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POS_LOYALTY_")}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [CLI, *self.command, "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.config.parent,
                env=env,
            )

        def healthy() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()
            try:
                return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(f"{self.config} to answer", healthy)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


def _in_store(config: Path, work: Callable[[Store], Any]) -> Any:
    store = Store.open(load_settings(config, environ={}))
    try:
        return work(store)
    finally:
        store.close()


def new_key(config: Path, scope: Scope) -> str:
    def make(store: Store) -> str:
        upgrade(store.engine)
        with store.uow(write=True) as uow:
            return create_key(uow=uow, scope=scope, label=f"test {scope.value}")

    return _in_store(config, make)


@dataclass
class HeadOffice(Process):
    public_key: str = ""
    key: str = ""  # scope hq

    def add_store(self, store_id: str, region: str = "") -> str:
        def add(store: Store) -> str:
            with store.uow(write=True) as uow:
                return register_store(uow=uow, store_id=store_id, region=region)

        token: str = _in_store(self.config, add)
        return token

    def publish(self, program: str, *, name: str = "program.toml", **options: str) -> str:
        """`pos-loyalty hq publish` as head office runs it; returns its output."""
        path = self.config.parent / name
        path.write_text(program, encoding="utf-8")
        args: list[str] = []
        for option, value in options.items():
            args += [f"--{option.replace('_', '-')}", value]
        done = run_cli(
            "hq", "publish", str(path), *args, "--config", str(self.config), cwd=self.config.parent
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def publish_http(self, program: str, **fields: Any) -> dict[str, Any]:
        """`POST /v1/hq/bundles` with the program as JSON (what a console would send)."""
        import tomllib

        data = tomllib.loads(program)
        section = {k: data[k] for k in ("points", "tiers", "rules") if k in data}
        answer = httpx.post(
            self.url + "/v1/hq/bundles",
            json={"program": section, **fields},
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        published: dict[str, Any] = answer.json()
        return published

    def fleet(self) -> list[dict[str, Any]]:
        answer = httpx.get(
            self.url + "/v1/hq/stores", headers={"Authorization": f"Bearer {self.key}"}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        rows: list[dict[str, Any]] = answer.json()
        return rows


def start_head_office(folder: Path, db_url: str | None = None) -> HeadOffice:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    database = db_url or "sqlite:///./hq.db"
    config = folder / "hq.toml"
    config.write_text(
        f'[store]\nid = "hq"\nname = "Головной офис"\ndatabase_url = "{database}"\n'
        f'secret_file = "./secret.key"\n\n[api]\nport = {port}\n\n'
        '[head_office]\nsigning_key = "./hq-signing.key"\n',
        encoding="utf-8",
    )
    key = create_signing_key(folder / "hq-signing.key")
    office = HeadOffice(config, port, ("hq", "serve"), public_key=public_key_text(key))
    office.key = new_key(config, Scope.HQ)
    office.start()
    return office


@dataclass
class StoreProcess(Process):
    till_key: str = ""

    def evaluate(self, lines: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        store_id = tomllib.loads(self.config.read_text(encoding="utf-8"))["store"]["id"]
        line = {"sku": "milk", "name": "Молоко", "category": "dairy", "qty": 1, "unit_price": 10000}
        body = {"store_id": store_id, "lane_id": "lane-1", "lines": lines or [line]}
        answer = httpx.post(
            self.url + "/v1/baskets/evaluate",
            json=body,
            headers={"Authorization": f"Bearer {self.till_key}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        quote: dict[str, Any] = answer.json()
        return quote

    def commit(self, quote_id: str) -> httpx.Response:
        return httpx.post(
            self.url + "/v1/transactions",
            json={"quote_id": quote_id},
            headers={
                "Authorization": f"Bearer {self.till_key}",
                "Idempotency-Key": uuid.uuid4().hex,
            },
            timeout=30,
        )

    def status(self) -> LocalStatus:
        def read(store: Store) -> LocalStatus:
            with store.uow() as uow:
                return local_status(uow=uow)

        status: LocalStatus = _in_store(self.config, read)
        return status

    def version(self) -> str:
        return str(self.evaluate()["rules_version"])


# The till the tests price at (a basket from an undeclared lane is refused: lane_unknown).
LANE = '\n[[lanes]]\nid = "lane-1"\n'


def write_store_config(
    folder: Path, store_id: str, *, hq_url: str, public_key: str, api_key: str, region: str = ""
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = folder / "config.toml"
    config.write_text(
        f'[store]\nid = "{store_id}"\nname = "Магазин {store_id}"\n'
        'database_url = "sqlite:///./store.db"\nsecret_file = "./secret.key"\n\n'
        f"[api]\nport = {port}\n\n"
        f'[hq]\nurl = "{hq_url}"\npublic_key = "{public_key}"\napi_key = "{api_key}"\n'
        f'region = "{region}"\ninterval_s = 0.3\nmax_backoff_s = 1.0\ntimeout_s = 5\n'
        + BASE_PROGRAM
        + LANE,
        encoding="utf-8",
    )
    return config


def start_store(config: Path) -> StoreProcess:
    port = int(config.read_text(encoding="utf-8").split("[api]\nport = ")[1].split("\n")[0])
    store = StoreProcess(config, port, ("serve", "--no-devices"))
    store.till_key = new_key(config, Scope.TILL)
    store.start()
    return store


@dataclass
class Proxy:
    """Forwards each request to `upstream`; `mode` decides what the client gets back:
    everything, the headers and half the body then a closed socket (`truncate`), or the
    headers and half the body and then nothing until released (`stall`)."""

    upstream: int
    mode: Literal["pass", "truncate", "stall"] = "pass"
    port: int = 0
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(16)
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = client.recv(65536)
                if not chunk:
                    return
                request += chunk
            with socket.create_connection(("127.0.0.1", self.upstream)) as up:
                up.sendall(request)
                response = b""
                while chunk := up.recv(65536):
                    response += chunk
            head, _, body = response.partition(b"\r\n\r\n")
            if self.mode == "pass" or not response.startswith(b"HTTP/1.1 200"):
                client.sendall(response)
                return
            client.sendall(head + b"\r\n\r\n" + body[: len(body) // 2])
            if self.mode == "stall":
                self.stalled.set()
                self.release.wait()

    def close(self) -> None:
        self.release.set()
        self._server.close()
