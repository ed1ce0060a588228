"""`demo`: the whole store on this machine, simulated, narrated with rich.

It starts the real HTTP API on a fresh SQLite file from the repository's config.toml and plays the
part of a till talking to it over HTTP, so what the demo shows is what a till integrator gets.
"""

from __future__ import annotations

import json
import queue
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.table import Table

from pos_loyalty.apikeys.models import Scope
from pos_loyalty.apikeys.service import create_key
from pos_loyalty.cli.common import ConfigOption, console, load_or_exit, open_store_or_exit
from pos_loyalty.cli.receipt_preview import render_receipt_png
from pos_loyalty.cli.simulation import SimulatedDevices, simulated_devices
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


class LaneFollower:
    """Follows a lane's server-sent events over HTTP, as a till or customer display would."""

    def __init__(self, base_url: str, api_key: str, lane_id: str) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        request = urllib.request.Request(f"{base_url}/v1/lanes/{lane_id}/events")
        request.add_header("Authorization", f"Bearer {api_key}")
        self._response = urllib.request.urlopen(request, timeout=1.0)
        self._thread = threading.Thread(target=self._read, name=f"follow-{lane_id}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        while not self._stop.is_set():
            try:
                line = self._response.readline().decode().rstrip("\n")
            except TimeoutError:
                continue
            except (OSError, ValueError):
                return
            if line.startswith(":"):
                continue
            if line:
                key, _, value = line.partition(": ")
                fields[key] = value
            elif "data" in fields:
                self.events.put({"event": fields.get("event", ""), **json.loads(fields["data"])})
                fields = {}

    def next(self, kinds: set[str], timeout: float = 10.0) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                return None
            if event["event"] in kinds:
                return event
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)
        self._response.close()


def _lane_devices(
    till: TillClient, sims: SimulatedDevices, customers: list[dict[str, Any]]
) -> None:
    """Customers identify themselves at lane 1's camera and scanner; the till sees the events."""
    from firmware_sim.camera import Scenario

    follower = LaneFollower(till.base_url, till.api_key, "lane-1")
    table = Table(title="Lane 1 devices → the lane's event stream (SSE)")
    table.add_column("at the lane")
    table.add_column("event the till received")
    try:
        ivan, maria = customers[0], customers[1]
        sims.cameras["lane-1"].show(
            Scenario(payload=ivan["qr"], width=640, height=480, angle_deg=8.0, show_until_s=2.0)
        )
        table.add_row("Иван holds his app's QR up to the camera", _event_text(follower))
        sims.scanners["lane-1"].swipe(maria["card_number"], name="SMIRNOVA/MARIA")
        table.add_row("Мария swipes her card (magnetic stripe)", _event_text(follower))
        sims.scanners["lane-1"].scan_garbled(maria["card_number"], errors=3)
        sims.scanners["lane-1"].scan("4601234567890", symbology="ean13")
        table.add_row(
            "a garbled scan, then a grocery barcode scanned by mistake", _event_text(follower)
        )
        forged = ivan["qr"][:-4] + "AAAA"
        sims.cameras["lane-1"].show(
            Scenario(payload=forged, width=640, height=480, show_until_s=2.0)
        )
        table.add_row("a screenshot with a forged QR", _event_text(follower))
    finally:
        follower.close()
    console.print(table)
    devices = till.call("GET", "/v1/devices").body["devices"]
    summary = Table(title="GET /v1/devices")
    for column in ("device", "connected", "readings / frames ok", "dropped", "last error"):
        summary.add_column(column)
    for device in devices:
        summary.add_row(
            device["name"],
            str(device.get("connected")),
            str(device.get("readings", device.get("frames_ok", ""))),
            str(device.get("frames_dropped", device.get("frames_skipped", ""))),
            str(device.get("last_error") or ""),
        )
    console.print(summary)


def _event_text(follower: LaneFollower) -> str:
    event = follower.next({"customer_identified", "customer_unknown", "token_invalid"})
    if event is None:
        return "[red]no event within 10 s[/]"
    if event["event"] == "customer_identified":
        who = event["customer"]
        return f"[green]{event['event']}[/] {who['name']} {who['phone']} via {event['method']}"
    return f"[yellow]{event['event']}[/] {event.get('code')}: {event.get('message')}"


MARIA_BASKET: list[dict[str, Any]] = [
    {
        "sku": "4601234567890",
        "name": "Молоко 3,2% 1 л",
        "category": "dairy",
        "qty": 2,
        "unit_price": 8990,
    },
    {
        "sku": "4607001234567",
        "name": "Круассан",
        "category": "bakery",
        "qty": 3,
        "unit_price": 5900,
    },
    {
        "sku": "2000000012345",
        "name": "Капучино 0,3 л",
        "category": "coffee",
        "qty": 2,
        "unit_price": 17900,
    },
    {
        "sku": "2100000054321",
        "name": "Сыр Российский, вес",
        "category": "cheese",
        "qty": 0.356,
        "unit_price": 79900,
    },
]
CHOCOLATE = {
    "sku": "4600000000777",
    "name": "Шоколад тёмный 100 г",
    "category": "sweets",
    "qty": 1,
    "unit_price": 9900,
}


def _money(amount: int) -> str:
    return f"{amount / 100:,.2f} ₽".replace(",", " ").replace(".", ",")


STEP_COLUMNS = ("step", "money", "points", "what the cashier sees")


def _quote_row(label: str, quote: dict[str, Any]) -> list[str]:
    lines = [f"subtotal {_money(quote['subtotal'])}"]
    lines += [f"{a['label']} −{_money(a['amount'])}" for a in quote["applied"]]
    lines.append(f"[bold]to pay {_money(quote['total'])}[/]")
    notes = [h["message"] for h in quote.get("hints", [])]
    notes += [f"coupon to issue: {c['label']}" for c in quote["coupons"]["to_issue"]]
    notes += [f"stamps {st['count']}/{st['every']}" for st in quote.get("stamps", [])]
    points = quote["points"]
    burn = (
        f"\nburn {points['burn']} of {points['burn_requested']}" if points["burn_requested"] else ""
    )
    limited = f" ({points['burn_limited_by']})" if points.get("burn_limited_by") else ""
    return [
        label,
        "\n".join(lines),
        f"earn {points['earn']}{burn}{limited}",
        "\n".join(notes) or "—",
    ]


def _key() -> str:
    return uuid.uuid4().hex


def _checkout(till: TillClient, sims: SimulatedDevices, customers: list[dict[str, Any]]) -> None:
    """Мария shops at lane 1: the upsell hint, a coupon for next time, points, a printed receipt,
    the coupon redeemed on her next visit and refused when a second till tries it again."""
    maria = customers[1]
    follower = LaneFollower(till.base_url, till.api_key, "lane-1")
    table = Table(title="Checkout at lane 1 (the till sends no customer: the lane knows her)")
    for column in STEP_COLUMNS:
        table.add_column(column)
    try:
        sims.scanners["lane-1"].swipe(maria["card_number"], name="SMIRNOVA/MARIA")
        follower.next({"customer_identified"})
        lines = list(MARIA_BASKET)
        basket: dict[str, Any] = {"store_id": "msk-001", "lane_id": "lane-1", "lines": lines}
        first = till.call("POST", "/v1/baskets/evaluate", basket).body
        table.add_row(*_quote_row("evaluate", first))
        lines.append(CHOCOLATE)
        second = till.call("POST", "/v1/baskets/evaluate", basket).body
        table.add_row(*_quote_row("+ chocolate, evaluate", second))
        key = _key()
        sale = till.call(
            "POST", "/v1/transactions", {"quote_id": second["quote_id"]}, {"Idempotency-Key": key}
        )
        retry = till.call(
            "POST", "/v1/transactions", {"quote_id": second["quote_id"]}, {"Idempotency-Key": key}
        )
        coupon = sale.body["coupons_issued"][0]
        table.add_row(
            f"commit → {sale.status}",
            "",
            f"balance {sale.body['balance_after']}",
            f"coupon {coupon['code']} valid until {coupon['expires_at'][:10]}",
        )
        same = retry.body.get("transaction_id") == sale.body["transaction_id"]
        table.add_row(
            f"the till retries (same key) → {retry.status}",
            "",
            "",
            "the first sale again" if same else "[red]a second sale![/]",
        )
        printed = follower.next({"print_result"}, timeout=15)
        console.print(table)
        _show_receipt(sims, printed)

        visit = {
            "store_id": "msk-001",
            "lane_id": "lane-1",
            "customer": {"card": maria["card_number"]},
            "lines": [MARIA_BASKET[2], {**CHOCOLATE, "qty": 4}],
            "coupons": [coupon["code"].lower().replace("-", "")],
            "points_to_redeem": 50,
        }
        again = till.call("POST", "/v1/baskets/evaluate", visit).body
        next_visit = Table(
            title="Next day: Мария types her coupon without hyphens and asks to pay 50 points"
        )
        for column in STEP_COLUMNS:
            next_visit.add_column(column)
        next_visit.add_row(*_quote_row("evaluate", again))
        paid = till.call(
            "POST", "/v1/transactions", {"quote_id": again["quote_id"]}, {"Idempotency-Key": _key()}
        )
        next_visit.add_row(
            f"commit → {paid.status}", "", "", "", f"balance {paid.body.get('balance_after')}", ""
        )
        twice = till.call(
            "POST",
            "/v1/transactions",
            {**visit, "points_to_redeem": 0},
            {"Idempotency-Key": _key()},
        )
        next_visit.add_row(
            f"lane 2 tries the same coupon → {twice.status}",
            "",
            "",
            "",
            "",
            twice.body["error"]["code"],
        )
        refund = till.call(
            "POST",
            f"/v1/transactions/{paid.body['transaction_id']}/refund",
            {"lines": [{"sku": CHOCOLATE["sku"], "qty": 1}]},
            {"Idempotency-Key": _key()},
        )
        points = refund.body["points"]
        next_visit.add_row(
            f"one chocolate returned → {refund.status}",
            f"refund {_money(refund.body['amount'])}",
            f"earned −{points['earn_reversed']}, burned +{points['burn_returned']}\n"
            f"balance {points['balance_after']}",
            "a refund slip prints",
        )
        console.print(next_visit)
        follower.next({"print_result"}, timeout=15)
    finally:
        follower.close()
    status = till.call("GET", f"/v1/coupons/{coupon['code']}").body
    console.print(f"GET /v1/coupons/{coupon['code']} → status [bold]{status.get('status')}[/]")


def _show_receipt(sims: SimulatedDevices, printed: dict[str, Any] | None) -> None:
    if printed is None or printed.get("status") != "printed":
        console.print(f"[red]the receipt did not print: {printed}[/]")
        return
    folder = sims.receipt_dirs["lane-1"]
    text = sorted(folder.glob("*.txt"))[-1]
    console.print(
        Panel(
            text.read_text(encoding="utf-8").rstrip(),
            title=f"receipt printed on the lane-1 printer ({text.with_suffix('.png').name})",
            expand=False,
        )
    )


def demo(
    config: ConfigOption = None,
    out: Annotated[Path, typer.Option(help="Folder for the demo database and outputs.")] = Path(
        "demo-out"
    ),
) -> None:
    """Run a simulated store on this machine and narrate what the tills see."""
    from api.app import create_app
    from drivers.manager import DeviceManager
    from pos_loyalty.lanes import LaneHub

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
    hub = LaneHub(store)
    with (
        simulated_devices(settings, out / "devices") as sims,
        DeviceManager(
            settings,
            hub,
            scanner_ports=sims.scanner_ports,
            printer_connections=sims.printer_connections,
        ),
        ApiServer(
            create_app(settings, store=store, hub=hub, receipt_png=render_receipt_png), _free_port()
        ) as server,
    ):
        till = TillClient(f"http://127.0.0.1:{server.port}", api_key)
        customers = _enrolment(till)
        _identification(till, customers)
        _lane_devices(till, sims, customers)
        _checkout(till, sims, customers)
    store.close()
    console.print(f"[bold green]Demo finished.[/] Outputs in {out}/")


def _enrolment(till: TillClient) -> list[dict[str, Any]]:
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
    return customers
