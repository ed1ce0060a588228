"""`demo`: the whole store on this machine, simulated, narrated with rich.

It starts the real HTTP API on a fresh SQLite file from the repository's config.toml and plays the
part of a till talking to it over HTTP, so what the demo shows is what a till integrator gets.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import queue
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.panel import Panel
from rich.table import Table

from pos_loyalty.apikeys.models import Scope
from pos_loyalty.apikeys.service import create_key
from pos_loyalty.cli.common import ConfigOption, console, load_or_exit, open_store_or_exit
from pos_loyalty.cli.demo_campaign import lapsed_regulars, reactivation_campaign
from pos_loyalty.cli.receipt_preview import render_receipt_png
from pos_loyalty.cli.simulation import SimulatedDevices, simulated_devices
from pos_loyalty.money import format_money
from pos_loyalty.settings import Settings, settings_from_dict
from pos_loyalty.store import Store

DEMO_CUSTOMERS: list[dict[str, Any]] = [
    {"phone": "8 (916) 123-45-67", "name": "Иван Петров", "birthday": "1985-03-14"},
    {"phone": "+7 903 765 43 21", "name": "Мария Смирнова", "consents": {"sms": True}},
    {"phone": "9261112233", "name": "Ольга Кузнецова"},
]


# How long the demo waits for a step (an answer, an event, the server) before calling it failed.
# Steps end as soon as what they wait for happens; this only stops a demo that would hang, and is
# long enough for a loaded machine (the demo and `make test` on two busy cores).
STEP_PATIENCE_S = 180.0


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
            with urllib.request.urlopen(request, timeout=STEP_PATIENCE_S) as response:
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
        deadline = time.monotonic() + STEP_PATIENCE_S
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the demo API server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=STEP_PATIENCE_S)


def _demo_settings(settings: Settings, out: Path) -> Settings:
    """The repository's store, with its database and secret in the demo folder."""
    data = settings.model_dump(exclude={"source"}, exclude_unset=True)
    data["store"]["database_url"] = f"sqlite:///{out / 'demo.db'}"
    data["store"]["secret_file"] = str(out / "secret.key")
    return settings_from_dict(data, source=settings.source, environ={})


def _outcome(reply: Reply) -> str:
    if reply.status == 200:
        customer = reply.body["customer"]
        # A phone look-up answers no card number to a till key (see /v1/identify).
        card = f" ({customer['card_number']})" if customer.get("card_number") else ""
        return f"[green]{reply.status}[/] {customer['name']}{card}"
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
        url = urlsplit(base_url)
        # Blocking reads: the stream's keep-alives come every 15 s, and close() shuts the socket
        # down to wake the reader. (A read timeout would leave the socket unreadable for good:
        # the follower went deaf after its first quiet second, and a slow step was missed.)
        self._connection = http.client.HTTPConnection(
            url.hostname or "127.0.0.1", url.port, timeout=STEP_PATIENCE_S
        )
        self._connection.request(
            "GET", f"/v1/lanes/{lane_id}/events", headers={"Authorization": f"Bearer {api_key}"}
        )
        self._response = self._connection.getresponse()
        if self._connection.sock is not None:
            self._connection.sock.settimeout(None)
        self._thread = threading.Thread(target=self._read, name=f"follow-{lane_id}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        while True:
            try:
                raw = self._response.readline()
            except (OSError, ValueError, http.client.HTTPException):
                return
            if not raw:
                return  # the stream ended
            line = raw.decode().rstrip("\n")
            if line.startswith(":"):
                continue
            if line:
                key, _, value = line.partition(": ")
                fields[key] = value
            elif "data" in fields:
                self.events.put({"event": fields.get("event", ""), **json.loads(fields["data"])})
                fields = {}

    def next(self, kinds: set[str], *, transaction_id: str | None = None) -> dict[str, Any] | None:
        """The next event of one of `kinds` (about `transaction_id`, when given: a late event
        of an earlier sale is not taken for this one's), or None after STEP_PATIENCE_S."""
        deadline = time.monotonic() + STEP_PATIENCE_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                return None
            if event["event"] not in kinds:
                continue
            if transaction_id is None or event.get("transaction_id") == transaction_id:
                return event
        return None

    def close(self) -> None:
        if self._connection.sock is not None:
            with contextlib.suppress(OSError):
                self._connection.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=STEP_PATIENCE_S)
        self._connection.close()


def _lane_devices(
    till: TillClient, sims: SimulatedDevices, customers: list[dict[str, Any]], failed: list[str]
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
        table.add_row("Иван holds his app's QR up to the camera", _event_text(follower, failed))
        sims.scanners["lane-1"].swipe(maria["card_number"], name="SMIRNOVA/MARIA")
        table.add_row("Мария swipes her card (magnetic stripe)", _event_text(follower, failed))
        sims.scanners["lane-1"].scan_garbled(maria["card_number"], errors=3)
        sims.scanners["lane-1"].scan("4601234567890", symbology="ean13")
        table.add_row(
            "a garbled scan, then a grocery barcode scanned by mistake",
            _event_text(follower, failed),
        )
        forged = ivan["qr"][:-4] + "AAAA"
        sims.cameras["lane-1"].show(
            Scenario(payload=forged, width=640, height=480, show_until_s=2.0)
        )
        table.add_row("a screenshot with a forged QR", _event_text(follower, failed))
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


def _event_text(follower: LaneFollower, failed: list[str]) -> str:
    event = follower.next({"customer_identified", "customer_unknown", "token_invalid"})
    if event is None:
        failed.append("a lane device's reading produced no event")
        return f"[red]no event within {STEP_PATIENCE_S:.0f} s[/]"
    if event["event"] == "customer_identified":
        who = event["customer"]
        return f"[green]{event['event']}[/] {who['name']} {who['phone']} via {event['method']}"
    return f"[yellow]{event['event']}[/] {event.get('code')}: {event.get('message')}"


MILK = {
    "sku": "4601234567890",
    "name": "Молоко 3,2% 1 л",
    "category": "dairy",
    "qty": 2,
    "unit_price": 8990,
}
CROISSANT = {
    "sku": "4607001234567",
    "name": "Круассан",
    "category": "bakery",
    "qty": 2,
    "unit_price": 5900,
}
CAPPUCCINO = {
    "sku": "2000000012345",
    "name": "Капучино 0,3 л",
    "category": "coffee",
    "qty": 2,
    "unit_price": 17900,
}
CHEESE = {  # weighed goods: 0,356 kg
    "sku": "2100000054321",
    "name": "Сыр Российский, вес",
    "category": "cheese",
    "qty": 0.356,
    "unit_price": 79900,
}
CHOCOLATE = {
    "sku": "4600000000777",
    "name": "Шоколад тёмный 100 г",
    "category": "sweets",
    "qty": 1,
    "unit_price": 9900,
}
CIGARETTES = {  # tobacco: [no_rewards] in config.toml, no reward may touch it (15-FZ art. 16)
    "sku": "4600000000001",
    "name": "Сигареты «Ява»",
    "category": "tobacco",
    "qty": 1,
    "unit_price": 22900,
}
SALMON = {
    "sku": "4600000004242",
    "name": "Сёмга слабосолёная 200 г",
    "category": "fish",
    "qty": 2,
    "unit_price": 64900,
}
STEP_COLUMNS = ("step", "money", "points", "what the cashier sees")


class DemoDay:
    """The scripted day at lane 1, told as tables: what the till sent and what it got back."""

    def __init__(
        self, till: TillClient, sims: SimulatedDevices, settings: Settings, out: Path
    ) -> None:
        self.till = till
        self.sims = sims
        self.settings = settings
        self.out = out
        self.failed: list[str] = []  # steps that did not go as the day's script says

    def money(self, amount: int) -> str:
        return format_money(amount, self.settings.store.currency, self.settings.store.locale)

    def valid_until(self, coupon: dict[str, Any]) -> str:
        """The coupon's last valid local day as the API gives it (the date the receipt prints)."""
        return date.fromisoformat(coupon["valid_until"]).strftime("%d.%m.%Y")

    def quote_row(self, label: str, quote: dict[str, Any]) -> list[str]:
        money = [f"subtotal {self.money(quote['subtotal'])}"]
        money += [f"{a['label']} −{self.money(a['amount'])}" for a in quote["applied"]]
        points = quote["points"]
        if points["burn"]:
            money.append(f"points −{self.money(points['burn_value'])}")
        money.append(f"[bold]to pay {self.money(quote['total'])}[/]")
        notes = [f"[yellow]{h['message']}[/]" for h in quote.get("hints", [])]
        notes += [f"coupon to issue: {c['label']}" for c in quote["coupons"]["to_issue"]]
        notes += [f"coupon taken: {c['code']}" for c in quote["coupons"]["applied"]]
        notes += [f"stamps {st['count']}/{st['every']}" for st in quote.get("stamps", [])]
        notes += [f"[magenta]{n['message']}[/]" for n in quote.get("notices", [])]
        notes += [
            f"{ln['name']}: discount {self.money(ln['discount'])}, points {self.money(ln['burn'])}"
            for ln in quote["lines"]
            if ln["sku"] == CIGARETTES["sku"]
        ]
        tier = quote.get("tier") or {}
        if tier.get("next"):
            notes.append(
                f"tier {tier.get('name') or '—'}: {self.money(tier['missing'])} to {tier['next']}"
            )
        burn = ""
        if points["burn_requested"]:
            burn = f"\nburn {points['burn']} of {points['burn_requested']}"
            if points.get("burn_limited_message"):
                burn += f"\n({points['burn_limited_message']})"
        return [label, "\n".join(money), f"earn {points['earn']}{burn}", "\n".join(notes) or "—"]

    def steps_table(self, title: str) -> Table:
        table = Table(title=title)
        for column in STEP_COLUMNS:
            table.add_column(column)
        return table

    def commit(self, body: dict[str, Any], key: str | None = None) -> Reply:
        return self.till.call(
            "POST", "/v1/transactions", body, {"Idempotency-Key": key or uuid.uuid4().hex}
        )

    def issued_text(self, sale: Reply) -> str:
        return (
            "\n".join(
                f"coupon {c['code']}: {c['label']}, valid until {self.valid_until(c)}"
                for c in sale.body["coupons_issued"]
            )
            or "—"
        )

    # -- the day ----------------------------------------------------------------------------

    def maria_checkout(self, maria: dict[str, Any], follower: LaneFollower) -> str:
        """The upsell hint, the coupons for next time, an idempotent retry, the printed receipt.
        Returns the threshold coupon's code for her next visit."""
        table = self.steps_table(
            "Checkout at lane 1 (the till sends no customer: the lane knows her)"
        )
        # She swiped this card a moment ago: the scanner reports the same card again within its
        # debounce_s as one swipe (as a real one in continuous mode would), so let that pass.
        scanner = next(lane.scanner for lane in self.settings.lanes if lane.id == "lane-1")
        time.sleep(scanner.debounce_s if scanner else 0)
        self.sims.scanners["lane-1"].swipe(maria["card_number"], name="SMIRNOVA/MARIA")
        if follower.next({"customer_identified"}) is None:
            self.failed.append("Мария's swipe at lane 1 was not identified")
        lines = [MILK, CROISSANT, CAPPUCCINO]
        basket: dict[str, Any] = {
            "store_id": self.settings.store.id,
            "lane_id": "lane-1",
            "lines": lines,
        }
        first = self.till.call("POST", "/v1/baskets/evaluate", basket).body
        table.add_row(*self.quote_row("evaluate", first))
        lines.append(CHOCOLATE)
        second = self.till.call("POST", "/v1/baskets/evaluate", basket).body
        table.add_row(*self.quote_row("she adds a chocolate, evaluate", second))
        key = uuid.uuid4().hex
        sale = self.commit({"quote_id": second["quote_id"]}, key)
        retry = self.commit({"quote_id": second["quote_id"]}, key)
        table.add_row(
            f"commit → {sale.status}",
            "",
            f"balance {sale.body['balance_after']}",
            self.issued_text(sale),
        )
        same = retry.body.get("transaction_id") == sale.body["transaction_id"]
        table.add_row(
            f"the till retries (same key) → {retry.status}",
            "",
            "",
            "the first sale again" if same else "[red]a second sale![/]",
        )
        if sale.status != 201:
            self.failed.append(f"Мария's sale was refused: {sale.status} {sale.body}")
        printed = follower.next({"print_result"}, transaction_id=sale.body.get("transaction_id"))
        console.print(table)
        self.show_receipt(printed)
        threshold = [c for c in sale.body["coupons_issued"] if c["rule_id"] == "spend-700-get-70"]
        return str(threshold[0]["code"])

    def olga_paper_out(self, olga: dict[str, Any], follower: LaneFollower) -> None:
        """Her birthday week: a personal coupon, and the printer runs out of paper mid-day."""
        printer = self.sims.printers["lane-1"]
        table = self.steps_table("Ольга's birthday week; lane 1's printer has run out of paper")
        printer.set_paper_remaining(0)
        basket = {
            "store_id": self.settings.store.id,
            "lane_id": "lane-1",
            "customer": {"phone": olga["phone"]},
            "lines": [SALMON, CHEESE, {**CAPPUCCINO, "qty": 1}],
        }
        quote = self.till.call("POST", "/v1/baskets/evaluate", basket).body
        table.add_row(*self.quote_row("evaluate", quote))
        sale = self.commit({"quote_id": quote["quote_id"]})
        table.add_row(
            f"commit → {sale.status}",
            "",
            f"balance {sale.body['balance_after']}",
            self.issued_text(sale),
        )
        sold = sale.body.get("transaction_id")
        waiting = follower.next({"print_result"}, transaction_id=sold)
        if waiting is not None and waiting.get("status") == "waiting":
            queue = self.lane_printer_queue()
            table.add_row(
                "print_result event",
                "",
                "",
                f"[yellow]waiting: {waiting['code']}[/] — the receipt stays queued "
                f"({queue} in queue)",
            )
        else:
            self.failed.append(f"the paper-out receipt did not wait: {waiting}")
            table.add_row("print_result event", "", "", f"[red]unexpected: {waiting}[/]")
        printer.refill()
        printed = follower.next({"print_result"}, transaction_id=sold)
        status = printed.get("status") if printed else f"no event within {STEP_PATIENCE_S:.0f} s"
        if status != "printed":
            self.failed.append(f"the paper-out receipt did not print after the new roll: {status}")
        table.add_row("the cashier puts in a new roll", "", "", f"print_result: [green]{status}[/]")
        console.print(table)

    def lane_printer_queue(self) -> Any:
        for device in self.till.call("GET", "/v1/devices").body["devices"]:
            if device["name"] == "lane-1/printer":
                return device.get("queue_length")
        return "?"

    def maria_next_visit(
        self, maria: dict[str, Any], coupon_code: str, follower: LaneFollower
    ) -> None:
        """The coupon typed without hyphens, points paid, a second till refused, a refund."""
        visit = {
            "store_id": self.settings.store.id,
            "lane_id": "lane-1",
            "customer": {"card": maria["card_number"]},
            "lines": [CAPPUCCINO, {**CHOCOLATE, "qty": 4}, CIGARETTES],
            "coupons": [coupon_code.lower().replace("-", "")],
            "points_to_redeem": 50,
        }
        table = self.steps_table(
            "Next day: Мария types her coupon without hyphens and asks to pay 50 points"
        )
        again = self.till.call("POST", "/v1/baskets/evaluate", visit).body
        table.add_row(*self.quote_row("evaluate", again))
        paid = self.commit({"quote_id": again["quote_id"]})
        table.add_row(
            f"commit → {paid.status}", "", f"balance {paid.body.get('balance_after')}", ""
        )
        twice = self.commit({**visit, "points_to_redeem": 0})
        table.add_row(
            f"lane 2 tries the same coupon → {twice.status}", "", "", twice.body["error"]["message"]
        )
        refund = self.till.call(
            "POST",
            f"/v1/transactions/{paid.body['transaction_id']}/refund",
            {"lines": [{"sku": CHOCOLATE["sku"], "qty": 1}]},
            {"Idempotency-Key": uuid.uuid4().hex},
        )
        points = refund.body["points"]
        table.add_row(
            f"one chocolate returned → {refund.status}",
            f"refund {self.money(refund.body['amount'])}",
            f"earned −{points['earn_reversed']}, burned +{points['burn_returned']}\n"
            f"balance {points['balance_after']}",
            "a refund slip prints",
        )
        if follower.next({"print_result"}, transaction_id=paid.body.get("transaction_id")) is None:
            self.failed.append("the refund slip never printed")
        status = self.till.call("GET", f"/v1/coupons/{coupon_code}").body
        # Yesterday's whole basket comes back, but its points and its coupon were spent today:
        # config.toml's [refunds] policy keeps their value from the money (never a negative balance)
        back = self.till.call(
            "POST",
            f"/v1/transactions/{status['issued_by_transaction_id']}/refund",
            {},
            {"Idempotency-Key": uuid.uuid4().hex},
        ).body
        kept = back["kept"]
        table.add_row(
            "yesterday's basket returned → refund",
            f"goods {self.money(back['goods_amount'])}\nrefund {self.money(back['amount'])}",
            f"earned −{back['points']['earn_reversed']} (spent: {back['points']['shortfall']})\n"
            f"balance {back['points']['balance_after']}, debt {back['points']['debt']}",
            f"kept {self.money(kept['for_points'])} for {kept['points_paid']} spent points, "
            f"{self.money(sum(kept['for_coupons'].values()))} for the spent coupon",
        )
        console.print(table)
        yesterday = status["issued_by_transaction_id"]
        if follower.next({"print_result"}, transaction_id=yesterday) is None:
            self.failed.append("the slip of yesterday's basket returned never printed")
        console.print(f"GET /v1/coupons/{coupon_code} → status [bold]{status.get('status')}[/]")

    def rush_hour(self, store: Store, ivan: dict[str, Any]) -> None:
        """Eight tills commit at the same moment: the sales share database transactions (group
        commit), each stays all-or-nothing, and every cached balance still equals its ledger."""
        from sqlalchemy import event

        from pos_loyalty.ledger.service import verify_ledger

        tills = 8
        baskets = [
            {
                "store_id": self.settings.store.id,
                "lane_id": f"lane-{n + 2}",
                "customer": {"id": ivan["id"]} if n % 2 == 0 else None,
                "lines": [MILK, CROISSANT] if n % 3 else [CAPPUCCINO],
            }
            for n in range(tills)
        ]
        replies: list[Reply | None] = [None] * tills
        barrier = threading.Barrier(tills)
        commits = 0

        def counted(_: Any) -> None:
            nonlocal commits
            commits += 1

        def till(n: int) -> None:
            barrier.wait(timeout=STEP_PATIENCE_S)
            replies[n] = self.commit(baskets[n])

        event.listen(store.engine, "commit", counted)
        try:
            threads = [threading.Thread(target=till, args=(n,)) for n in range(tills)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=STEP_PATIENCE_S)
        finally:
            event.remove(store.engine, "commit", counted)
        table = Table(title=f"Rush hour: {tills} tills commit at the same moment")
        for column in ("lane", "customer", "commit", "to pay", "points"):
            table.add_column(column)
        for basket, reply in zip(baskets, replies, strict=True):
            body = reply.body if reply is not None else {}
            table.add_row(
                str(basket["lane_id"]),
                "Иван П." if basket["customer"] else "—",
                str(reply.status) if reply is not None else "no answer",
                self.money(body["total"]) if "total" in body else "—",
                f"+{body['points']['earn']}, balance {body['balance_after']}"
                if basket["customer"] and "points" in body
                else "—",
            )
        console.print(table)
        with store.uow() as uow:
            _, mismatches = verify_ledger(uow=uow)
        sold = sum(1 for r in replies if r is not None and r.status == 201)
        if sold != tills or mismatches:
            self.failed.append(f"rush hour: {sold} of {tills} sold, ledger {mismatches or 'ok'}")
        console.print(
            f"{sold} of {tills} sales committed; the database committed {commits} times meanwhile "
            f"(sales share a transaction and its fsync); ledger verify: "
            + ("every balance equals its ledger" if not mismatches else f"{mismatches}")
        )

    def show_receipt(self, printed: dict[str, Any] | None) -> None:
        if printed is None or printed.get("status") != "printed":
            self.failed.append(f"the receipt did not print: {printed}")
            console.print(f"[red]the receipt did not print: {printed}[/]")
            return
        text = sorted(self.sims.receipt_dirs["lane-1"].glob("*.txt"))[-1]
        console.print(
            Panel(
                text.read_text(encoding="utf-8").rstrip(),
                title=f"receipt printed on the lane-1 printer ({text.with_suffix('.png').name})",
                expand=False,
            )
        )

    def segments(self, store: Store) -> None:
        """The evening's RFM run over the day's sales: sizes, a CSV and a chart in `out`."""
        from pos_loyalty.cli.segments import print_summary
        from pos_loyalty.segments.chart import draw_segment_chart
        from pos_loyalty.segments.service import compute_rfm, write_scores_csv

        with store.uow(write=True) as uow:
            summary = compute_rfm(uow=uow, config=self.settings.segments, now=store.now())
        with store.uow() as uow:
            write_scores_csv(session=uow.session, path=self.out / "segments.csv")
        draw_segment_chart(summary, self.out / "segments.png", locale=self.settings.store.locale)
        print_summary(
            summary, currency=self.settings.store.currency, locale=self.settings.store.locale
        )

    def summary(self) -> None:
        receipts = sorted(self.sims.receipt_dirs["lane-1"].glob("*.png"))
        table = Table(title="What the demo left in " + str(self.out))
        table.add_column("file")
        table.add_column("what it is")
        table.add_row("demo.db", "the store's SQLite database (WAL)")
        for png in receipts:
            table.add_row(
                str(png.relative_to(self.out)), "a receipt as the virtual printer printed it"
            )
        table.add_row("segments.csv, segments.png", "RFM scores per customer, segment sizes")
        table.add_row("hq.db, results.csv, results.png", "head office; what each rule did today")
        table.add_row("reactivation.csv", "the lapsed customers' coupons and allowed contacts")
        table.add_row("devices.log", "what the drivers logged (the garbled scan, the paper out)")
        console.print(table)


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
    _log_devices_to(out / "devices.log")
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
        _print_pages(till.base_url, api_key, hub.lane_ids)
        day = DemoDay(till, sims, settings, out)
        customers = _enrolment(till, today=store.now().astimezone(settings.store.tz).date())
        _identification(till, customers)
        _lane_devices(till, sims, customers, day.failed)
        ivan, maria, olga = customers
        follower = LaneFollower(till.base_url, till.api_key, "lane-1")
        try:
            coupon = day.maria_checkout(maria, follower)
            day.olga_paper_out(olga, follower)
            day.maria_next_visit(maria, coupon, follower)
        finally:
            follower.close()
        day.rush_hour(store, ivan)
        lapsed_regulars(
            store,
            till,
            {"store_id": settings.store.id, "lane_id": "lane-9", "lines": [MILK, CROISSANT]},
        )  # issue 16: outreach
        day.segments(store)
        head_office_scene(till, store, settings, out)
        reactivation_campaign(store, out)
        day.summary()
    store.close()
    if day.failed:
        console.print(f"[bold red]Demo failed: {len(day.failed)} step(s) went wrong.[/]")
        for problem in day.failed:
            console.print(f"  - {problem}")
        raise typer.Exit(1)
    console.print(f"[bold green]Demo finished.[/] Outputs in {out}/")


def _print_pages(base_url: str, api_key: str, lane_ids: list[str]) -> None:
    """The screens this demo serves while it runs (sign in with the demo's till key)."""
    lines = [f"back office      {base_url}/store"]
    lines += [f"display {lane:<8} {base_url}/lanes/{lane}/display" for lane in lane_ids]
    lines += [f"API docs         {base_url}/docs", f"metrics          {base_url}/metrics"]
    lines.append(f"[dim]sign in with the demo till key {api_key}[/]")
    console.print(Panel.fit("\n".join(lines), title="pages"), highlight=False)


def _log_devices_to(path: Path) -> None:
    """The drivers' log (a dropped garbled scan, a printer fault) goes to a file, not between
    the demo's tables."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("drivers", "firmware_sim"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def _birthday_in(days: int, today: date) -> str:
    """A birthday `days` from today (born 1990): the birthday offer fires whenever the demo runs."""
    upcoming = today + timedelta(days=days)
    if (upcoming.month, upcoming.day) == (2, 29):
        upcoming -= timedelta(days=1)
    return upcoming.replace(year=1990).isoformat()


def _enrolment(till: TillClient, *, today: date) -> list[dict[str, Any]]:
    customers = []
    table = Table(title="Enrolment")
    for column in ("name", "phone (as typed → stored)", "card", "status"):
        table.add_column(column)
    people = [*DEMO_CUSTOMERS]
    people[2] = {**people[2], "birthday": _birthday_in(3, today)}
    for person in people:
        reply = till.call("POST", "/v1/customers", person)
        customers.append(reply.body)
        table.add_row(
            person["name"]
            + (f"\n[dim]birthday {person['birthday']}[/]" if "birthday" in person else ""),
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


def head_office_scene(till: TillClient, store: Store, settings: Settings, out: Path) -> None:
    """Head office publishes a dessert promotion as a signed bundle, forecasts it on the day's
    sales, the store pulls and activates it between two baskets, and the results are reported."""
    from pos_loyalty.hq.local import apply_active
    from pos_loyalty.hq.replay import dry_run
    from pos_loyalty.hq.results import results_report
    from pos_loyalty.hq.results_chart import draw_results_chart
    from pos_loyalty.hq.signing import create_signing_key, public_key_text
    from pos_loyalty.hq.sync import pull_once
    from pos_loyalty.settings import HeadOfficeConfig, HqConfig

    console.rule("Head office: a promotion published, forecast, activated at the lane, reported")
    office_settings = settings.model_copy(
        update={
            "store": settings.store.model_copy(
                update={"id": "hq", "database_url": f"sqlite:///{out / 'hq.db'}"}
            ),
            "lanes": [],
            "head_office": HeadOfficeConfig(signing_key=str(out / "hq-signing.key")),
        }
    )
    office = open_store_or_exit(office_settings, migrate=True)
    key = create_signing_key(out / "hq-signing.key")
    from pos_loyalty.hq.fleet import register_store

    with office.uow(write=True) as uow:
        store_key = register_store(uow=uow, store_id=settings.store.id, region="msk")
        hq_key = create_key(uow=uow, scope=Scope.HQ, label="marketing")
    from api.app import create_app

    with ApiServer(create_app(office_settings, store=office), _free_port()) as server:
        marketing = TillClient(f"http://127.0.0.1:{server.port}", hq_key)
        program = store.rules.config.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        program["rules"].append(
            {"id": "sweets-20", "kind": "discount", "label": "Сладкое −20%",
             "applies_to": "lines", "percent": 20, "when": {"categories": ["sweets", "desserts"]}}
        )  # fmt: skip
        program["category_names"] = dict(settings.store.category_names)
        published = marketing.call(
            "POST",
            "/v1/hq/bundles",
            {"program": program, "note": "Маркетинг: неделя сладкого", "targets": {}},
        ).body
        console.print(
            f"head office published [bold]v{published['version']}[/] for all stores "
            f"(«{published['note']}»), signed with {public_key_text(key)[:20]}…"
        )
        with store.uow() as uow:
            forecast = dry_run(
                uow=uow,
                active=store.rules,
                proposed=_proposed(program, settings),
                since=store.now() - timedelta(days=1),
                locale=settings.store.locale,
                currency=settings.store.currency,
            )
        promo = next(r for r in forecast.rules if r.rule_id == "sweets-20")
        console.print(
            f"forecast on today's {forecast.sales} sales: sweets-20 would touch "
            f"{promo.proposed.baskets} baskets for {_rub(promo.proposed.discount, settings)}; "
            f"all discounts {_rub(forecast.active_total.discount, settings)} → "
            f"{_rub(forecast.proposed_total.discount, settings)}"
        )
        basket = {
            "store_id": settings.store.id,
            "lane_id": "lane-2",
            "lines": [{"sku": "4600000000011", "name": "Эклер", "category": "desserts",
                       "qty": 2, "unit_price": 12000}],
        }  # fmt: skip
        before = till.call("POST", "/v1/baskets/evaluate", basket).body
        store.settings = store.settings.model_copy(
            update={
                "hq": HqConfig(
                    url=f"http://127.0.0.1:{server.port}",
                    public_key=public_key_text(key),
                    api_key=store_key,
                )
            }
        )
        outcome = pull_once(store=store)
        apply_active(store=store, now=store.now())
        after = till.call("POST", "/v1/baskets/evaluate", basket).body
        console.print(
            f"the store pulled it ({outcome.message}) and switched without a restart: two eclairs "
            f"at lane-2 cost {_rub(before['total'], settings)} under {before['rules_version']}, "
            f"{_rub(after['total'], settings)} under {after['rules_version']}"
        )
        sold = till.call(
            "POST",
            "/v1/transactions",
            {"quote_id": after["quote_id"]},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert sold.status == 201, sold.body
        pull_once(store=store)  # the next pull reports the active version to head office
        fleet = marketing.call("GET", "/v1/hq/stores").body
        console.print(
            f"fleet: store {fleet[0]['store_id']} runs v{fleet[0]['active_version']}, "
            f"behind: {'yes' if fleet[0]['behind'] else 'no'}"
        )
    office.close()
    with store.uow() as uow:
        report = results_report(uow=uow, since=store.now() - timedelta(days=1), until=store.now())
    table = Table(title="Rule results today (rules report)")
    for column in ("rule", "baskets", "discount", "points +", "coupons", "revenue"):
        table.add_column(column)
    for r in report.rules[:6]:
        table.add_row(
            r.rule_id,
            str(r.baskets),
            _rub(r.discount, settings),
            str(r.points_issued),
            f"{r.coupons_issued} ({r.coupons_redeemed} redeemed)",
            _rub(r.revenue, settings),
        )
    console.print(table)
    (out / "results.csv").write_text(report.to_csv(), encoding="utf-8")
    draw_results_chart(
        report,
        out / "results.png",
        point_value_minor=store.rules.points.point_value_minor,
        locale=settings.store.locale,
    )


def _rub(amount: int, settings: Settings) -> str:
    return format_money(amount, settings.store.currency, settings.store.locale)


def _proposed(program: dict[str, Any], settings: Settings) -> Any:
    from pos_loyalty.hq.bundle import program_from_json

    return program_from_json(program).compile(tz=settings.store.tz)
