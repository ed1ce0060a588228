"""How the demo speaks: to the store owner, in the store's language (Russian for the demo store)
or in English (`--lang en`), with the technical detail (HTTP codes, event names, transaction ids,
idempotency keys) only under `--verbose`. Money and dates go through babel in the store's locale.

Every sentence is written once, in both languages, where it is said: `say.tr("…", "…")`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal
from rich.table import Table

from pos_loyalty.cli.common import console
from pos_loyalty.money import format_money
from pos_loyalty.rules.messages import is_russian
from pos_loyalty.settings import Settings


class Lang(StrEnum):
    RU = "ru"
    EN = "en"


def store_lang(settings: Settings) -> Lang:
    """The store's language: Russian for a Russian-speaking locale, English otherwise."""
    return Lang.RU if is_russian(settings.store.locale) else Lang.EN


# What a refusal means, for the owner; the API's own message is shown for any other code.
REFUSALS: dict[str, tuple[str, str]] = {
    "phone_taken": ("этот телефон уже зарегистрирован", "this phone is already enrolled"),
    "qr_forged": ("поддельный QR-код: подпись не сходится", "a forged QR: the signature fails"),
    "qr_expired": ("QR-код устарел", "the QR code has expired"),
    "qr_malformed": ("это не QR-код программы", "not a loyalty QR code"),
    "card_bad_checksum": (
        "в номере карты ошибка (контрольная цифра)",
        "the card number has a typo (check digit)",
    ),
    "card_malformed": ("это не номер карты", "not a card number"),
    "customer_not_found": ("такого покупателя нет", "no such customer"),
    "promo_code_exhausted": (
        "промокод уже использован этим покупателем",
        "this customer has used the code already",
    ),
    "promo_code_unknown": ("такого промокода нет", "no such promo code"),
}


@dataclass
class Narrator:
    settings: Settings
    lang: Lang
    verbose: bool = False
    failed: list[str] = field(default_factory=list)  # steps that did not go as scripted

    @property
    def locale(self) -> str:
        """Babel's locale for dates and figures: the store's, or English with `--lang en`.
        Money keeps the store's own format in both (as on its receipts and hints)."""
        store = self.settings.store.locale
        if self.lang == store_lang(self.settings):
            return store
        return "ru_RU" if self.lang == Lang.RU else "en_GB"

    def tr(self, ru: str, en: str) -> str:
        return ru if self.lang == Lang.RU else en

    def tech(self, text: str, sep: str = " ") -> str:
        """`text` (dimmed, after `sep`) under --verbose; nothing for the store owner."""
        return f"{sep}[dim]{text}[/]" if self.verbose else ""

    def money(self, amount: int) -> str:
        return format_money(amount, self.settings.store.currency, self.settings.store.locale)

    def number(self, value: float) -> str:
        """A figure with one decimal (`1,5`)."""
        return str(format_decimal(value, "#,##0.0", locale=self.locale))

    def day(self, value: date | str) -> str:
        """A date as the owner reads it (`14 мар. 2026 г.`)."""
        return str(format_date(date.fromisoformat(str(value)), "medium", locale=self.locale))

    def refusal(self, reply_body: Any, status: int | str = "") -> str:
        """Why the service said no, in the owner's words (status and code under --verbose)."""
        error = reply_body.get("error", {}) if isinstance(reply_body, dict) else {}
        code = str(error.get("code", "?"))
        words = REFUSALS.get(code)
        text = self.tr(*words) if words else str(error.get("message", ""))
        technical = f"{status} {code}".strip()
        return f"{self.tech(technical, '')}{': ' if self.verbose else ''}{text}"

    def table(self, title: str, *columns: str) -> Table:
        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        return table

    def print(self, *things: Any, **options: Any) -> None:
        console.print(*things, **options)

    def fail(self, ru: str, en: str) -> str:
        """Record a step that went wrong (the demo exits 1) and return what to show for it."""
        problem = self.tr(ru, en)
        self.failed.append(problem)
        return f"[red]{problem}[/]"
