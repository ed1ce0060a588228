"""Lanes: what each checkout lane knows right now, and the events it tells the tills about.

A reader at a lane (camera, scanner) hands a decoded token to `LaneHub.identify_token`; the hub
identifies the customer, remembers them as the lane's current customer for `customer_ttl_s`, and
publishes an event. Tills and customer displays follow a lane's events (server-sent events in the
API); the device manager publishes device faults and the print worker print results the same way.
The hub is plain threads and queues, so devices (threads) and the API (asyncio) can both use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from pos_loyalty.customers.service import CustomerProfile, IdMethod, identify_customer
from pos_loyalty.errors import DomainError, NotFound
from pos_loyalty.store import Store

log = logging.getLogger(__name__)

HISTORY_PER_LANE = 100
SUBSCRIBER_BUFFER = 256

# Event types a lane publishes.
CUSTOMER_IDENTIFIED = "customer_identified"
CUSTOMER_UNKNOWN = "customer_unknown"
TOKEN_INVALID = "token_invalid"
PRINT_RESULT = "print_result"
DEVICE_FAULT = "device_fault"
DEVICE_RESTORED = "device_restored"
QUOTE = "quote"  # the till evaluated a basket: what the customer display shows
CUSTOMER_CLEARED = "customer_cleared"  # the sale is done: the display goes back to idle

# A quote event's body is for displays; the log line names the quote, not its basket.
_ROUTINE = frozenset({QUOTE, CUSTOMER_CLEARED})  # an event per basket or per sale
_LOGGED_QUOTE_KEYS = ("quote_id", "subtotal", "discount_total", "total")
# The first event of every stream: who is at the lane and how its devices are, right now.
LANE_STATE = "lane_state"


class LaneEvent:
    """What happened at a lane. `data` may be given as a function, called on first read: a
    quote's display form is made for every basket priced, and most lanes have no display
    reading it."""

    __slots__ = ("_data", "_make", "at", "id", "lane_id", "type")

    def __init__(
        self,
        id: int,
        lane_id: str,
        type: str,
        at: datetime,
        data: dict[str, Any] | Callable[[], dict[str, Any]],
    ) -> None:
        self.id, self.lane_id, self.type, self.at = id, lane_id, type, at
        self._data: dict[str, Any] | None = data if isinstance(data, dict) else None
        self._make = None if isinstance(data, dict) else data

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            assert self._make is not None
            self._data = self._make()  # two readers at once make it twice, the same
        return self._data

    def __repr__(self) -> str:
        return f"LaneEvent({self.id}, {self.lane_id!r}, {self.type!r}, {self.at.isoformat()})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "lane_id": self.lane_id,
            "type": self.type,
            "at": self.at.isoformat(),
            **self.data,
        }


@dataclass(frozen=True, slots=True)
class CurrentCustomer:
    customer_id: str
    method: str
    identified_at: datetime
    expires_at: datetime
    summary: dict[str, Any] | None = None  # what the lane's display may show (customer_summary)


@dataclass
class Subscription:
    """One follower of a lane's events, fed from any thread into its own event loop's queue."""

    lane_id: str
    loop: asyncio.AbstractEventLoop
    # None after the last event: the service is stopping and the stream should end.
    queue: asyncio.Queue[LaneEvent | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=SUBSCRIBER_BUFFER)
    )
    dropped: int = 0

    def offer(self, event: LaneEvent | None) -> None:
        """Runs on the subscriber's loop; a slow follower loses its oldest events, never blocks."""
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)


@dataclass
class Device:
    name: str
    lane_id: str
    kind: str
    status: Callable[[], dict[str, Any]]


def classify_token(payload: str) -> IdMethod | None:
    """Which identification a raw reader payload is: a loyalty QR or a card (barcode or stripe)."""
    text = payload.strip()
    if text.startswith("PLQ1."):
        return IdMethod.QR
    if text.startswith(("%B", ";")) or text.replace(" ", "").isdigit():
        return IdMethod.CARD
    return None


def customer_summary(profile: CustomerProfile) -> dict[str, Any]:
    """What a lane's display may show: never the full name or phone."""
    return {
        "id": profile.id,
        "name": profile.short_name,
        "phone": profile.phone_masked,
        "balance": profile.points_balance,
    }


def quote_for_display(result: dict[str, Any]) -> dict[str, Any]:
    """What a customer display may see of a quote: the basket and its rewards, and of the
    customer only their first name, masked phone, tier and balance."""
    customer = result.get("customer")
    shown = None
    if customer is not None:
        name = str(customer.get("name") or "")
        shown = {
            "id": customer.get("id"),
            "first_name": name.split()[0] if name.split() else "",
            "phone": customer.get("phone"),
            "tier": customer.get("tier"),
            "balance": customer.get("balance"),
        }
    lines = [
        {k: line.get(k) for k in ("name", "qty", "subtotal", "discount", "total")}
        for line in result.get("lines", ())
    ]
    return {
        "quote_id": result.get("quote_id"),
        "currency": result.get("currency"),
        "customer": shown,
        "lines": lines,
        "subtotal": result.get("subtotal"),
        "discount_total": result.get("discount_total"),
        "total": result.get("total"),
        "applied": result.get("applied", []),
        "points": result.get("points"),
        "coupons_to_issue": (result.get("coupons") or {}).get("to_issue", []),
        "coupons_applied": (result.get("coupons") or {}).get("applied", []),
        "hints": result.get("hints", []),
        "tier": result.get("tier"),
        "stamps": result.get("stamps", []),
    }


class LaneHub:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._ttl = {lane.id: lane.customer_ttl_s for lane in store.settings.lanes}
        self._lock = threading.Lock()
        # Event ids (SSE `id:`) go on rising across restarts, so a follower that reconnects to a
        # restarted service with its Last-Event-ID is not told it has already seen the new events.
        self._ids = itertools.count(time.time_ns() // 1000)
        self._history: dict[str, deque[LaneEvent]] = {}
        self._subscribers: list[Subscription] = []
        self._current: dict[str, CurrentCustomer] = {}
        self._devices: dict[str, Device] = {}
        self._listeners: list[Callable[[LaneEvent], None]] = []
        self._print_wakers: dict[str, list[Callable[[], None]]] = {}
        self._streams_ended = False

    # --- lanes ---------------------------------------------------------------------------------

    @property
    def lane_ids(self) -> list[str]:
        """The store's lanes, as config declares them (the back office and the demo list them)."""
        return list(self._ttl)

    def has_lane(self, lane_id: str) -> bool:
        return lane_id in self._ttl

    def ttl(self, lane_id: str) -> timedelta:
        return timedelta(seconds=self._ttl.get(lane_id, 120))

    # --- events --------------------------------------------------------------------------------

    def publish(
        self, lane_id: str, type_: str, data: dict[str, Any] | Callable[[], dict[str, Any]]
    ) -> LaneEvent:
        with self._lock:
            event = LaneEvent(next(self._ids), lane_id, type_, self.store.now(), data)
            history = self._history.get(lane_id)
            if history is None:
                history = self._history[lane_id] = deque(maxlen=HISTORY_PER_LANE)
            history.append(event)
            targets = [s for s in self._subscribers if s.lane_id == lane_id]
            listeners = list(self._listeners)
        for sub in targets:
            # A follower whose loop has closed is unsubscribing; it needs nothing more.
            with contextlib.suppress(RuntimeError):
                sub.loop.call_soon_threadsafe(sub.offer, event)
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                log.exception("lane event listener failed on %s", event.type)
        # A quote comes with every basket the till prices, a clear with every sale: logged only
        # when debugging (a quote by its id and totals). At INFO, the clear alone cost a sale
        # ~5 % of the service's CPU.
        level = logging.DEBUG if type_ in _ROUTINE else logging.INFO
        if log.isEnabledFor(level):
            logged = (
                {k: event.data.get(k) for k in _LOGGED_QUOTE_KEYS}
                if type_ == QUOTE
                else {k: v for k, v in event.data.items() if k != "customer"}
            )
            log.log(level, "lane %s: %s %s", lane_id, type_, logged)
        return event

    def history(self, lane_id: str, *, after_id: int = 0) -> list[LaneEvent]:
        with self._lock:
            return [e for e in self._history.get(lane_id, ()) if e.id > after_id]

    def subscribe(self, lane_id: str) -> Subscription:
        """Follow a lane from inside a running event loop."""
        sub = Subscription(lane_id, asyncio.get_running_loop())
        with self._lock:
            self._subscribers.append(sub)
            if self._streams_ended:
                sub.loop.call_soon_threadsafe(sub.offer, None)
        return sub

    def end_streams(self) -> None:
        """The service is stopping: every follower's stream ends after what it has been sent,
        so the server need not wait out (or cancel) streams that would never end by themselves."""
        with self._lock:
            self._streams_ended = True
            targets = list(self._subscribers)
        for sub in targets:
            with contextlib.suppress(RuntimeError):  # its loop has already closed
                sub.loop.call_soon_threadsafe(sub.offer, None)

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    def subscriber_count(self, lane_id: str | None = None) -> int:
        """How many followers are subscribed (to one lane, or to all): a leak shows here first."""
        with self._lock:
            return sum(1 for s in self._subscribers if lane_id is None or s.lane_id == lane_id)

    def add_listener(self, listener: Callable[[LaneEvent], None]) -> None:
        """Called synchronously for every event on every lane (metrics, logs)."""
        with self._lock:
            self._listeners.append(listener)

    # --- the lane's current customer -----------------------------------------------------------

    def set_customer(
        self,
        lane_id: str,
        customer_id: str,
        method: str,
        summary: dict[str, Any] | None = None,
    ) -> CurrentCustomer:
        now = self.store.now()
        current = CurrentCustomer(customer_id, method, now, now + self.ttl(lane_id), summary)
        with self._lock:
            self._current[lane_id] = current
        return current

    def current_customer(self, lane_id: str) -> CurrentCustomer | None:
        """The customer last identified at the lane, while their `customer_ttl_s` lasts."""
        with self._lock:
            current = self._current.get(lane_id)
            if current is not None and current.expires_at <= self.store.now():
                del self._current[lane_id]
                current = None
        return current

    def clear_customer(self, lane_id: str) -> None:
        """After the sale is committed the lane waits for the next customer (displays go idle)."""
        with self._lock:
            self._current.pop(lane_id, None)
        self.publish(lane_id, CUSTOMER_CLEARED, {})

    # --- quotes --------------------------------------------------------------------------------

    def quote_evaluated(self, lane_id: str | None, result: dict[str, Any]) -> LaneEvent | None:
        """Tell the lane's customer display what the till just priced (a basket naming no lane,
        or a lane this store does not have, is nobody's display: nothing is published)."""
        if lane_id is None or not self.has_lane(lane_id):
            return None
        return self.publish(lane_id, QUOTE, lambda: quote_for_display(result))

    # --- identification from a reader ----------------------------------------------------------

    def identify_token(
        self, lane_id: str, payload: str, *, source: str, read_at: datetime | None = None
    ) -> LaneEvent:
        """Identify what a lane's reader decoded and tell the lane; never raises for bad tokens.

        `read_at` is when the device captured the frame or scan; events carry it so a till (and
        the latency benchmark) can tell how fresh an identification is.
        """
        origin: dict[str, Any] = {"source": source}
        if read_at is not None:
            origin["read_at"] = read_at.isoformat()
        method = classify_token(payload)
        if method is None:
            return self.publish(
                lane_id,
                TOKEN_INVALID,
                {
                    **origin,
                    "code": "token_unrecognised",
                    "message": "not a loyalty QR code or card",
                },
            )
        try:
            with self.store.uow() as uow:
                profile = identify_customer(
                    uow=uow,
                    settings=self.store.settings,
                    secret=self.store.secret,
                    method=method,
                    value=payload,
                    now=self.store.now(),
                )
        except NotFound as exc:
            return self.publish(
                lane_id,
                CUSTOMER_UNKNOWN,
                {
                    **origin,
                    "method": method.value,
                    "code": exc.code,
                    "message": exc.message,
                },
            )
        except DomainError as exc:
            return self.publish(
                lane_id,
                TOKEN_INVALID,
                {
                    **origin,
                    "method": method.value,
                    "code": exc.code,
                    "message": exc.message,
                },
            )
        except SQLAlchemyError as exc:
            log.error("lane %s: identification failed, database unavailable: %s", lane_id, exc)
            return self.publish(
                lane_id,
                DEVICE_FAULT,
                {
                    **origin,
                    "code": "database_unavailable",
                    "message": "the customer could not be looked up; ask them to scan again",
                },
            )
        return self.customer_identified(lane_id, profile, method.value, **origin)

    def customer_identified(
        self,
        lane_id: str,
        profile: CustomerProfile,
        method: str,
        *,
        source: str,
        read_at: str | None = None,
    ) -> LaneEvent:
        summary = customer_summary(profile)
        current = self.set_customer(lane_id, profile.id, method, summary)
        origin = {"source": source} if read_at is None else {"source": source, "read_at": read_at}
        return self.publish(
            lane_id,
            CUSTOMER_IDENTIFIED,
            {
                **origin,
                "method": method,
                "customer": summary,
                "expires_at": current.expires_at.isoformat(),
            },
        )

    def lane_state(self, lane_id: str) -> LaneEvent:
        """What a till that starts following the lane needs first: the customer at the lane
        (or None) and each of the lane's devices as `GET /v1/devices` shows it. Not kept in the
        history: it is a snapshot for one follower, and its id is the last event's it covers."""
        current = self.current_customer(lane_id)
        customer = None
        if current is not None:
            customer = {
                **(current.summary or {"id": current.customer_id}),
                "method": current.method,
                "identified_at": current.identified_at.isoformat(),
                "expires_at": current.expires_at.isoformat(),
            }
        devices = [d for d in self.devices() if d["lane_id"] == lane_id]
        with self._lock:
            history = self._history.get(lane_id)
            last_id = history[-1].id if history else 0
        state = {"customer": customer, "devices": devices}
        return LaneEvent(last_id, lane_id, LANE_STATE, self.store.now(), state)

    # --- receipts waiting for a lane's printer ---------------------------------------------------

    def add_print_waker(self, lane_id: str, wake: Callable[[], None]) -> None:
        """`wake()` is called whenever a receipt is queued for the lane (its print worker)."""
        with self._lock:
            self._print_wakers.setdefault(lane_id, []).append(wake)

    def remove_print_waker(self, lane_id: str, wake: Callable[[], None]) -> None:
        with self._lock:
            wakers = self._print_wakers.get(lane_id, [])
            if wake in wakers:
                wakers.remove(wake)

    def receipt_queued(self, lane_id: str | None) -> None:
        """A sale, refund or reprint put a receipt in the lane's outbox (None: a lane not known
        here, so every lane's): print it now rather than at the worker's next poll."""
        with self._lock:
            if lane_id is None:
                wakers = [wake for lane in self._print_wakers.values() for wake in lane]
            else:
                wakers = list(self._print_wakers.get(lane_id, ()))
        for wake in wakers:
            wake()

    # --- devices -------------------------------------------------------------------------------

    def register_device(
        self, name: str, lane_id: str, kind: str, status: Callable[[], dict[str, Any]]
    ) -> None:
        with self._lock:
            self._devices[name] = Device(name, lane_id, kind, status)

    def unregister_device(self, name: str) -> None:
        with self._lock:
            self._devices.pop(name, None)

    def devices(self) -> list[dict[str, Any]]:
        with self._lock:
            devices = sorted(self._devices.values(), key=lambda d: d.name)
        report = []
        for device in devices:
            try:
                status = device.status()
            except Exception as exc:  # a broken status probe is itself a device fault
                status = {"connected": False, "last_error": f"status unavailable: {exc}"}
            report.append(
                {"name": device.name, "lane_id": device.lane_id, "kind": device.kind, **status}
            )
        return report
