"""Rush hour at eight tills, the evening's customer segments, and what the demo left on disk."""

from __future__ import annotations

import threading
from typing import Any

from pos_loyalty.cli.demo.goods import CAPPUCCINO, CROISSANT, MILK
from pos_loyalty.cli.demo.stage import Stage
from pos_loyalty.cli.demo.wire import STEP_PATIENCE_S, Reply
from pos_loyalty.store import Store


def rush_hour(stage: Stage, store: Store, ivan: dict[str, Any]) -> None:
    """Eight tills commit at the same moment: the sales share database transactions (group
    commit), each stays all-or-nothing, and every cached balance still equals its ledger."""
    from sqlalchemy import event

    from pos_loyalty.ledger.service import verify_ledger

    say, tills = stage.say, 8
    baskets = [
        stage.basket(
            f"lane-{n + 2}",
            [MILK, CROISSANT] if n % 3 else [CAPPUCCINO],
            customer={"id": ivan["id"]} if n % 2 == 0 else None,
        )
        for n in range(tills)
    ]
    replies: list[Reply | None] = [None] * tills
    barrier = threading.Barrier(tills)
    commits = 0

    def counted(_: Any) -> None:
        nonlocal commits
        commits += 1

    def till(n: int) -> None:
        barrier.wait(timeout=STEP_PATIENCE_S)
        replies[n] = stage.commit(baskets[n])

    event.listen(store.engine, "commit", counted)
    try:
        threads = [threading.Thread(target=till, args=(n,)) for n in range(tills)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=STEP_PATIENCE_S)
    finally:
        event.remove(store.engine, "commit", counted)
    table = say.table(
        say.tr(
            f"Час пик: {tills} касс платят в один момент",
            f"Rush hour: {tills} tills commit at the same moment",
        ),
        say.tr("касса", "lane"),
        say.tr("покупатель", "customer"),
        say.tr("оплата", "paid"),
        say.tr("к оплате", "to pay"),
        say.tr("баллы", "points"),
    )
    for basket, reply in zip(baskets, replies, strict=True):
        body = reply.body if reply is not None else {}
        committed = reply is not None and reply.status == 201
        table.add_row(
            str(basket["lane_id"]),
            "Иван П." if basket["customer"] else "—",
            (say.tr("да", "yes") if committed else say.tr("нет", "no"))
            + say.tech(str(reply.status) if reply is not None else "no answer"),
            say.money(body["total"]) if "total" in body else "—",
            f"+{body['points']['earn']}, {say.tr('баланс', 'balance')} {body['balance_after']}"
            if basket["customer"] and "points" in body
            else "—",
        )
    say.print(table)
    with store.uow() as uow:
        _, mismatches = verify_ledger(uow=uow)
    sold = sum(1 for r in replies if r is not None and r.status == 201)
    if sold != tills or mismatches:
        say.fail(
            f"час пик: продано {sold} из {tills}, сверка баллов: {mismatches or 'в порядке'}",
            f"rush hour: {sold} of {tills} sold, ledger {mismatches or 'ok'}",
        )
    ledger = (
        say.tr(
            "баланс каждого покупателя сходится с историей баллов",
            "every balance equals its ledger",
        )
        if not mismatches
        else str(mismatches)
    )
    say.print(
        say.tr(f"Прошло {sold} из {tills} продаж; ", f"{sold} of {tills} sales committed; ")
        + say.tech(
            f"the database committed {commits} times meanwhile (sales share a transaction and "
            "its fsync); ",
            "",
        )
        + ledger
    )


def segments(stage: Stage, store: Store) -> None:
    """The evening's RFM run over the day's sales: sizes, a CSV and a chart in `out`."""
    from pos_loyalty.segments.chart import draw_segment_chart
    from pos_loyalty.segments.service import compute_rfm, iter_segment_titles, write_scores_csv

    say, settings = stage.say, stage.settings
    with store.uow(write=True) as uow:
        summary = compute_rfm(uow=uow, config=settings.segments, now=store.now())
    with store.uow() as uow:
        write_scores_csv(session=uow.session, path=stage.out / "segments.csv")
    draw_segment_chart(summary, stage.out / "segments.png", locale=settings.store.locale)
    table = say.table(
        say.tr("Вечер: сегменты покупателей (RFM)", "Evening: customer segments (RFM)"),
        say.tr("сегмент", "segment"),
        say.tr("покупателей", "customers"),
        say.tr("покупок в среднем", "avg purchases"),
        say.tr("тратят в среднем", "avg spend"),
    )
    titles = dict(iter_segment_titles([s.name for s in summary.segments], say.locale))
    for segment in summary.segments:
        if segment.customers:
            table.add_row(
                titles[segment.name]
                + (say.tech(segment.name) if titles[segment.name] != segment.name else ""),
                str(segment.customers),
                say.number(segment.avg_frequency),
                say.money(segment.avg_monetary),
            )
    say.print(table)


def summary(stage: Stage) -> None:
    say = stage.say
    table = say.table(
        say.tr("Что демонстрация оставила в ", "What the demo left in ") + str(stage.out),
        say.tr("файл", "file"),
        say.tr("что это", "what it is"),
    )
    table.add_row("demo.db", say.tr("база магазина (SQLite)", "the store's SQLite database (WAL)"))
    for png in sorted(stage.sims.receipt_dirs["lane-1"].glob("*.png")):
        table.add_row(
            str(png.relative_to(stage.out)),
            say.tr("чек, как его напечатал принтер", "a receipt as the virtual printer printed it"),
        )
    rows = [
        (
            "segments.csv, segments.png",
            "сегменты покупателей и их размеры",
            "RFM scores per customer, segment sizes",
        ),
        (
            "hq.db, results.csv, results.png",
            "головной офис; что сделало каждое правило",
            "head office; what each rule did today",
        ),
        (
            "reactivation.csv",
            "купоны для ушедших покупателей и разрешённые ими контакты",
            "the lapsed customers' coupons and allowed contacts",
        ),
        (
            "devices.log",
            "журнал устройств (смазанное считывание, нет бумаги)",
            "what the drivers logged (the garbled scan, the paper out)",
        ),
    ]
    for name, ru, en in rows:
        table.add_row(name, say.tr(ru, en))
    say.print(table)
