"""The day at lane 1, told as the cashier and the owner see it: the upsell hint, coupons for next
time, a retried payment that is not charged twice, the printer out of paper, a coupon typed in,
points paid, a spent coupon refused at another till, and two returns; at lane 2, two yoghurts
for the price of one and a promo code typed by the cashier."""

from __future__ import annotations

import time
import uuid
from typing import Any

from rich.panel import Panel

from pos_loyalty.cli.demo.goods import (
    CAPPUCCINO,
    CHEESE,
    CHOCOLATE,
    CIGARETTES,
    CROISSANT,
    MILK,
    SALMON,
    YOGHURT,
)
from pos_loyalty.cli.demo.stage import Stage
from pos_loyalty.cli.demo.wire import LaneFollower, Reply


class Day:
    def __init__(self, stage: Stage, follower: LaneFollower) -> None:
        self.stage = stage
        self.say = stage.say
        self.follower = follower
        # Once a receipt did not print, later slips are not waited for: they queue behind it.
        self.printing = True

    def steps_table(self, title: str) -> Any:
        say = self.say
        return say.table(
            title,
            say.tr("шаг", "step"),
            say.tr("деньги", "money"),
            say.tr("баллы", "points"),
            say.tr("что видит кассир", "what the cashier sees"),
        )

    def quote_row(self, label: str, quote: dict[str, Any]) -> list[str]:
        say = self.say
        points = quote["points"]
        money = [f"{say.tr('сумма', 'subtotal')} {say.money(quote['subtotal'])}"]
        money += [f"{a['label']} −{say.money(a['amount'])}" for a in quote["applied"]]
        if points["burn"]:
            money.append(f"{say.tr('баллами', 'points')} −{say.money(points['burn_value'])}")
        money.append(f"[bold]{say.tr('к оплате', 'to pay')} {say.money(quote['total'])}[/]")
        notes = [f"[yellow]{h['message']}[/]" for h in quote.get("hints", [])]
        notes += [
            f"{say.tr('будет купон', 'coupon to issue')}: {c['label']}"
            for c in quote["coupons"]["to_issue"]
        ]
        notes += [
            f"{say.tr('принят купон', 'coupon taken')}: {c['code']}"
            for c in quote["coupons"]["applied"]
        ]
        notes += [
            f"{say.tr('штампы', 'stamps')} {st['count']}/{st['every']}"
            for st in quote.get("stamps", [])
        ]
        notes += [f"[magenta]{n['message']}[/]" for n in quote.get("notices", [])]
        notes += [
            f"{ln['name']}: {say.tr('скидка', 'discount')} {say.money(ln['discount'])}, "
            f"{say.tr('баллами', 'points')} {say.money(ln['burn'])}"
            for ln in quote["lines"]
            if ln["sku"] == CIGARETTES["sku"]
        ]
        tier = quote.get("tier") or {}
        if tier.get("next"):
            notes.append(
                say.tr(
                    f"до уровня «{tier['next']}» {say.money(tier['missing'])}",
                    f"tier {tier.get('name') or '—'}: {say.money(tier['missing'])} to "
                    f"{tier['next']}",
                )
            )
        burn = ""
        if points["burn_requested"]:
            burn = "\n" + say.tr(
                f"списать {points['burn']} из {points['burn_requested']}",
                f"burn {points['burn']} of {points['burn_requested']}",
            )
            if points.get("burn_limited_message"):
                burn += f"\n({points['burn_limited_message']})"
        earn = f"{say.tr('начислим', 'earn')} {points['earn']}{burn}"
        return [label, "\n".join(money), earn, "\n".join(notes) or "—"]

    def sale_row(self, label: str, sale: Reply) -> list[str]:
        say = self.say
        issued = "\n".join(
            say.tr(
                f"купон {c['code']}: {c['label']}, до {say.day(c['valid_until'])}",
                f"coupon {c['code']}: {c['label']}, valid until {say.day(c['valid_until'])}",
            )
            for c in sale.body.get("coupons_issued", [])
        )
        technical = say.tech(f"→ {sale.status} {sale.body.get('transaction_id', '')}", "\n")
        balance = sale.body.get("balance_after")
        return [
            f"{label}{technical}",
            "",
            f"{say.tr('баланс', 'balance')} {balance}" if balance is not None else "",
            issued or "—",
        ]

    def evaluated(self, table: Any, label: str, basket: dict[str, Any]) -> dict[str, Any]:
        quote = self.stage.evaluate(basket)
        table.add_row(*self.quote_row(label + self.say.tech("POST /v1/baskets/evaluate"), quote))
        return quote

    def printed(self, transaction_id: str | None) -> dict[str, Any] | None:
        """The lane's next print result for this sale (None: the printer is known not to print,
        or nothing came within STEP_PATIENCE_S)."""
        if not self.printing:
            return None
        return self.follower.next({"print_result"}, transaction_id=transaction_id)

    def show_receipt(self, printed: dict[str, Any] | None) -> None:
        say = self.say
        if printed is None or printed.get("status") != "printed":
            self.printing = False
            say.print(
                say.fail(f"чек не напечатан: {printed}", f"the receipt did not print: {printed}")
            )
            return
        text = sorted(self.stage.sims.receipt_dirs["lane-1"].glob("*.txt"))[-1]
        say.print(
            Panel(
                text.read_text(encoding="utf-8").rstrip(),
                title=say.tr("чек с принтера кассы 1", "receipt printed on the lane-1 printer")
                + f" ({text.with_suffix('.png').name})",
                expand=False,
            )
        )

    # -- the scenes ---------------------------------------------------------------------------

    def maria_checkout(self, maria: dict[str, Any]) -> str | None:
        """The upsell hint, the coupons for next time, an idempotent retry, the printed receipt.
        Returns the threshold coupon's code for her next visit."""
        say, stage = self.say, self.stage
        table = self.steps_table(
            say.tr(
                "Покупка на кассе 1: касса уже знает Марию по карте",
                "Checkout at lane 1 (the till sends no customer: the lane knows her)",
            )
        )
        # She swiped this card a moment ago: the scanner reports the same card again within its
        # debounce_s as one swipe (as a real one in continuous mode would), so let that pass.
        scanner = next(lane.scanner for lane in stage.settings.lanes if lane.id == "lane-1")
        time.sleep(scanner.debounce_s if scanner else 0)
        stage.sims.scanners["lane-1"].swipe(maria["card_number"], name="SMIRNOVA/MARIA")
        if self.follower.next({"customer_identified"}) is None:
            say.fail(
                "карта Марии на кассе 1 не распознана", "Мария's swipe at lane 1 was not identified"
            )
        lines = [MILK, CROISSANT, CAPPUCCINO]
        basket = stage.basket("lane-1", lines)
        self.evaluated(table, say.tr("расчёт корзины", "evaluate"), basket)
        lines.append(CHOCOLATE)
        second = self.evaluated(
            table, say.tr("она берёт шоколадку, расчёт", "she adds a chocolate, evaluate"), basket
        )
        key = uuid.uuid4().hex
        sale = stage.commit({"quote_id": second["quote_id"]}, key)
        retry = stage.commit({"quote_id": second["quote_id"]}, key)
        table.add_row(*self.sale_row(say.tr("оплата", "paid"), sale))
        same = retry.body.get("transaction_id") == sale.body.get("transaction_id")
        table.add_row(
            say.tr(
                "касса повторила запрос оплаты (связь прервалась)",
                "the till retries the payment (the line dropped)",
            )
            + say.tech(f"same Idempotency-Key {key[:8]}… → {retry.status}", "\n"),
            "",
            "",
            say.tr(
                "та же продажа, второй раз не списано", "the first sale again, not charged twice"
            )
            if same
            else say.fail("вторая продажа по повтору!", "a second sale from a retry!"),
        )
        say.print(table)
        if sale.status != 201:
            say.fail(
                f"продажа Марии отклонена: {sale.body}", f"Мария's sale was refused: {sale.body}"
            )
            return None
        self.show_receipt(self.printed(sale.body["transaction_id"]))
        threshold = [c for c in sale.body["coupons_issued"] if c["rule_id"] == "spend-700-get-70"]
        return str(threshold[0]["code"]) if threshold else None

    def olga_paper_out(self, olga: dict[str, Any]) -> None:
        """Her birthday week: a personal coupon, and the printer runs out of paper mid-day."""
        say, stage = self.say, self.stage
        printer = stage.sims.printers["lane-1"]
        table = self.steps_table(
            say.tr(
                "Неделя дня рождения Ольги; в принтере кассы 1 кончилась бумага",
                "Ольга's birthday week; lane 1's printer has run out of paper",
            )
        )
        printer.set_paper_remaining(0)
        basket = stage.basket(
            "lane-1", [SALMON, CHEESE, {**CAPPUCCINO, "qty": 1}], customer={"phone": olga["phone"]}
        )
        quote = self.evaluated(table, say.tr("расчёт корзины", "evaluate"), basket)
        sale = stage.commit({"quote_id": quote["quote_id"]})
        table.add_row(*self.sale_row(say.tr("оплата", "paid"), sale))
        sold = sale.body.get("transaction_id")
        waiting = self.printed(sold)
        if waiting is not None and waiting.get("status") == "waiting":
            table.add_row(
                say.tr("принтер", "the printer")
                + say.tech(f"print_result: waiting {waiting['code']}", "\n"),
                "",
                "",
                say.tr(
                    f"[yellow]нет бумаги[/] — чек ждёт в очереди ({self.lane_printer_queue()})",
                    f"[yellow]out of paper[/] — the receipt stays queued "
                    f"({self.lane_printer_queue()} in queue)",
                ),
            )
        else:
            table.add_row(
                "",
                "",
                "",
                say.fail(
                    f"чек не встал в очередь без бумаги: {waiting}",
                    f"the paper-out receipt did not wait: {waiting}",
                ),
            )
        printer.refill()
        printed = self.printed(sold)
        if printed is not None and printed.get("status") == "printed":
            outcome = say.tr("[green]чек напечатан[/]", "[green]the receipt printed[/]")
        else:
            self.printing = False
            outcome = say.fail(
                f"чек не напечатан после замены рулона: {printed}",
                f"the paper-out receipt did not print after the new roll: {printed}",
            )
        table.add_row(
            say.tr("кассир вставляет новый рулон", "the cashier puts in a new roll")
            + say.tech("print_result: printed" if printed else "", "\n"),
            "",
            "",
            outcome,
        )
        say.print(table)

    def lane_printer_queue(self) -> Any:
        for device in self.stage.till.call("GET", "/v1/devices").body["devices"]:
            if device["name"] == "lane-1/printer":
                return device.get("queue_length")
        return "?"

    def maria_next_visit(self, maria: dict[str, Any], coupon_code: str) -> None:
        """The coupon typed without hyphens, points paid, a second till refused, two returns."""
        say, stage = self.say, self.stage
        visit = stage.basket(
            "lane-1",
            [CAPPUCCINO, {**CHOCOLATE, "qty": 4}, CIGARETTES],
            customer={"card": maria["card_number"]},
            coupons=[coupon_code.lower().replace("-", "")],
            points_to_redeem=50,
        )
        table = self.steps_table(
            say.tr(
                "На следующий день: Мария вводит купон без дефисов и платит 50 баллами",
                "Next day: Мария types her coupon without hyphens and asks to pay 50 points",
            )
        )
        again = self.evaluated(table, say.tr("расчёт корзины", "evaluate"), visit)
        paid = stage.commit({"quote_id": again["quote_id"]})
        table.add_row(*self.sale_row(say.tr("оплата", "paid"), paid))
        twice = stage.commit({**visit, "points_to_redeem": 0})
        table.add_row(
            say.tr("касса 2 пробует тот же купон", "lane 2 tries the same coupon")
            + say.tech(f"→ {twice.status}"),
            "",
            "",
            twice.body["error"]["message"],
        )
        refund = stage.refund(
            paid.body["transaction_id"], {"lines": [{"sku": CHOCOLATE["sku"], "qty": 1}]}
        )
        points = refund.body["points"]
        table.add_row(
            say.tr("вернула одну шоколадку", "one chocolate returned")
            + say.tech(f"→ {refund.status}"),
            f"{say.tr('возврат', 'refund')} {say.money(refund.body['amount'])}",
            say.tr(
                f"начисленные −{points['earn_reversed']}, списанные +{points['burn_returned']}",
                f"earned −{points['earn_reversed']}, burned +{points['burn_returned']}",
            )
            + f"\n{say.tr('баланс', 'balance')} {points['balance_after']}",
            say.tr("печатается чек возврата", "a refund slip prints"),
        )
        if self.printing and self.printed(paid.body.get("transaction_id")) is None:
            say.fail("чек возврата не напечатан", "the refund slip never printed")
        status = stage.till.call("GET", f"/v1/coupons/{coupon_code}").body
        self.whole_basket_back(table, status["issued_by_transaction_id"])
        say.print(table)
        say.print(
            say.tr(f"Купон {coupon_code}: ", f"Coupon {coupon_code}: ")
            + (
                "[bold]" + say.tr("погашен", "redeemed") + "[/]"
                if status.get("status") == "redeemed"
                else str(status.get("status"))
            )
            + say.tech(f"GET /v1/coupons/{coupon_code} → status {status.get('status')}")
        )

    def whole_basket_back(self, table: Any, yesterday: str) -> None:
        """Yesterday's whole basket comes back, but its points and coupon were spent today:
        config.toml's [refunds] policy keeps their value from the money (never a negative
        balance)."""
        say = self.say
        back = self.stage.refund(yesterday, {}).body
        kept, points = back["kept"], back["points"]
        table.add_row(
            say.tr("вчерашнюю покупку вернули целиком", "yesterday's basket returned"),
            f"{say.tr('товары', 'goods')} {say.money(back['goods_amount'])}\n"
            f"{say.tr('возврат', 'refund')} {say.money(back['amount'])}",
            say.tr(
                f"начисленные −{points['earn_reversed']} (уже потрачено: {points['shortfall']})",
                f"earned −{points['earn_reversed']} (spent: {points['shortfall']})",
            )
            + f"\n{say.tr('баланс', 'balance')} {points['balance_after']}, "
            + f"{say.tr('долг', 'debt')} {points['debt']}",
            say.tr(
                f"удержано {say.money(kept['for_points'])} за {kept['points_paid']} потраченных "
                f"баллов, {say.money(sum(kept['for_coupons'].values()))} за потраченный купон",
                f"kept {say.money(kept['for_points'])} for {kept['points_paid']} spent points, "
                f"{say.money(sum(kept['for_coupons'].values()))} for the spent coupon",
            ),
        )
        if self.printing and self.printed(yesterday) is None:
            say.fail(
                "чек возврата вчерашней покупки не напечатан",
                "the slip of yesterday's basket returned never printed",
            )

    def yoghurts_and_a_promo_code(self, ivan: dict[str, Any]) -> None:
        """Lane 2: "2 по цене 1" needs no card; ЛЕТО25, typed in any case, once per customer."""
        say, stage = self.say, self.stage
        table = self.steps_table(
            say.tr("Касса 2: «2 по цене 1» и промокод", "Lane 2: two for one and a promo code")
        )
        walk_in = self.evaluated(
            table,
            say.tr("покупатель без карты берёт два йогурта", "a walk-in takes two yoghurts"),
            stage.basket("lane-2", [YOGHURT]),
        )
        if not any(a["rule_id"] == "yoghurt-2-for-1" for a in walk_in["applied"]):
            say.fail("«2 по цене 1» не сработало", "two-for-one did not apply")
        basket = stage.basket(
            "lane-2", [YOGHURT, SALMON], customer={"id": ivan["id"]}, promo_codes=["лето25"]
        )
        coded = self.evaluated(
            table, say.tr("Иван называет промокод «лето25»", "Иван gives the code «лето25»"), basket
        )
        sale = stage.commit({"quote_id": coded["quote_id"]})
        table.add_row(*self.sale_row(say.tr("оплата", "paid"), sale))
        again = stage.till.call("POST", "/v1/baskets/evaluate", basket)
        table.add_row(
            say.tr("в следующий раз он снова называет код", "next time he gives it again"),
            "",
            "",
            say.refusal(again.body, again.status),
        )
        say.print(table)
        if not any(a["rule_id"] == "promo-leto25" for a in coded["applied"]) or sale.status != 201:
            say.fail(
                f"промокод не применён: {sale.body}", f"the promo code did not apply: {sale.body}"
            )
        if again.status != 422:
            say.fail("промокод принят второй раз", "the promo code was taken twice")
