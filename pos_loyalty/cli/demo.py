"""`demo`: the whole store on this machine, simulated, narrated with rich.

It starts the real HTTP API on a fresh SQLite file from the repository's config.toml and plays the
part of a till talking to it over HTTP, so what the demo shows is what a till integrator gets.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.table import Table

from pos_loyalty.apikeys.models import Scope
from pos_loyalty.apikeys.service import create_key
from pos_loyalty.cli.common import ConfigOption, console, load_or_exit, open_store_or_exit
from pos_loyalty.settings import Settings, settings_from_dict

DEMO_CUSTOMERS: list[dict[str, Any]] = [
    {"phone": "8 (916) 123-45-67", "name": "Иван Петров", "birthday": "1985-03-14"},
    {"phone": "+7 903 765 43 21", "name": "Мария Смирнова", "consents": {"sms": True}},
    {"phone": "9261112233", "name": "Ольга Кузнецова"},
]


@dataclass
class Reply:
    status: int
    body: Any


class TillClient:
    """What a till does: JSON over HTTP with its API key (stdlib only)."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.api_key = api_key

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Reply:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.api_key}")
        request.add_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                status = response.status
                kind = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            raw, status, kind = exc.read(), exc.code, exc.headers.get("Content-Type", "")
        return Reply(status, json.loads(raw) if "json" in kind else raw)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ApiServer:
    """uvicorn in a background thread, for the demo's till to talk to over real HTTP."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        self.port = port
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="demo-api", daemon=True)

    def __enter__(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the demo API server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _demo_settings(settings: Settings, out: Path) -> Settings:
    """The repository's store, with its database and secret in the demo folder."""
    data = settings.model_dump(exclude={"source"})
    data["store"]["database_url"] = f"sqlite:///{out / 'demo.db'}"
    data["store"]["secret_file"] = str(out / "secret.key")
    return settings_from_dict(data, source=settings.source, environ={})


def _outcome(reply: Reply) -> str:
    if reply.status == 200:
        customer = reply.body["customer"]
        return f"[green]{reply.status}[/] {customer['name']} ({customer['card_number']})"
    error = reply.body["error"] if isinstance(reply.body, dict) else {"code": "?", "message": ""}
    return f"[red]{reply.status} {error['code']}[/]: {error['message']}"


def _identification(till: TillClient, customers: list[dict[str, Any]]) -> None:
    ivan = customers[0]
    card = ivan["card_number"]
    forged = ivan["qr"][:-4] + ("AAAA" if not ivan["qr"].endswith("AAAA") else "BBBB")
    attempts = [
        ("phone", "8 (916) 123-45-67", "phone as the cashier types it"),
        ("phone", "+7 916 1234567", "the same phone, another spelling"),
        ("phone", "9161234567", "the same phone, ten digits"),
        ("card", card, "card number typed"),
        ("card", f"]E0{card}", "card barcode with a symbology prefix"),
        ("card", f"%B{card}^PETROV/IVAN^2912101?", "magnetic stripe, track 1"),
        ("card", f";{card}=2912101?", "magnetic stripe, track 2"),
        ("qr", ivan["qr"], "loyalty QR from the app"),
        ("qr", forged, "a forged QR (signature changed)"),
        ("card", card[:-1] + str((int(card[-1]) + 1) % 10), "a card with a wrong check digit"),
        ("phone", "+7 999 000-00-00", "a phone nobody enrolled"),
    ]
    table = Table(title="Identification at the till", show_lines=False)
    table.add_column("what the till sent")
    table.add_column("result")
    for method, value, label in attempts:
        reply = till.call("POST", "/v1/identify", {method: value, "lane_id": "lane-1"})
        table.add_row(f"{label}\n[dim]{method}: {value[:48]}[/]", _outcome(reply))
    console.print(table)


def demo(
    config: ConfigOption = None,
    out: Annotated[Path, typer.Option(help="Folder for the demo database and outputs.")] = Path(
        "demo-out"
    ),
) -> None:
    """Run a simulated store on this machine and narrate what the tills see."""
    from api.app import create_app

    settings = _demo_settings(load_or_exit(config), out.resolve())
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    store = open_store_or_exit(settings, migrate=True)
    with store.uow(write=True) as uow:
        api_key = create_key(uow=uow, scope=Scope.TILL, label="demo till")
    console.print(
        Panel.fit(
            f"[bold]{settings.store.name}[/] ({settings.store.id}) — demo\n"
            f"database {settings.database_url}\nconfig {settings.source}",
            title="pos-loyalty",
        )
    )
    with ApiServer(create_app(settings, store=store), _free_port()) as server:
        till = TillClient(f"http://127.0.0.1:{server.port}", api_key)
        customers = []
        table = Table(title="Enrolment")
        for column in ("name", "phone (as typed → stored)", "card", "status"):
            table.add_column(column)
        for person in DEMO_CUSTOMERS:
            reply = till.call("POST", "/v1/customers", person)
            customers.append(reply.body)
            table.add_row(
                person["name"],
                f"{person['phone']} → {reply.body['phone']}",
                reply.body["card_number"],
                str(reply.status),
            )
        again = till.call("POST", "/v1/customers", {"phone": "+79161234567", "name": "Иван П."})
        table.add_row(
            "Иван П. (again)", "+79161234567", "—", f"{again.status} {again.body['error']['code']}"
        )
        console.print(table)
        _identification(till, customers)
    store.close()
    console.print(f"[bold green]Demo finished.[/] Outputs in {out}/")
