"""The demo's evening campaign: regulars who stopped coming half a year ago get a reactivation
coupon, exported with the contacts they allowed for an SMS service (`reactivation.csv`)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from rich.table import Table

from pos_loyalty.audit.service import Operator
from pos_loyalty.cli.common import console
from pos_loyalty.coupons.campaigns import issue_to_segment, write_outreach_csv
from pos_loyalty.store import Store

# The program's winback offer (config.toml) is the coupon the campaign sends.
REACTIVATION_RULE = "winback-150"
LAPSED_REGULARS: list[dict[str, Any]] = [
    {"phone": "9035550101", "name": "Сергей Волков", "consents": {"sms": True}},
    {"phone": "9035550202", "name": "Нина Белова", "consents": {"marketing": True}},
    {"phone": "9035550303", "name": "Павел Зайцев"},
]
AWAY_DAYS = 200


class Till(Protocol):
    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any: ...


def lapsed_regulars(store: Store, till: Till, basket: dict[str, Any]) -> None:
    """Enrol three regulars and sell to them as the store's clock stood 200 days ago."""
    now, clock = store.now(), store.clock
    store.clock = lambda: now - timedelta(days=AWAY_DAYS)
    try:
        for person in LAPSED_REGULARS:
            customer = till.call("POST", "/v1/customers", person).body
            body = {**basket, "customer": {"id": customer["id"]}}
            till.call("POST", "/v1/transactions", body, {"Idempotency-Key": uuid.uuid4().hex})
    finally:
        store.clock = clock


def reactivation_campaign(store: Store, out: Path) -> None:
    """Coupons for the lapsed segment, exported to `out/reactivation.csv`."""
    with store.uow(write=True) as uow:
        outreach = issue_to_segment(
            uow=uow,
            settings=store.settings,
            secret=store.secret,
            rules=store.rules,
            operator=Operator(key_id=None, name="demo"),
            rule_id=REACTIVATION_RULE,
            segment="lapsed",
            now=store.now(),
        )
    write_outreach_csv(outreach, out / "reactivation.csv")
    table = Table(
        title=f"Evening: reactivation coupons for the lapsed segment ({REACTIVATION_RULE})"
    )
    for column in ("customer", "phone", "channels", "last purchase", "coupon", "valid until"):
        table.add_column(column)
    for row in outreach.rows:
        table.add_row(
            row.name,
            row.phone + ("" if row.phone_in_clear else " (masked)"),
            ", ".join(row.channels),
            row.last_purchase,
            row.coupon.display_code,
            row.coupon.expires_at.astimezone(store.settings.store.tz).date().isoformat(),
        )
    console.print(table)
    console.print(
        f"{len(outreach.rows)} coupons issued and written to reactivation.csv; "
        f"{outreach.without_consent} lapsed customer(s) gave no consent to be contacted. Phones "
        "go out in clear only with [privacy] store_plain_phone = true and consent to sms."
    )
