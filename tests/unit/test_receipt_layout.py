"""Receipt documents laid out for 32, 42 and 48 columns: every block, never past the last column,
names wrapped, amounts never split, Russian words and money as the customer reads them."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pos_loyalty.receipts import (
    SUPPORTED_COLUMNS,
    DiscountEntry,
    IssuedCoupon,
    LaidOutReceipt,
    ReceiptDocument,
    ReceiptItem,
    RefundBlock,
    StampCard,
    layout_receipt,
    render_text,
)
from pos_loyalty.receipts.build import ReceiptInput, receipt_from_input
from pos_loyalty.receipts.sample import SAMPLE_STORE, SAMPLE_TIME, sample_receipt
from pos_loyalty.rules import evaluate
from tests.factories import basket, compiled, customer, line, points_rule, threshold_rule

NBSP = "\u00a0"
MOSCOW = ZoneInfo("Europe/Moscow")
LONG_NAME = (
    "Сыр полутвёрдый «Российский» выдержанный 45% фасованный весовой Сыроварня-Кострома-"
    "Ярославль-Вологда-Экспорт"
)


def printed(receipt: LaidOutReceipt) -> str:
    return "\n".join(line.text for line in receipt.text_lines())


def assert_fits(receipt: LaidOutReceipt) -> None:
    too_wide = [(ln.text, ln.width) for ln in receipt.text_lines() if ln.width > receipt.columns]
    assert too_wide == []


@pytest.fixture(scope="module")
def document() -> ReceiptDocument:
    doc = sample_receipt(lines=8)
    items = (*doc.items, replace(doc.items[0], name=LONG_NAME, sku="long"))
    return replace(doc, items=items)


@pytest.mark.parametrize("columns", SUPPORTED_COLUMNS)
def test_a_copy_is_marked_under_the_store_name(document: ReceiptDocument, columns: int) -> None:
    original = layout_receipt(document, columns, for_printer=True)
    copy = layout_receipt(replace(document, copy=True), columns, for_printer=True)
    assert_fits(copy)
    assert "КОПИЯ" not in printed(original)
    lines = printed(copy).splitlines()
    assert [n for n, line in enumerate(lines) if "КОПИЯ" in line] == [2]  # name, place, mark
    assert replace(document, copy=True).to_dict()["copy"] is True


@pytest.mark.parametrize("for_printer", [False, True], ids=["unicode", "printer"])
@pytest.mark.parametrize("columns", SUPPORTED_COLUMNS)
def test_every_block_fits_the_paper(
    document: ReceiptDocument, columns: int, for_printer: bool
) -> None:
    receipt = layout_receipt(document, columns, for_printer=for_printer)
    assert_fits(receipt)
    text = printed(receipt)
    flat = re.sub(r"\s+", " ", text)
    rouble = "р." if for_printer else "₽"
    # header
    assert "Магазин у дома" in text and "Касса lane-1" in text
    assert "Чек № t9f2c41d07a84e5b" in flat and "21.11.2026 18:42" in text
    # lines with quantities, a weighed line with three places
    assert "Молоко 3,2% 1 л" in text
    assert f"2 {'x' if for_printer else '×'} 89,90{NBSP}{rouble}" in text
    assert "0,734 " in text
    # discounts with their labels, totals
    assert "Скидки" in text and "Молочная неделя" in text
    assert "Оплачено баллами (150)" in flat
    assert "ИТОГО" in text and "Наличные" in text and "Сдача" in text
    # loyalty block
    assert "Иван П." in text and "+7 *** ***-45-67" in text
    assert "Серебро" in text and "Начислено баллов" in text and "Списано баллов" in text
    assert "Сгорят 21.12.2026" in text and f"120{NBSP}баллов" in text
    assert "Каждый 6-й кофе бесплатно" in flat and "из 6" in text
    # two coupons: label, value, conditions, expiry, QR and the typable code
    assert text.count("ВАШ КУПОН") == 2
    assert "на следующую покупку" in flat and f"Скидка 70,00{NBSP}{rouble}" in text
    assert f"Скидка 15{NBSP}%" in text
    assert f"При покупке от 700,00{NBSP}{rouble}" in text
    assert text.count("Действует до 05.12.2026") == 2
    assert receipt.qr_payloads() == tuple(c.qr_payload for c in document.coupons)
    assert all(p.startswith("PLC1.") for p in receipt.qr_payloads())
    for coupon in document.coupons:
        assert coupon.display_code in text
    # footer from config, then the cut
    assert "Спасибо за покупку!" in text
    assert type(receipt.lines[-1]).__name__ == "Cut"


@pytest.mark.parametrize("columns", SUPPORTED_COLUMNS)
def test_long_names_wrap_and_prices_are_never_split(
    document: ReceiptDocument, columns: int
) -> None:
    receipt = layout_receipt(document, columns)
    lines = [ln.text for ln in receipt.text_lines()]
    start = next(i for i, text in enumerate(lines) if text.startswith("Сыр полутвёрдый"))
    wrapped = lines[start : start + 6]
    joined = "".join(part.strip() for part in wrapped).replace(" ", "")
    assert LONG_NAME.replace(" ", "") in joined  # every character kept, in order
    assert len([t for t in wrapped if t.strip() and not t.startswith(" ")]) >= 2  # it did wrap
    for item in document.items:
        amount = f"{item.subtotal // 100:,}".replace(",", NBSP) + f",{item.subtotal % 100:02d}"
        assert any(amount + NBSP + "₽" in text for text in lines), amount


def test_money_is_babel_formatted_in_russian() -> None:
    doc = sample_receipt(lines=2)
    big = replace(doc.items[0], unit_price=123_450, subtotal=123_450, total=123_450, qty=1)
    receipt = layout_receipt(replace(doc, items=(big,)), 42)
    assert f"1{NBSP}234,50{NBSP}₽" in printed(receipt)
    on_paper = layout_receipt(replace(doc, items=(big,)), 42, for_printer=True)
    assert f"1{NBSP}234,50{NBSP}р." in printed(on_paper)
    assert "₽" not in printed(on_paper) and "×" not in printed(on_paper)


@pytest.mark.parametrize(("balance", "words"), [(1, "1 балл"), (3, "3 балла"), (11, "11 баллов")])
def test_points_are_declined(balance: int, words: str) -> None:
    doc = sample_receipt(lines=1)
    assert doc.loyalty is not None
    receipt = layout_receipt(replace(doc, loyalty=replace(doc.loyalty, balance=balance)), 32)
    assert words.replace(" ", NBSP) in printed(receipt)


def test_a_coupon_valid_later_says_from_when() -> None:
    doc = sample_receipt(lines=1)
    later = replace(
        doc.coupons[1],
        valid_from=SAMPLE_TIME + timedelta(days=45),
        expires_at=datetime(2027, 1, 20, 23, 59, tzinfo=MOSCOW),
        categories=("pet-food",),
    )
    text = printed(layout_receipt(replace(doc, coupons=(later,)), 42))
    assert "Действует с 05.01.2027" in text
    assert "Действует до 20.01.2027" in text
    assert "На категории: pet-food" in text  # no name known: the code


def test_coupon_goods_are_named_as_the_customer_knows_them() -> None:
    doc = sample_receipt(lines=1)
    named = replace(
        doc.coupons[1],
        skus=("4601234567893",),
        sku_names=("Кофе молотый арабика 250 г",),
        categories=("pet_food",),
        category_names=("Корм для животных",),
    )
    for columns in SUPPORTED_COLUMNS:
        receipt = layout_receipt(replace(doc, coupons=(named,)), columns, for_printer=True)
        assert_fits(receipt)
        text = re.sub(r"\s+", " ", printed(receipt))
        assert "На товары: Кофе молотый арабика 250 г" in text
        assert "На категории: Корм для животных" in text
        assert "4601234567893" not in text and "pet_food" not in text


@pytest.mark.parametrize(
    ("expires_at", "printed_as"),
    [
        # 22:30 UTC on the 4th is 01:30 on the 5th in Moscow: the store's date, with the hour
        (datetime(2026, 12, 4, 22, 30, tzinfo=UTC), "Действует до 05.12.2026 01:30"),
        # expiring at Moscow midnight: good all of the 5th, so the date alone
        (datetime(2026, 12, 5, 21, 0, tzinfo=UTC), "Действует до 05.12.2026"),
        (datetime(2026, 12, 5, 15, 42, tzinfo=UTC), "Действует до 05.12.2026 18:42"),
    ],
)
def test_a_coupon_expiry_is_printed_in_the_store_time_zone(
    expires_at: datetime, printed_as: str
) -> None:
    doc = sample_receipt(lines=1)
    coupon = replace(doc.coupons[0], expires_at=expires_at)
    for columns in SUPPORTED_COLUMNS:
        lines = [
            ln.strip()
            for ln in printed(layout_receipt(replace(doc, coupons=(coupon,)), columns)).splitlines()
        ]
        assert printed_as in lines, (columns, printed_as)


def test_no_customer_means_no_loyalty_block_and_no_coupons() -> None:
    store = SAMPLE_STORE
    quote = evaluate(basket(line(unit_price=5_000)), None, compiled(points_rule()), SAMPLE_TIME)
    doc = receipt_from_input(
        ReceiptInput(transaction_id="t1", created_at=SAMPLE_TIME, sale=quote.to_dict()),
        store=store,
    )
    assert doc.loyalty is None and doc.coupons == ()
    text = printed(layout_receipt(doc, 32))
    assert "Программа лояльности" not in text and "ВАШ КУПОН" not in text
    assert re.search(f"^ИТОГО +50,00{NBSP}₽$", text, re.MULTILINE)


def test_the_upsell_hint_is_printed_when_the_basket_fell_short() -> None:
    rules = compiled(points_rule(), threshold_rule())
    quote = evaluate(basket(line(unit_price=60_000)), customer(), rules, SAMPLE_TIME)
    doc = receipt_from_input(
        ReceiptInput(
            transaction_id="t2",
            created_at=SAMPLE_TIME,
            sale=quote.to_dict(),
            customer_name="Анна С.",
            phone_masked="+7 *** ***-12-34",
        ),
        store=SAMPLE_STORE,
    )
    assert doc.loyalty is not None and doc.loyalty.hint is not None
    text = re.sub(r"\s+", " ", printed(layout_receipt(doc, 32)))
    assert "100,00 ₽" in text.replace(NBSP, " ")  # 700 − 600 still to buy
    assert "70,00 ₽" in text.replace(NBSP, " ")


def test_the_document_is_json_with_minor_units() -> None:
    doc = sample_receipt(lines=3)
    data = json.loads(json.dumps(doc.to_dict()))
    assert data["transaction_id"] == "t9f2c41d07a84e5b"
    assert data["items"][0] == {
        "sku": "4601234567890",
        "name": "Молоко 3,2% 1 л",
        "qty": 2,
        "unit_price": 8990,
        "subtotal": 17980,
        "discount": 1798,
        "burn": data["items"][0]["burn"],
        "total": 17980 - 1798 - data["items"][0]["burn"],
    }
    assert data["items"][2]["qty"] == 0.734
    assert data["loyalty"]["customer_name"] == "Иван П."
    assert data["coupons"][0]["display_code"] == "7K3M-9QXR-2T" + data["coupons"][0]["code"][-1]
    assert data["coupons"][0]["qr"].startswith("PLC1.7K3M9QXR2T")
    assert data["header"]["created_at"] == "2026-11-21T18:42:00+03:00"


@pytest.mark.parametrize("columns", SUPPORTED_COLUMNS)
def test_plain_text_stays_within_the_columns(document: ReceiptDocument, columns: int) -> None:
    text = render_text(layout_receipt(document, columns))
    lines = text.splitlines()
    assert max(len(t) for t in lines) <= columns
    total = next(t for t in lines if t.startswith("ИТОГО"))
    assert len(total) == columns  # the double-width total spans the paper in text too
    assert "[QR PLC1." in text


_names = st.text(
    alphabet=st.sampled_from("абвгдеёжзийклмнопрстуфхцчшщъыьэюяABCXYZ0123456789 %-,.«»"),
    min_size=1,
    max_size=150,
).filter(str.strip)


@settings(max_examples=60, deadline=None)
@given(
    names=st.lists(_names, min_size=1, max_size=6),
    prices=st.lists(st.integers(min_value=0, max_value=10**10), min_size=6, max_size=6),
    qty=st.integers(min_value=1, max_value=999),
    columns=st.sampled_from(SUPPORTED_COLUMNS),
    for_printer=st.booleans(),
)
def test_any_names_and_amounts_fit_and_amounts_stay_whole(
    names: list[str], prices: list[int], qty: int, columns: int, for_printer: bool
) -> None:
    base = sample_receipt(lines=1)
    items = tuple(
        ReceiptItem(f"s{i}", name, qty, price, price * qty, 0, 0, price * qty)
        for i, (name, price) in enumerate(zip(names, prices, strict=False))
    )
    coupon: IssuedCoupon = replace(
        base.coupons[0], label=names[0], amount_off=prices[-1], min_subtotal=prices[-2]
    )
    assert base.loyalty is not None
    loyalty = replace(
        base.loyalty,
        tier=names[-1],
        balance=prices[1],
        points_earned=prices[2],
        stamps=(StampCard("stamps", names[-1], 5, 6),),
        hint=names[0],
    )
    discounts = tuple(DiscountEntry(f"d{i}", name, prices[i]) for i, name in enumerate(names))
    totals = replace(base.totals, subtotal=prices[0], total=prices[-1], paid=prices[-1])
    doc = replace(
        base,
        header=replace(base.header, store_name=names[-1]),
        items=items,
        discounts=discounts,
        totals=totals,
        loyalty=loyalty,
        coupons=(coupon,),
        footer=names[-1],
    )
    receipt = layout_receipt(doc, columns, for_printer=for_printer)
    assert_fits(receipt)
    lines = [ln.text for ln in receipt.text_lines()]
    rouble = "р." if for_printer else "₽"

    def money(minor_units: int) -> str:
        major, minor = divmod(minor_units, 100)
        return f"{major:,}".replace(",", NBSP) + f",{minor:02d}{NBSP}{rouble}"

    for amount in [money(item.subtotal) for item in items] + [money(totals.total)]:
        assert any(amount in text for text in lines), amount  # whole, on one line
    for discount in discounts:
        assert any(money(discount.amount) in text for text in lines)


def test_unsupported_widths_are_refused() -> None:
    with pytest.raises(ValueError, match="32, 42, 48"):
        layout_receipt(sample_receipt(lines=1), 40)


def test_weighed_quantity_from_json_keeps_three_places() -> None:
    doc = sample_receipt(lines=3)
    weighed = doc.items[2]
    assert weighed.qty == Decimal("0.734")
    assert "0,734 × 1" in printed(layout_receipt(doc, 48))


@pytest.mark.parametrize("columns", SUPPORTED_COLUMNS)
def test_a_refund_slip_fits_and_says_what_was_undone(columns: int) -> None:
    sale = sample_receipt(lines=3)
    returned = tuple(replace(item, total=item.total) for item in sale.items[1:])
    slip = replace(
        sale,
        items=(*returned, replace(sale.items[0], name=LONG_NAME)),
        coupons=(),
        refund=RefundBlock(
            refund_id="r5d0c8e3b7a6f41c2",
            created_at=SAMPLE_TIME + timedelta(days=2),
            amount=123_456,
            full=False,
            points_earn_reversed=12,
            points_burn_returned=150,
            coupons_cancelled=("7K3M-9QXR-2TX",),
            coupons_returned=(),
        ),
    )
    receipt = layout_receipt(slip, columns, for_printer=True)
    assert_fits(receipt)
    text = re.sub(r"\s+", " ", printed(receipt)).replace(NBSP, " ")
    for expected in (
        "ВОЗВРАТ",
        "Возврат № r5d0c8e3b7a6f41c2",
        "по чеку № t9f2c41d07a84e5b от 21.11.2026",
        "количество 0,734",
        "1 234,56 р.",
        "Баллы за покупку списаны -12",
        "Баллы возвращены +150",
        "Аннулированы купоны: 7K3M-9QXR-2TX",
    ):
        assert expected in text, expected
    assert "ВАШ КУПОН" not in text and receipt.qr_payloads() == ()
    assert slip.to_dict()["kind"] == "refund"
