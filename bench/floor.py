"""The floor: the fastest this stack does a till's evaluate and commit, for `serve` to be compared
with in the same run (`bench/evaluate_http.py`, `bench/commit.py`).

A raw ASGI app (no framework, no ORM, no SQLAlchemy) doing exactly the till's work on the same
database, under the same compiled rules, answering the same JSON:

- `POST /v1/baskets/evaluate`: the API key checked against its hash, the basket validated by the
  same pydantic model, the customer and their stamp counters read in one statement on the raw
  driver, the engine's quote, and the quote row written durably (its own transaction) before the
  answer, as `serve` does;
- `POST /v1/transactions` with a basket: in ONE transaction on the raw driver, the idempotency
  record looked up, the customer read, the basket priced, the balance updated, coupons issued, the
  sale and its lines, ledger entries and outbox row inserted, the receipt's "Сгорят" line read
  from the lots after the customer's checkpoint, the answer kept under the key
  (one INSERT, as `serve` keeps it).

SQLite runs with WAL and `synchronous=FULL` (an acknowledged sale survives power loss), as the
service's engine does. Run by the benches as `uvicorn bench.floor:app` with `POS_FLOOR_CONFIG`.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from pos_loyalty.coupons.codes import coupon_qr, format_code, new_code
from pos_loyalty.customers.models import short_name
from pos_loyalty.ledger.expiring import expiring_after_sale
from pos_loyalty.money import qty_to_milli
from pos_loyalty.rules.compiled import compile_rules
from pos_loyalty.rules.config import RulesConfig
from pos_loyalty.rules.engine import evaluate, tier_status
from pos_loyalty.rules.inputs import CustomerSnapshot
from pos_loyalty.rules.payload import BasketIn
from pos_loyalty.sales.pricing import basket_request_json
from pos_loyalty.security import load_or_create_secret
from pos_loyalty.settings import load_settings

settings = load_settings(Path(os.environ["POS_FLOOR_CONFIG"]), environ={})
RULES = compile_rules(
    RulesConfig(points=settings.points, tiers=settings.tiers, rules=settings.rules),
    tz=settings.store.tz,
)
SECRET = load_or_create_secret(settings.secret_path)
KEY_HASH = os.environ["POS_FLOOR_KEY_HASH"]
STORE_ID, LOCALE, CURRENCY = settings.store.id, settings.store.locale, settings.store.currency
QUOTE_TTL = timedelta(minutes=15)
URL = settings.database_url
SQLITE = URL.startswith("sqlite")

if SQLITE:
    db: Any = sqlite3.connect(URL.removeprefix("sqlite:///"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    P = "?"
else:
    import psycopg

    db = psycopg.connect(URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
    P = "%s"


def sql(text: str) -> str:
    return text.replace("?", P)


CUSTOMER = sql(
    "SELECT c.id, c.name, c.phone_masked, c.birthday, c.lifetime_spend, c.points_balance,"
    " EXISTS (SELECT 1 FROM transactions t WHERE t.customer_id = c.id),"
    " (SELECT g.segment FROM customer_segments g WHERE g.customer_id = c.id),"
    " s.rule_id, s.count"
    " FROM customers c LEFT JOIN stamp_counters s ON s.customer_id = c.id WHERE c.id = ?"
)
QUOTE = sql(
    "INSERT INTO quotes (id, created_at, expires_at, rules_version, customer_id, lane_id,"
    " request, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
FIND_KEY = sql(
    "SELECT endpoint, request_hash, status_code, response FROM idempotency_keys"
    " WHERE key_owner = ? AND key = ?"
)
KEEP_ANSWER = sql(
    "INSERT INTO idempotency_keys (key_owner, key, endpoint, request_hash, status_code,"
    " response, created_at) VALUES (?, ?, ?, ?, 201, ?, ?)"
)
BALANCE = sql(
    "UPDATE customers SET points_balance = points_balance + ?, lifetime_spend = "
    + ("max(lifetime_spend + ?, 0)" if SQLITE else "greatest(lifetime_spend + ?, 0)")
    + " WHERE id = ? AND points_balance >= ? RETURNING points_balance, lifetime_spend"
)
COUPON = sql(
    "INSERT INTO coupons (code, owner_customer_id, rule_id, label, amount_off, percent_off,"
    " min_subtotal, skus, categories, stack_group, valid_from, expires_at, status,"
    " issued_by_transaction_id, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, '[]', '[]', ?, ?, ?, 'issued', ?, ?)"
)
SALE = sql(
    "INSERT INTO transactions (id, store_id, lane_id, customer_id, quote_id, rules_version,"
    " currency, subtotal, discount_total, burn_value, total, points_earned, points_burned,"
    " payment_method, paid, change, status, refunded_amount, stamps, result, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, 0, 'completed', 0, ?, ?, ?)"
)
LINE = sql(
    "INSERT INTO transaction_lines (transaction_id, position, sku, name, category, qty_milli,"
    " unit_price, subtotal, discount, burn, total, stamps) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?,"
    " ?, ?, ?)"
)
LEDGER = sql(
    "INSERT INTO ledger_entries (customer_id, kind, points, created_at, expires_at, lot_id,"
    " expired_lot_id, reverses_id, transaction_id, refund_id, rule_id, note)"
    " VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL, ?, NULL, ?, ?)"
)
OUTBOX = sql(
    "INSERT INTO receipt_outbox (transaction_id, kind, lane_id, status, attempts, created_at,"
    " updated_at) VALUES (?, 'sale', ?, 'queued', 0, ?, ?)"
)


def ts(value: datetime | None) -> Any:
    """A time as the column takes it: text as SQLAlchemy stores it on SQLite (UTC, always with
    microseconds, so text order is time order), the datetime on PostgreSQL."""
    if value is None or not SQLITE:
        return value
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class _OnCursor:
    """What `ledger/expiring.py` asks of a unit of work (`driver`, `flush`), on a raw cursor in
    its transaction: the floor reads the lots as `serve` does, on the raw driver."""

    def __init__(self, cur: Any) -> None:
        self._cur = cur

    def driver(self, statement: str, params: Any = ()) -> Any:
        return self._cur.execute(
            sql(statement), [ts(v) if isinstance(v, datetime) else v for v in params]
        )

    def flush(self) -> None:
        """Nothing is held back: every statement went to the driver."""


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def load_customer(cur: Any, customer_id: str) -> tuple[CustomerSnapshot, dict[str, Any]] | None:
    rows = cur.execute(CUSTOMER, (customer_id,)).fetchall()
    if not rows:
        return None
    first = rows[0]
    birthday = first[3]
    if isinstance(birthday, str):
        birthday = datetime.fromisoformat(birthday).date()
    snap = CustomerSnapshot(
        id=first[0],
        lifetime_spend=int(first[4]),
        points_balance=max(int(first[5]), 0),
        segments=frozenset((first[7],)) if first[7] else frozenset(),
        first_purchase=not first[6],
        stamps={r[8]: int(r[9]) for r in rows if r[8] is not None},
        birthday=birthday,
    )
    shown = {
        "id": first[0],
        "name": short_name(first[1]),
        "phone": first[2],
        "tier": tier_status(RULES.tiers, int(first[4])).name,
        "balance": int(first[5]),
        "lifetime_spend": int(first[4]),
    }
    return snap, shown


def price(cur: Any, basket: BasketIn, now: datetime) -> tuple[Any, dict[str, Any], str | None]:
    """(the quote, the answer, the customer id): the till's pricing on the raw driver."""
    token = basket.customer or {}
    found = load_customer(cur, token["id"]) if "id" in token else None
    snap, shown = found if found else (None, None)
    quote = evaluate(
        basket.to_basket(), snap, RULES, now, locale=LOCALE, currency=CURRENCY, explain=False
    )
    answer = {
        "quote_id": uuid.uuid4().hex,
        "expires_at": (now + QUOTE_TTL).isoformat(),
        "customer": shown,
        **quote.to_dict(),
    }
    return quote, answer, snap.id if snap else None


def evaluate_route(body: bytes) -> tuple[int, bytes]:
    basket = BasketIn.model_validate_json(body)
    now = datetime.now(UTC)
    cur = db.cursor()
    quote, answer, customer_id = price(cur, basket, now)
    cur.execute("BEGIN IMMEDIATE" if SQLITE else "BEGIN")
    cur.execute(
        QUOTE,
        (
            answer["quote_id"],
            ts(now),
            ts(now + QUOTE_TTL),
            quote.rules_version,
            customer_id,
            basket.lane_id,
            dumps(basket_request_json(basket)),
            dumps(quote.to_stored(answer)),
        ),
    )
    cur.execute("COMMIT")
    return 200, orjson.dumps(answer)


def commit_route(body: bytes, owner: str, key: str) -> tuple[int, bytes]:
    basket = BasketIn.model_validate_json(body)
    digest = hashlib.sha256(body).hexdigest()
    now = datetime.now(UTC)
    cur = db.cursor()
    cur.execute("BEGIN IMMEDIATE" if SQLITE else "BEGIN")
    try:
        found = cur.execute(FIND_KEY, (owner, key)).fetchone()
        if found is not None:
            cur.execute("COMMIT")
            return int(found[2]), found[3].encode() if isinstance(found[3], str) else b"{}"
        quote, answer, customer_id = price(cur, basket, now)
        points, tid = quote.points, uuid.uuid4().hex
        balance, spend = cur.execute(
            BALANCE, (points.earn - points.burn, quote.total, customer_id, points.burn)
        ).fetchone()
        issued = []
        for reward in quote.coupons.to_issue:
            code = new_code()
            cur.execute(
                COUPON,
                (
                    code,
                    None if reward.bearer else customer_id,
                    reward.rule_id,
                    reward.label,
                    reward.amount_off,
                    reward.percent_off,
                    reward.min_subtotal,
                    reward.stack_group,
                    ts(reward.valid_from),
                    ts(reward.expires_at),
                    tid,
                    ts(now),
                ),
            )
            issued.append({"code": format_code(code), "qr": coupon_qr(SECRET, code)})
        answer.update(
            transaction_id=tid,
            created_at=now.isoformat(),
            lane_id=basket.lane_id,
            store_id=STORE_ID,
            coupons_issued=issued,
            balance_after=balance,
            payment=None,
        )
        answer["customer"] = {**answer["customer"], "balance": balance, "lifetime_spend": spend}
        expire_days = RULES.points.expire_days
        expires = now + timedelta(days=expire_days) if expire_days else None
        expiring = expiring_after_sale(  # the receipt's "Сгорят" line, on this cursor
            uow=_OnCursor(cur),  # type: ignore[arg-type]
            customer_id=customer_id,
            burn=points.burn,
            earned=[e.points for e in points.earned],
            expires_at=expires,
            balance=balance,
            tz=settings.store.tz,
        )
        answer["points_expiring"] = expiring.to_dict() if expiring else None
        stamps = {s.rule_id: s.advance for s in quote.stamps}
        cur.execute(
            SALE,
            (
                tid,
                STORE_ID,
                basket.lane_id,
                customer_id,
                answer["quote_id"],
                quote.rules_version,
                quote.currency,
                quote.subtotal,
                quote.discount_total,
                points.burn_value,
                quote.total,
                points.earn,
                points.burn,
                dumps(stamps),
                dumps(answer),
                ts(now),
            ),
        )
        cur.executemany(
            LINE,
            [
                (
                    tid,
                    i,
                    ln.sku,
                    ln.name,
                    ln.category,
                    qty_to_milli(ln.qty),
                    ln.unit_price,
                    ln.subtotal,
                    ln.discount,
                    ln.burn,
                    ln.total,
                    dumps(ln.stamps),
                )
                for i, ln in enumerate(quote.lines)
            ],
        )
        entries = [
            (customer_id, "earn", e.points, ts(now), ts(expires), tid, e.rule_id, e.label[:200])
            for e in points.earned
            if e.points
        ]
        if entries:
            cur.executemany(LEDGER, entries)
        cur.execute(OUTBOX, (tid, basket.lane_id, ts(now), ts(now)))
        out = orjson.dumps(answer)
        cur.execute(
            KEEP_ANSWER, (owner, key, "POST /v1/transactions", digest, out.decode(), ts(now))
        )
        cur.execute("COMMIT")
        return 201, out
    except BaseException:
        cur.execute("ROLLBACK")
        raise


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    headers = dict(scope["headers"])
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    token = headers.get(b"authorization", b"").partition(b" ")[2].strip().decode()
    owner = hashlib.sha256(token.encode()).hexdigest()
    path = scope["path"]
    try:
        if owner != KEY_HASH:
            status, out = 401, b'{"error":{"code":"unauthorized"}}'
        elif path == "/v1/baskets/evaluate":
            status, out = evaluate_route(body)
        elif path == "/v1/transactions":
            status, out = commit_route(body, owner, headers[b"idempotency-key"].decode())
        elif path == "/healthz":
            status, out = 200, b'{"status":"ok"}'
        else:
            status, out = 404, b'{"error":{"code":"not_found"}}'
    except ValidationError:
        status, out = 422, b'{"error":{"code":"validation_error"}}'
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(out)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": out})
