"""Head office publishes a dessert promotion as a signed bundle, forecasts it on the day's sales,
the store pulls and activates it between two baskets, and the results are reported."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pos_loyalty.apikeys.models import Scope
from pos_loyalty.apikeys.service import create_key
from pos_loyalty.cli.common import open_store_or_exit
from pos_loyalty.cli.demo.goods import ECLAIR
from pos_loyalty.cli.demo.stage import Stage
from pos_loyalty.cli.demo.wire import ApiServer, TillClient, free_port
from pos_loyalty.settings import Settings
from pos_loyalty.store import Store

PROMOTION = {
    "id": "sweets-20",
    "kind": "discount",
    "label": "Сладкое −20%",
    "applies_to": "lines",
    "percent": 20,
    "when": {"categories": ["sweets", "desserts"]},
}


def head_office_scene(stage: Stage, store: Store) -> None:
    from api.app import create_app
    from pos_loyalty.hq.fleet import register_store
    from pos_loyalty.hq.signing import create_signing_key

    say, settings, out = stage.say, stage.settings, stage.out
    say.print()
    say.print(
        say.tr(
            "[bold]Головной офис:[/] акция опубликована, просчитана, включена на кассе и "
            "подведены итоги",
            "[bold]Head office:[/] a promotion published, forecast, activated at the lane, "
            "reported",
        )
    )
    office_settings = _office_settings(settings, out)
    office = open_store_or_exit(office_settings, migrate=True)
    key = create_signing_key(out / "hq-signing.key")
    with office.uow(write=True) as uow:
        store_key = register_store(uow=uow, store_id=settings.store.id, region="msk")
        hq_key = create_key(uow=uow, scope=Scope.HQ, label="marketing")
    with ApiServer(create_app(office_settings, store=office), free_port()) as server:
        marketing = TillClient(server.url, hq_key)
        program = store.rules.config.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        program["rules"].append(PROMOTION)
        program["category_names"] = dict(settings.store.category_names)
        published = marketing.call(
            "POST",
            "/v1/hq/bundles",
            {"program": program, "note": "Маркетинг: неделя сладкого", "targets": {}},
        ).body
        say.print(
            say.tr(
                f"Головной офис опубликовал версию правил {published['version']} для всех "
                f"магазинов («{published['note']}»), с электронной подписью",
                f"head office published v{published['version']} for all stores "
                f"(«{published['note']}»), signed",
            )
        )
        _forecast(stage, store, program)
        _switch_between_baskets(stage, store, server.url, key, store_key)
        fleet = marketing.call("GET", "/v1/hq/stores").body
        say.print(
            say.tr(
                f"Сеть: магазин {fleet[0]['store_id']} работает по версии "
                f"{fleet[0]['active_version']}, "
                + ("отстаёт" if fleet[0]["behind"] else "не отстаёт"),
                f"fleet: store {fleet[0]['store_id']} runs v{fleet[0]['active_version']}, "
                f"behind: {'yes' if fleet[0]['behind'] else 'no'}",
            )
        )
    office.close()
    _results(stage, store)


def _office_settings(settings: Settings, out: Any) -> Settings:
    from pos_loyalty.settings import HeadOfficeConfig

    return settings.model_copy(
        update={
            "store": settings.store.model_copy(
                update={"id": "hq", "database_url": f"sqlite:///{out / 'hq.db'}"}
            ),
            "lanes": [],
            "head_office": HeadOfficeConfig(signing_key=str(out / "hq-signing.key")),
        }
    )


def _forecast(stage: Stage, store: Store, program: dict[str, Any]) -> None:
    from pos_loyalty.hq.bundle import program_from_json
    from pos_loyalty.hq.replay import dry_run

    say, settings = stage.say, stage.settings
    with store.uow() as uow:
        forecast = dry_run(
            uow=uow,
            active=store.rules,
            proposed=program_from_json(program).compile(tz=settings.store.tz),
            since=store.now() - timedelta(days=1),
            locale=settings.store.locale,
            currency=settings.store.currency,
        )
    promo = next(r for r in forecast.rules if r.rule_id == PROMOTION["id"])
    before, after = forecast.active_total.discount, forecast.proposed_total.discount
    baskets, amount = promo.proposed.baskets, say.money(promo.proposed.discount)
    say.print(
        say.tr(
            f"Прогноз на сегодняшних {forecast.sales} продажах: «{PROMOTION['label']}» "
            f"сработала бы в {baskets} чеках на {amount}; "
            f"все скидки {say.money(before)} → {say.money(after)}",
            f"forecast on today's {forecast.sales} sales: sweets-20 would touch "
            f"{baskets} baskets for {amount}; "
            f"all discounts {say.money(before)} → {say.money(after)}",
        )
    )


def _switch_between_baskets(
    stage: Stage, store: Store, office_url: str, key: Any, store_key: str
) -> None:
    from pos_loyalty.hq.local import apply_active
    from pos_loyalty.hq.signing import public_key_text
    from pos_loyalty.hq.sync import pull_once
    from pos_loyalty.settings import HqConfig

    say = stage.say
    basket = stage.basket("lane-2", [ECLAIR])
    before = stage.evaluate(basket)
    store.settings = store.settings.model_copy(
        update={"hq": HqConfig(url=office_url, public_key=public_key_text(key), api_key=store_key)}
    )
    outcome = pull_once(store=store)
    apply_active(store=store, now=store.now())
    after = stage.evaluate(basket)
    pulled = say.tech(f"({outcome.message})")
    say.print(
        say.tr(
            f"Магазин получил её{pulled} и переключился без перезапуска: два эклера на кассе 2 "
            f"стоили {say.money(before['total'])}, теперь {say.money(after['total'])}"
            + say.tech(f"{before['rules_version']} → {after['rules_version']}"),
            f"the store pulled it{pulled} and switched without a restart: two eclairs at "
            f"lane-2 cost {say.money(before['total'])} under {before['rules_version']}, "
            f"{say.money(after['total'])} under {after['rules_version']}",
        )
    )
    sold = stage.commit({"quote_id": after["quote_id"]})
    if sold.status != 201:
        say.fail(f"эклеры не проданы: {sold.body}", f"the eclairs did not sell: {sold.body}")
    pull_once(store=store)  # the next pull reports the active version to head office


def _results(stage: Stage, store: Store) -> None:
    from pos_loyalty.hq.results import results_report
    from pos_loyalty.hq.results_chart import draw_results_chart

    say, settings, out = stage.say, stage.settings, stage.out
    with store.uow() as uow:
        report = results_report(uow=uow, since=store.now() - timedelta(days=1), until=store.now())
    table = say.table(
        say.tr("Итоги правил за сегодня", "Rule results today (rules report)"),
        say.tr("правило", "rule"),
        say.tr("чеков", "baskets"),
        say.tr("скидка", "discount"),
        say.tr("баллов +", "points +"),
        say.tr("купонов", "coupons"),
        say.tr("выручка", "revenue"),
    )
    for r in report.rules[:6]:
        table.add_row(
            r.rule_id,
            str(r.baskets),
            say.money(r.discount),
            str(r.points_issued),
            say.tr(
                f"{r.coupons_issued} (погашено {r.coupons_redeemed})",
                f"{r.coupons_issued} ({r.coupons_redeemed} redeemed)",
            ),
            say.money(r.revenue),
        )
    say.print(table)
    (out / "results.csv").write_text(report.to_csv(), encoding="utf-8")
    draw_results_chart(
        report,
        out / "results.png",
        point_value_minor=store.rules.points.point_value_minor,
        locale=settings.store.locale,
    )
