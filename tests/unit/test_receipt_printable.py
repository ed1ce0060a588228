"""Text from outside never reaches the printer as a command.

Every text field of a receipt — line names and skus, rule labels, the customer's name, store texts,
coupon labels and product names, ids — gets arbitrary Unicode, ESC/GS/DLE/FS sequences included;
the receipt is laid out, rendered to ESC/POS by the driver and fed to the simulated printer, which
must see only text, the commands the driver sends for any receipt, and exactly one cut (no drawer
kick, no second slip). The JSON and the .txt forms carry the same cleaned text.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import fields, is_dataclass, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.receipt_escpos import receipt_columns, render_escpos
from firmware_sim.printer import VirtualPrinter, parse
from pos_loyalty.receipts import ReceiptDocument, RefundBlock, layout_receipt, render_text
from pos_loyalty.receipts.sample import SAMPLE_TIME, sample_receipt

# The issue's line name: ESC p 0 … opens the cash drawer, GS V 0 cuts and starts a second slip.
DRAWER_AND_CUT = "Milk\x1bp0\x19\x7f\x1dV0END"
# Printers with a cutter, 80 mm and 58 mm, native QR: (model, paper width).
PRINTERS = [("TM-T88V", 80), ("TM-T20II", 80), ("RP-F10-58mm", 58)]
# Fields that are not free text: what formats the receipt, and our own codes and MACs.
NOT_TEXT = {"currency", "locale", "timezone", "code", "qr_payload"}

# Command bytes and their parameters, control characters of every kind, and any character at all.
ESC_POS = [
    "\x1b", "\x1d", "\x10", "\x1c", "\x00", "\x7f", "\x18", "\x0c", "\n", "\r", "\t", "\x85",
    "\x9b", "\u2028", "\u202e", "\ufeff", "\ud800", "p", "0", "V", "@", "!", "B", "\x04", "\x19",
    "\x1bp0\x19\x7f", "\x1dV\x00", "\x1dV0", "\x10\x14\x01\x00\x05", "\x1b@", "\x1b!\x30",
]  # fmt: skip
hostile_text = st.lists(
    st.one_of(st.sampled_from(ESC_POS), st.characters(), st.characters(max_codepoint=0x9F)),
    max_size=16,
).map("".join)


BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def is_unsafe(ch: str) -> bool:
    """A character that is a command or a break to a printer, or that reorders text on a page."""
    return unicodedata.category(ch) in {"Cc", "Cs", "Zl", "Zp"} or ch in BIDI_CONTROLS


def texts_in(value: Any) -> list[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in [k, *texts_in(v)]]
    if isinstance(value, list):
        return [t for v in value for t in texts_in(v)]
    return []


def with_hostile_text(block: Any, data: st.DataObject) -> Any:
    """`block` with every text field (nested, in tuples too) replaced by a hostile draw."""
    changes: dict[str, Any] = {}
    for field in fields(block):
        value = getattr(block, field.name)
        if field.name in NOT_TEXT:
            continue
        if isinstance(value, str):
            changes[field.name] = data.draw(hostile_text, label=field.name)
        elif is_dataclass(value):
            changes[field.name] = with_hostile_text(value, data)
        elif isinstance(value, tuple) and value:
            changes[field.name] = tuple(
                data.draw(hostile_text, label=field.name)
                if isinstance(v, str)
                else with_hostile_text(v, data)
                if is_dataclass(v)
                else v
                for v in value
            )
    return replace(block, **changes)


def sample_with_goods() -> ReceiptDocument:
    """The sample receipt, its coupons naming goods (printed as product and category names)."""
    document = sample_receipt(lines=3)
    coupons = tuple(
        replace(c, skus=("sku-1",), sku_names=("Кофе",), categories=("c",), category_names=("К",))
        for c in document.coupons
    )
    return replace(document, coupons=coupons)


def as_refund(document: ReceiptDocument) -> ReceiptDocument:
    refund = RefundBlock(
        refund_id="r1",
        created_at=SAMPLE_TIME,
        amount=1000,
        full=False,
        points_earn_reversed=5,
        points_burn_returned=3,
        coupons_cancelled=("ABCD-EFGH-JK2",),
        coupons_returned=("MNPQ-RSTV-WX3",),
    )
    return replace(document, refund=refund, coupons=())


def commands_of_a_plain_receipt(profile: str, width_mm: int) -> set[str]:
    """What the driver sends for any receipt on this model: the store's own commands."""
    columns = receipt_columns(profile, width_mm)
    names = set()
    for document in (sample_with_goods(), as_refund(sample_with_goods())):
        data = render_escpos(layout_receipt(document, columns, for_printer=True), profile=profile)
        names |= {command.name for command in parse(data)}
    return names


STORE_COMMANDS = {(p, w): commands_of_a_plain_receipt(p, w) for p, w in PRINTERS}


def print_on_simulator(
    document: ReceiptDocument, profile: str, width_mm: int
) -> tuple[VirtualPrinter, list[str]]:
    columns = receipt_columns(profile, width_mm)
    data = render_escpos(layout_receipt(document, columns, for_printer=True), profile=profile)
    printer = VirtualPrinter(profile, paper_mm=None, paper_width_mm=float(width_mm))
    assert printer.feed(data) == b""  # nothing asked the printer for its status
    return printer, [command.name for command in parse(data)]


def assert_only_text_and_one_cut(
    printer: VirtualPrinter, commands: list[str], profile: str, width_mm: int
) -> None:
    unexpected = set(commands) - STORE_COMMANDS[(profile, width_mm)]
    assert unexpected == set(), f"commands the store never sends: {unexpected}"
    assert commands.count("GS V") == 1 and commands.count("ESC @") == 1
    assert printer.drawer_kicks == 0
    assert len(printer.receipts) == 1 and printer.receipts[0].complete
    assert printer.unknown_commands == 0 and printer.failed_commands == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), printer_model=st.sampled_from(PRINTERS), refund=st.booleans())
def test_no_text_field_reaches_the_printer_as_a_command(
    data: st.DataObject, printer_model: tuple[str, int], refund: bool
) -> None:
    document = sample_with_goods()
    document = with_hostile_text(as_refund(document) if refund else document, data)
    profile, width_mm = printer_model

    printer, commands = print_on_simulator(document, profile, width_mm)
    assert_only_text_and_one_cut(printer, commands, profile, width_mm)

    # The other forms of the receipt carry the same cleaned text.
    for columns in (32, 42):
        text = render_text(layout_receipt(document, columns))
        assert not any(is_unsafe(ch) for ch in text.replace("\n", ""))
    as_json = json.loads(json.dumps(document.to_dict()))
    assert not any(is_unsafe(ch) for text in texts_in(as_json) for ch in text.replace("\n", ""))


@pytest.mark.parametrize(("profile", "width_mm"), PRINTERS)
def test_the_issues_line_name_prints_as_text_without_kicking_the_drawer(
    profile: str, width_mm: int
) -> None:
    """Before: the drawer opened and the receipt was cut after "Milk", a second slip began."""
    document = sample_receipt(lines=2)
    document = replace(document, items=(replace(document.items[0], name=DRAWER_AND_CUT),))
    printer, commands = print_on_simulator(document, profile, width_mm)
    assert_only_text_and_one_cut(printer, commands, profile, width_mm)
    assert "Milkp0 V0END" in printer.receipts[0].text
    assert document.to_dict()["items"][0]["name"] == "Milkp0 V0END"
    assert "Milkp0 V0END" in render_text(layout_receipt(document, 42))


def test_a_multi_line_store_footer_keeps_its_lines_and_loses_its_commands() -> None:
    document = replace(sample_receipt(lines=1), footer="Спасибо!\r\n\x1b\x19\x1d\x10Ждём вас\x00")
    assert document.footer == "Спасибо! \n Ждём вас"
    text = render_text(layout_receipt(document, 42))
    assert text.rstrip().splitlines()[-2:] == [
        "Спасибо!".center(42).rstrip(),
        "Ждём вас".center(42).rstrip(),
    ]
