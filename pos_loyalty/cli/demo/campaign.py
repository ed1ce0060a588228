"""The demo's evening campaign: regulars who stopped coming half a year ago get a reactivation
coupon, exported with the contacts they allowed for an SMS or e-mail service (`reactivation.csv`).

The demo store keeps no plain phones, so the coupons go by e-mail: Сергей and Нина gave an
address and the consent `email`; Павел gave neither and gets nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pos_loyalty.audit.service import Operator
from pos_loyalty.cli.demo.stage import Stage
from pos_loyalty.coupons.campaigns import issue_to_segment, write_outreach_csv
from pos_loyalty.customers.emails import mask_email
from pos_loyalty.rules.quote import coupon_valid_until
from pos_loyalty.store import Store

# The program's winback offer (config.toml) is the coupon the campaign sends.
REACTIVATION_RULE = "winback-150"
LAPSED_REGULARS: list[dict[str, Any]] = [
    {
        "phone": "9035550101",
        "name": "Сергей Волков",
        "email": "s.volkov@example.ru",
        "consents": {"sms": True, "email": True},
    },
    {
        "phone": "9035550202",
        "name": "Нина Белова",
        "email": "nina.belova@example.ru",
        "consents": {"marketing": True, "email": True},
    },
    {"phone": "9035550303", "name": "Павел Зайцев"},
]
AWAY_DAYS = 200


def lapsed_regulars(stage: Stage, store: Store, lines: list[dict[str, Any]]) -> None:
    """Enrol three regulars and sell to them as the store's clock stood 200 days ago."""
    now, clock = store.now(), store.clock
    store.clock = lambda: now - timedelta(days=AWAY_DAYS)
    try:
        for person in LAPSED_REGULARS:
            customer = stage.till.call("POST", "/v1/customers", person).body
            stage.commit(stage.basket("lane-9", lines, customer={"id": customer["id"]}))
    finally:
        store.clock = clock


def reactivation_campaign(stage: Stage, store: Store) -> None:
    """Coupons for the lapsed segment, exported to `out/reactivation.csv`."""
    say = stage.say
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
    write_outreach_csv(outreach, stage.out / "reactivation.csv")
    table = say.table(
        say.tr(
            "Вечер: купоны, чтобы вернуть ушедших покупателей",
            "Evening: reactivation coupons for the lapsed segment",
        )
        + say.tech(f"({REACTIVATION_RULE})"),
        say.tr("покупатель", "customer"),
        say.tr("телефон", "phone"),
        "e-mail",
        say.tr("каналы", "channels"),
        say.tr("последняя покупка", "last purchase"),
        say.tr("купон", "coupon"),
        say.tr("действует до", "valid until"),
    )
    for row in outreach.rows:
        table.add_row(
            row.name,
            row.phone + ("" if row.phone_in_clear else say.tr(" (скрыт)", " (masked)")),
            mask_email(row.email) if row.email else "—",
            ", ".join(row.channels),
            say.day(row.last_purchase[:10]) if row.last_purchase else "—",
            row.coupon.display_code,
            say.day(coupon_valid_until(row.coupon.expires_at, store.settings.store.tz)),
        )
    say.print(table)
    say.print(
        say.tr(
            f"Выдано купонов: {len(outreach.rows)}, они записаны в reactivation.csv; без "
            f"согласия или контакта для связи: {outreach.without_consent}. Телефон "
            "выгружается открытым, только если магазин хранит его (\\[privacy] "
            "store_plain_phone = true) и покупатель согласился на SMS; e-mail — только с "
            "согласием на e-mail. Скрытый телефон не годится для рассылки: купона нет.",
            f"{len(outreach.rows)} coupons issued and written to reactivation.csv; "
            f"{outreach.without_consent} lapsed customer(s) gave no consent or no contact to "
            "reach them on. Phones go out in clear only with \\[privacy] store_plain_phone = "
            "true and consent to sms, e-mails only with consent to email; a masked phone "
            "reaches nobody, so it gets no coupon.",
        )
    )
