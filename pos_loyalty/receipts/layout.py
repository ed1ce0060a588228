"""The receipt laid out for a paper width: styled lines that never run past the last column.

A 58 mm roll holds 30 columns of Font A (Epson TM-T88 at 180 dpi) or 32 (203 dpi), an 80 mm roll
42 (180 dpi) or 48 (203 dpi); `pos_loyalty.receipts.media` says which for a lane's printer. Long
names and labels wrap; an amount is never cut or split: it moves to a line of its own,
right-aligned, when the text beside it leaves no room. Double-width text counts two columns a
character. With `for_printer=True` characters that thermal printers' code pages lack (₽, ×, −, …)
are replaced before anything is measured, so the width promise holds on paper too.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, tzinfo
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, format_percent

from pos_loyalty.money import Qty, format_money
from pos_loyalty.receipts.document import (
    IssuedCoupon,
    LoyaltyBlock,
    ReceiptDocument,
    RefundBlock,
)
from pos_loyalty.rules.quote import coupon_valid_until

SUPPORTED_COLUMNS = (30, 32, 42, 48)

# What a CP866/CP437 printer cannot print, and what it prints instead. "₽" became a Unicode
# character in 2014 and no ESC/POS code page has it; Russian receipts write "р." as before.
PRINTER_SUBSTITUTES = str.maketrans(
    {
        "₽": "р.",
        "×": "x",
        "−": "-",
        "–": "-",
        "—": "-",
        "…": "...",
        "«": '"',
        "»": '"',
        "“": '"',
        "”": '"',
        "„": '"',
        "‘": "'",
        "’": "'",
        "\u202f": "\u00a0",  # narrow no-break space (some locales group digits with it)
    }
)


# What textwrap would change in a line that fits: control whitespace, or spaces at either end.
_UNTIDY = re.compile(r"[\t\n\r\x0b\x0c]|^ | $")


class Align(StrEnum):
    LEFT = "left"
    CENTER = "center"
    RIGHT = "right"


@dataclass(frozen=True, slots=True)
class TextLine:
    """One printed line; `text` is already padded where two columns share it."""

    text: str
    align: Align = Align.LEFT
    bold: bool = False
    double_width: bool = False
    double_height: bool = False

    @property
    def width(self) -> int:
        """Columns the line takes on paper."""
        return len(self.text) * (2 if self.double_width else 1)


@dataclass(frozen=True, slots=True)
class QrBlock:
    """A QR code printed centred on its own; the renderer chooses the module size for the paper."""

    payload: str


@dataclass(frozen=True, slots=True)
class Feed:
    lines: int = 1


@dataclass(frozen=True, slots=True)
class Cut:
    """The end of the receipt: feed past the cutter and cut."""


LaidOutLine = TextLine | QrBlock | Feed | Cut


@dataclass(frozen=True, slots=True)
class LaidOutReceipt:
    transaction_id: str
    columns: int
    for_printer: bool
    lines: tuple[LaidOutLine, ...]

    def text_lines(self) -> tuple[TextLine, ...]:
        return tuple(line for line in self.lines if isinstance(line, TextLine))

    def qr_payloads(self) -> tuple[str, ...]:
        return tuple(line.payload for line in self.lines if isinstance(line, QrBlock))


# --- words ---------------------------------------------------------------------------------------

_RU: dict[str, str] = {
    "lane": "Касса {lane}",
    "receipt": "Чек № {id}",
    "subtotal": "Сумма",
    "discounts": "Скидки",
    "line_discount": "скидка",
    "discount_total": "Скидка",
    "paid_with_points": "Оплачено баллами ({points})",
    "total": "ИТОГО",
    "paid_cash": "Наличные",
    "paid_card": "Картой",
    "paid": "Оплачено",
    "change": "Сдача",
    "loyalty": "Программа лояльности",
    "customer": "Покупатель",
    "phone": "Телефон",
    "tier": "Уровень",
    "earned": "Начислено баллов",
    "burned": "Списано баллов",
    "balance": "Баланс",
    "debt": "Долг по баллам",
    "debt_note": "Оплата баллами — после погашения долга",
    "pending": "Ожидают до {date}",
    "kept": "Удержано за баллы/купоны",
    "expiry": "Сгорят {date}",
    "stamps": "{count} из {every}",
    "coupon": "ВАШ КУПОН",
    "amount_off": "Скидка {amount}",
    "percent_off": "Скидка {percent}",
    "min_subtotal": "При покупке от {amount}",
    "skus": "На товары: {items}",
    "categories": "На категории: {items}",
    "valid_from": "Действует с {date}",
    "valid_until": "Действует до {date}",
    "code": "Код купона:",
    "copy": "КОПИЯ",
    "refund": "ВОЗВРАТ",
    "refund_no": "Возврат № {id}",
    "refund_of": "по чеку № {id} от {date}",
    "qty": "количество {qty}",
    "earn_reversed": "Баллы за покупку списаны",
    "burn_returned": "Баллы возвращены",
    "coupons_cancelled": "Аннулированы купоны:",
    "coupons_returned": "Снова действуют купоны:",
}
_EN: dict[str, str] = {
    "lane": "Lane {lane}",
    "receipt": "Receipt {id}",
    "subtotal": "Subtotal",
    "discounts": "Discounts",
    "line_discount": "discount",
    "discount_total": "Discount",
    "paid_with_points": "Paid with points ({points})",
    "total": "TOTAL",
    "paid_cash": "Cash",
    "paid_card": "Card",
    "paid": "Paid",
    "change": "Change",
    "loyalty": "Loyalty",
    "customer": "Customer",
    "phone": "Phone",
    "tier": "Tier",
    "earned": "Points earned",
    "burned": "Points spent",
    "balance": "Balance",
    "debt": "Points owed",
    "debt_note": "Paying with points resumes once the debt is repaid",
    "pending": "Pending until {date}",
    "kept": "Kept for points/coupons",
    "expiry": "Expiring {date}",
    "stamps": "{count} of {every}",
    "coupon": "YOUR COUPON",
    "amount_off": "{amount} off",
    "percent_off": "{percent} off",
    "min_subtotal": "On purchases from {amount}",
    "skus": "On items: {items}",
    "categories": "On categories: {items}",
    "valid_from": "Valid from {date}",
    "valid_until": "Valid until {date}",
    "code": "Coupon code:",
    "copy": "COPY",
    "refund": "REFUND",
    "refund_no": "Refund {id}",
    "refund_of": "of receipt {id}, {date}",
    "qty": "quantity {qty}",
    "earn_reversed": "Points for the sale taken back",
    "burn_returned": "Points given back",
    "coupons_cancelled": "Coupons cancelled:",
    "coupons_returned": "Coupons valid again:",
}
# Point nouns by CLDR plural category: 1 балл, 2 балла, 5 баллов.
_POINTS_RU = {"one": "балл", "few": "балла", "many": "баллов", "other": "балла"}
_POINTS_EN = {"one": "point", "other": "points"}


@lru_cache(maxsize=16)
def _locale(name: str) -> Locale:
    try:
        return Locale.parse(name)
    except (ValueError, TypeError, UnknownLocaleError):
        return Locale.parse("ru_RU")


@lru_cache(maxsize=8192)
def _money(amount: int, currency: str, locale: str) -> str:
    return format_money(amount, currency, locale)


@lru_cache(maxsize=4096)
def _weight(qty: Decimal, locale: str) -> str:
    """Weighed goods keep three places, as scales print them: 0,350."""
    return format_decimal(qty, "#,##0.000", locale=_locale(locale))


class _Words:
    """Words, money, quantities and dates in the store's locale, made printable if asked."""

    def __init__(self, document: ReceiptDocument, *, for_printer: bool) -> None:
        self.locale = _locale(document.locale)
        self.locale_name = document.locale
        self.currency = document.currency
        self.russian = self.locale.language == "ru"
        self.catalogue = _RU if self.russian else _EN
        self.tz: tzinfo = ZoneInfo(document.timezone)
        self.for_printer = for_printer

    def clean(self, text: str) -> str:
        return text.translate(PRINTER_SUBSTITUTES) if self.for_printer else text

    def word(self, key: str, **values: object) -> str:
        return self.clean(self.catalogue[key].format(**values))

    def money(self, amount: int) -> str:
        return self.clean(_money(amount, self.currency, self.locale_name))

    def minus(self, amount: int) -> str:
        return self.money(-amount)

    def qty(self, qty: Qty) -> str:
        if isinstance(qty, int):
            return str(qty)
        return self.clean(_weight(qty, self.locale_name))

    def percent(self, percent: int) -> str:
        return self.clean(format_percent(Decimal(percent) / 100, locale=self.locale))

    def date(self, moment: datetime) -> str:
        return format_date(moment.astimezone(self.tz).date(), "dd.MM.yyyy", locale=self.locale)

    def valid_until(self, expires_at: datetime) -> str:
        """The last local day a coupon is good on: that date alone when it lasts the whole day
        (it expires at local midnight after it), else with the time, so "до 05.12.2026" never
        promises an evening the coupon no longer has."""
        local = expires_at.astimezone(self.tz)
        if local.time() == time(0):
            last_day = coupon_valid_until(expires_at, self.tz)
            return format_date(last_day, "dd.MM.yyyy", locale=self.locale)
        return self.date_time(local)

    def date_time(self, moment: datetime) -> str:
        return format_datetime(moment.astimezone(self.tz), "dd.MM.yyyy HH:mm", locale=self.locale)

    def points(self, count: int) -> str:
        forms = _POINTS_RU if self.russian else _POINTS_EN
        noun = forms.get(self.locale.plural_form(abs(count)), forms["other"])
        number = format_decimal(count, locale=self.locale)
        return self.clean(f"{number}\u00a0{noun}")

    def signed_points(self, count: int) -> str:
        return ("+" if count > 0 else "") + self.clean(format_decimal(count, locale=self.locale))


# --- lines ---------------------------------------------------------------------------------------


def wrap(text: str, width: int, *, indent: str = "") -> list[str]:
    """Word-wrap to `width`; a word longer than the line is broken, never left to overflow."""
    if width <= len(indent):
        indent = ""
    if text and len(indent) + len(text) <= width and not _UNTIDY.search(text):
        return [indent + text]  # the common case, without textwrap's cost
    lines = textwrap.wrap(
        text,
        width,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=True,
        break_on_hyphens=False,
    )
    return lines or [indent.rstrip()]


def pair(left: str, right: str, width: int, *, indent: str = "") -> list[str]:
    """`left` wrapped, `right` (an amount) flush right on the last line or on a line of its own."""
    if len(right) > width:  # only a pathological label can be this long; still never overflow
        return wrap(left, width, indent=indent) + wrap(right, width)
    lines = wrap(left, width, indent=indent)
    last = lines[-1]
    if len(last) + 1 + len(right) <= width:
        lines[-1] = last + " " * (width - len(last) - len(right)) + right
    else:
        lines.append(right.rjust(width))
    return lines


def _titled_rule(title: str, width: int, fill: str) -> str:
    """`------ Программа лояльности ------`, or the bare title when it fills the line."""
    if len(title) + 4 > width:
        return title[:width]
    return f" {title} ".center(width, fill)


class _Builder:
    def __init__(self, columns: int) -> None:
        self.columns = columns
        self.lines: list[LaidOutLine] = []

    def text(
        self,
        text: str,
        align: Align = Align.LEFT,
        *,
        bold: bool = False,
        double_width: bool = False,
        double_height: bool = False,
    ) -> None:
        self.lines.append(TextLine(text, align, bold, double_width, double_height))

    def texts(self, texts: list[str], align: Align = Align.LEFT, *, bold: bool = False) -> None:
        for text in texts:
            self.text(text, align, bold=bold)

    def wrapped(self, text: str, align: Align = Align.LEFT, *, bold: bool = False) -> None:
        self.texts(wrap(text, self.columns), align, bold=bold)

    def pair(self, left: str, right: str, *, indent: str = "", bold: bool = False) -> None:
        self.texts(pair(left, right, self.columns, indent=indent), bold=bold)

    def big(self, text: str, align: Align = Align.CENTER) -> None:
        """Double width and height when it fits half the columns; else bold, double height."""
        if len(text) * 2 <= self.columns:
            self.text(text, align, bold=True, double_width=True, double_height=True)
        else:
            for part in wrap(text, self.columns):
                self.text(part, align, bold=True, double_height=True)

    def big_pair(self, left: str, right: str) -> None:
        """`left` (one word) and an amount; double size when both fit half the columns."""
        half = self.columns // 2
        if len(left) + 1 + len(right) <= half:
            padded = left + " " * (half - len(left) - len(right)) + right
            self.text(padded, bold=True, double_width=True, double_height=True)
        else:
            for part in pair(left, right, self.columns):
                self.text(part, bold=True, double_height=True)

    def rule(self, fill: str = "-", title: str = "") -> None:
        self.text(_titled_rule(title, self.columns, fill) if title else fill * self.columns)


def layout_receipt(
    document: ReceiptDocument, columns: int = 42, *, for_printer: bool = False
) -> LaidOutReceipt:
    """Every block of `document` as lines of at most `columns` (30, 32, 42 or 48) characters."""
    if columns not in SUPPORTED_COLUMNS:
        raise ValueError(f"a receipt is laid out for {SUPPORTED_COLUMNS} columns, not {columns}")
    words = _Words(document, for_printer=for_printer)
    out = _Builder(columns)
    if document.refund is not None:
        _refund(out, words, document, document.refund)
        out.lines.append(Cut())
        return LaidOutReceipt(
            transaction_id=document.header.transaction_id,
            columns=columns,
            for_printer=for_printer,
            lines=tuple(out.lines),
        )
    _header(out, words, document)
    _items(out, words, document)
    _totals(out, words, document)
    if document.loyalty is not None:
        _loyalty(out, words, document.loyalty)
    for coupon in document.coupons:
        _coupon(out, words, coupon, document.header.created_at)
    _footer(out, words, document.footer)
    out.lines.append(Cut())
    return LaidOutReceipt(
        transaction_id=document.header.transaction_id,
        columns=columns,
        for_printer=for_printer,
        lines=tuple(out.lines),
    )


def _header(out: _Builder, words: _Words, document: ReceiptDocument) -> None:
    header = document.header
    out.big(words.clean(header.store_name))
    place = header.store_id
    if header.lane_id:
        place += ", " + words.word("lane", lane=header.lane_id)
    out.wrapped(words.clean(place), Align.CENTER)
    if document.copy:
        out.big(words.word("copy"))
    out.rule()
    out.pair(words.word("receipt", id=header.transaction_id), words.date_time(header.created_at))
    out.rule()


def _items(out: _Builder, words: _Words, document: ReceiptDocument) -> None:
    for item in document.items:
        name = words.clean(item.name)
        if item.qty == 1:
            out.pair(name, words.money(item.subtotal))
        else:
            out.wrapped(name)
            quantity = f"{words.qty(item.qty)} × {words.money(item.unit_price)}"
            out.pair(words.clean(quantity), words.money(item.subtotal), indent="  ")
        if item.discount:
            out.pair(words.word("line_discount"), words.minus(item.discount), indent="  ")
    out.rule()


def _totals(out: _Builder, words: _Words, document: ReceiptDocument) -> None:
    totals = document.totals
    if document.discounts or totals.burn_value:
        out.pair(words.word("subtotal"), words.money(totals.subtotal))
    if document.discounts:
        out.text(words.word("discounts"))
        for discount in document.discounts:
            out.pair(words.clean(discount.label), words.minus(discount.amount), indent="  ")
    if totals.burn_value:
        label = words.word("paid_with_points", points=totals.points_burned)
        out.pair(label, words.minus(totals.burn_value))
    out.big_pair(words.word("total"), words.money(totals.total))
    if totals.paid is not None:
        method = {"cash": "paid_cash", "card": "paid_card"}.get(totals.payment_method or "", "paid")
        out.pair(words.word(method), words.money(totals.paid))
        if totals.change:
            out.pair(words.word("change"), words.money(totals.change))


def _loyalty(out: _Builder, words: _Words, loyalty: LoyaltyBlock) -> None:
    out.rule(title=words.word("loyalty"))
    out.pair(words.word("customer"), words.clean(loyalty.customer_name))
    out.pair(words.word("phone"), words.clean(loyalty.phone_masked))
    if loyalty.tier:
        out.pair(words.word("tier"), words.clean(loyalty.tier))
    out.pair(words.word("earned"), words.signed_points(loyalty.points_earned))
    if loyalty.points_burned:
        out.pair(words.word("burned"), words.signed_points(-loyalty.points_burned))
    _balance(out, words, loyalty)
    if loyalty.next_expiry is not None and loyalty.next_expiry.points > 0:
        expiry = loyalty.next_expiry
        out.pair(
            words.word("expiry", date=words.date(expiry.expires_at)), words.points(expiry.points)
        )
    for stamp in loyalty.stamps:
        out.pair(
            words.clean(stamp.label), words.word("stamps", count=stamp.count, every=stamp.every)
        )
    if loyalty.hint:
        out.wrapped(words.clean(loyalty.hint), bold=True)


def _coupon(out: _Builder, words: _Words, coupon: IssuedCoupon, issued_at: datetime) -> None:
    out.rule("=")
    out.big(words.word("coupon"))
    out.texts(wrap(words.clean(coupon.label), out.columns), Align.CENTER)
    if coupon.amount_off is not None:
        out.big(words.word("amount_off", amount=words.money(coupon.amount_off)))
    if coupon.percent_off is not None:
        out.big(words.word("percent_off", percent=words.percent(coupon.percent_off)))
    if coupon.min_subtotal:
        out.wrapped(
            words.word("min_subtotal", amount=words.money(coupon.min_subtotal)), Align.CENTER
        )
    if coupon.skus:
        items = ", ".join(coupon.sku_names or coupon.skus)
        out.wrapped(words.word("skus", items=items), Align.CENTER)
    if coupon.categories:
        items = ", ".join(coupon.category_names or coupon.categories)
        out.wrapped(words.word("categories", items=items), Align.CENTER)
    if words.date(coupon.valid_from) != words.date(issued_at):  # e.g. a replenish coupon
        out.wrapped(words.word("valid_from", date=words.date(coupon.valid_from)), Align.CENTER)
    out.wrapped(words.word("valid_until", date=words.valid_until(coupon.expires_at)), Align.CENTER)
    out.lines.append(QrBlock(coupon.qr_payload))
    out.text(words.word("code"), Align.CENTER)
    out.big(coupon.display_code)


def _refund(out: _Builder, words: _Words, document: ReceiptDocument, refund: RefundBlock) -> None:
    """A refund slip: what went back, the money returned, points and coupons undone."""
    header = document.header
    out.big(words.clean(header.store_name))
    place = header.store_id
    if header.lane_id:
        place += ", " + words.word("lane", lane=header.lane_id)
    out.wrapped(words.clean(place), Align.CENTER)
    out.big(words.word("refund"))
    out.rule()
    out.pair(words.word("refund_no", id=refund.refund_id), words.date_time(refund.created_at))
    out.wrapped(
        words.word("refund_of", id=header.transaction_id, date=words.date(header.created_at))
    )
    out.rule()
    for item in document.items:
        out.pair(words.clean(item.name), words.money(item.total))
        if item.qty != 1:
            out.text("  " + words.word("qty", qty=words.qty(item.qty)))
    out.rule()
    out.big_pair(words.word("refund"), words.money(refund.amount))
    loyalty = document.loyalty
    if loyalty is not None:
        out.rule(title=words.word("loyalty"))
        out.pair(words.word("customer"), words.clean(loyalty.customer_name))
        out.pair(words.word("phone"), words.clean(loyalty.phone_masked))
        if refund.points_earn_reversed:
            out.pair(words.word("earn_reversed"), words.signed_points(-refund.points_earn_reversed))
        if refund.points_burn_returned:
            out.pair(words.word("burn_returned"), words.signed_points(refund.points_burn_returned))
        _balance(out, words, loyalty)
    if refund.kept:
        out.pair(words.word("kept"), words.money(refund.kept))
    _codes(out, words, words.word("coupons_cancelled"), refund.coupons_cancelled)
    _codes(out, words, words.word("coupons_returned"), refund.coupons_returned)
    _footer(out, words, document.footer)


def _balance(out: _Builder, words: _Words, loyalty: LoyaltyBlock) -> None:
    """The balance, never a bare negative: a debt a refund left is said as one, and points still
    in the return window as pending."""
    out.pair(words.word("balance"), words.points(max(0, loyalty.balance)), bold=True)
    if loyalty.balance < 0:
        out.pair(words.word("debt"), words.points(-loyalty.balance), bold=True)
        out.wrapped(words.word("debt_note"))
    if loyalty.pending and loyalty.pending_until is not None:
        out.pair(
            words.word("pending", date=words.date(loyalty.pending_until)),
            words.points(loyalty.pending),
        )


def _codes(out: _Builder, words: _Words, title: str, codes: Sequence[str]) -> None:
    if codes:
        out.text(title)
        for code in codes:
            out.text("  " + words.clean(code))


def _footer(out: _Builder, words: _Words, footer: str) -> None:
    if not footer.strip():
        return
    out.rule()
    for paragraph in footer.strip().splitlines():
        out.wrapped(words.clean(paragraph.strip()), Align.CENTER)
