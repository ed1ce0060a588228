"""Morning at the front of the store: customers enrol, the till recognises them however they
present themselves, and lane 1's camera and card reader tell the till who is there."""

from __future__ import annotations

from datetime import date
from typing import Any

from pos_loyalty.cli.demo.goods import DEMO_CUSTOMERS, birthday_in
from pos_loyalty.cli.demo.stage import Stage
from pos_loyalty.cli.demo.wire import STEP_PATIENCE_S, LaneFollower, Reply


def enrolment(stage: Stage, *, today: date) -> list[dict[str, Any]]:
    say = stage.say
    table = say.table(
        say.tr("Запись в программу", "Enrolment"),
        say.tr("покупатель", "name"),
        say.tr("телефон: как набран → как сохранён", "phone (as typed → stored)"),
        say.tr("номер карты", "card"),
        say.tr("итог", "result"),
    )
    people = [*DEMO_CUSTOMERS]
    people[2] = {**people[2], "birthday": birthday_in(3, today)}
    customers = []
    for person in people:
        reply = stage.till.call("POST", "/v1/customers", person)
        customers.append(reply.body)
        born = person.get("birthday")
        table.add_row(
            person["name"]
            + (f"\n[dim]{say.tr('день рождения', 'birthday')} {say.day(born)}[/]" if born else ""),
            f"{person['phone']} → {reply.body['phone']}",
            reply.body["card_number"],
            say.tr("записан", "enrolled") + say.tech(str(reply.status)),
        )
    again = stage.till.call("POST", "/v1/customers", {"phone": "+79161234567", "name": "Иван П."})
    table.add_row(
        say.tr("Иван П. (ещё раз)", "Иван П. (again)"),
        "+79161234567",
        "—",
        say.refusal(again.body, again.status),
    )
    say.print(table)
    return customers


def identification(stage: Stage, customers: list[dict[str, Any]]) -> None:
    say = stage.say
    ivan = customers[0]
    card = ivan["card_number"]
    forged = ivan["qr"][:-4] + ("AAAA" if not ivan["qr"].endswith("AAAA") else "BBBB")
    attempts = [
        (
            "phone",
            "8 (916) 123-45-67",
            say.tr("телефон, как его набрал кассир", "phone as the cashier types it"),
        ),
        (
            "phone",
            "+7 916 1234567",
            say.tr("тот же телефон иначе", "the same phone, another spelling"),
        ),
        ("phone", "9161234567", say.tr("тот же телефон, 10 цифр", "the same phone, ten digits")),
        ("card", card, say.tr("номер карты вручную", "card number typed")),
        (
            "card",
            f"]E0{card}",
            say.tr("штрихкод карты сканером", "card barcode with a symbology prefix"),
        ),
        (
            "card",
            f"%B{card}^PETROV/IVAN^2912101?",
            say.tr("магнитная полоса, дорожка 1", "magnetic stripe, track 1"),
        ),
        (
            "card",
            f";{card}=2912101?",
            say.tr("магнитная полоса, дорожка 2", "magnetic stripe, track 2"),
        ),
        ("qr", ivan["qr"], say.tr("QR-код из приложения", "loyalty QR from the app")),
        (
            "qr",
            forged,
            say.tr("поддельный QR-код (подпись изменена)", "a forged QR (signature changed)"),
        ),
        (
            "card",
            card[:-1] + str((int(card[-1]) + 1) % 10),
            say.tr("карта с опечаткой в номере", "a card with a wrong check digit"),
        ),
        (
            "phone",
            "+7 999 000-00-00",
            say.tr("телефон, которого нет в программе", "a phone nobody enrolled"),
        ),
    ]
    table = say.table(
        say.tr("Кассир узнаёт покупателя", "Identification at the till"),
        say.tr("что показал покупатель", "what the till sent"),
        say.tr("кто это", "result"),
    )
    for method, value, label in attempts:
        reply = stage.till.call("POST", "/v1/identify", {method: value, "lane_id": "lane-1"})
        table.add_row(label + say.tech(f"{method}: {value[:48]}", "\n"), _outcome(stage, reply))
    say.print(table)


def _outcome(stage: Stage, reply: Reply) -> str:
    say = stage.say
    if reply.status == 200:
        customer = reply.body["customer"]
        # A phone look-up answers no card number to a till key (see /v1/identify).
        card = f" ({customer['card_number']})" if customer.get("card_number") else ""
        return f"[green]{customer['name']}[/]{card}{say.tech(str(reply.status))}"
    return f"[red]{say.refusal(reply.body, reply.status)}[/]"


def lane_devices(stage: Stage, customers: list[dict[str, Any]]) -> None:
    """Customers identify themselves at lane 1's camera and scanner; the till sees the events."""
    from firmware_sim.camera import Scenario

    say, sims = stage.say, stage.sims
    follower = LaneFollower(stage.till.base_url, stage.till.api_key, "lane-1")
    table = say.table(
        say.tr("Касса 1: камера и считыватель карт", "Lane 1 devices → the lane's event stream")
        + say.tech("SSE /v1/lanes/lane-1/events", " "),
        say.tr("у кассы", "at the lane"),
        say.tr("что увидел кассир", "what the till was told"),
    )
    try:
        ivan, maria = customers[0], customers[1]
        sims.cameras["lane-1"].show(
            Scenario(payload=ivan["qr"], width=640, height=480, angle_deg=8.0, show_until_s=2.0)
        )
        table.add_row(
            say.tr(
                "Иван подносит QR-код из приложения к камере",
                "Иван holds his app's QR up to the camera",
            ),
            _event_text(stage, follower),
        )
        sims.scanners["lane-1"].swipe(maria["card_number"], name="SMIRNOVA/MARIA")
        table.add_row(
            say.tr(
                "Мария проводит картой (магнитная полоса)",
                "Мария swipes her card (magnetic stripe)",
            ),
            _event_text(stage, follower),
        )
        sims.scanners["lane-1"].scan_garbled(maria["card_number"], errors=3)
        sims.scanners["lane-1"].scan("4601234567890", symbology="ean13")
        table.add_row(
            say.tr(
                "смазанное считывание, затем по ошибке штрихкод товара",
                "a garbled scan, then a grocery barcode scanned by mistake",
            ),
            _event_text(stage, follower),
        )
        forged = ivan["qr"][:-4] + "AAAA"
        sims.cameras["lane-1"].show(
            Scenario(payload=forged, width=640, height=480, show_until_s=2.0)
        )
        table.add_row(
            say.tr("скриншот с поддельным QR-кодом", "a screenshot with a forged QR"),
            _event_text(stage, follower),
        )
    finally:
        follower.close()
    say.print(table)
    devices_table(stage)


def devices_table(stage: Stage) -> None:
    say = stage.say
    table = say.table(
        say.tr("Устройства", "Devices") + say.tech("GET /v1/devices"),
        say.tr("устройство", "device"),
        say.tr("на связи", "connected"),
        say.tr("прочитано", "readings / frames ok"),
        say.tr("отброшено", "dropped"),
        say.tr("последняя ошибка", "last error"),
    )
    for device in stage.till.call("GET", "/v1/devices").body["devices"]:
        table.add_row(
            device["name"],
            say.tr("да", "yes") if device.get("connected") else say.tr("нет", "no"),
            str(device.get("readings", device.get("frames_ok", ""))),
            str(device.get("frames_dropped", device.get("frames_skipped", ""))),
            str(device.get("last_error") or ""),
        )
    say.print(table)


def _event_text(stage: Stage, follower: LaneFollower) -> str:
    say = stage.say
    event = follower.next({"customer_identified", "customer_unknown", "token_invalid"})
    if event is None:
        return say.fail(
            f"считывание у кассы 1 не дало события за {STEP_PATIENCE_S:.0f} с",
            f"a lane device's reading produced no event within {STEP_PATIENCE_S:.0f} s",
        )
    kind = say.tech(event["event"], "") + (" " if say.verbose else "")
    if event["event"] != "customer_identified":
        error = {"error": {"code": event.get("code"), "message": event.get("message")}}
        return f"[yellow]{say.refusal(error, event['event'])}[/]"
    who = event["customer"]
    how = say.tech(f"via {event['method']}")
    return f"{kind}[green]{who['name']}[/] {who['phone']}{how}"
