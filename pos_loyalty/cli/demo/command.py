"""`demo`: the whole store on this machine, simulated, told to the store owner.

It starts the real HTTP API on a fresh SQLite file from the repository's config.toml and plays the
part of a till talking to it over HTTP, so what the demo shows is what a till integrator gets.
It narrates in the store's language (`--lang en` for English), keeps HTTP codes, event names and
keys for `--verbose`, and exits 1 naming every step that did not go as scripted.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel

from pos_loyalty.apikeys.models import Scope
from pos_loyalty.apikeys.service import create_key
from pos_loyalty.cli.common import ConfigOption, load_or_exit, open_store_or_exit
from pos_loyalty.cli.demo.campaign import lapsed_regulars, reactivation_campaign
from pos_loyalty.cli.demo.day import Day
from pos_loyalty.cli.demo.evening import rush_hour, segments, summary
from pos_loyalty.cli.demo.front import enrolment, identification, lane_devices
from pos_loyalty.cli.demo.goods import CROISSANT, MILK
from pos_loyalty.cli.demo.head_office import head_office_scene
from pos_loyalty.cli.demo.narrator import Lang, Narrator, store_lang
from pos_loyalty.cli.demo.stage import Stage
from pos_loyalty.cli.demo.wire import ApiServer, LaneFollower, TillClient, free_port
from pos_loyalty.cli.receipt_preview import render_receipt_png
from pos_loyalty.cli.simulation import simulated_devices
from pos_loyalty.settings import Settings, settings_from_dict
from pos_loyalty.store import Store

LangOption = Annotated[
    Lang | None,
    typer.Option("--lang", help="Language of the story (default: the store's, from its locale)."),
]
VerboseOption = Annotated[
    bool,
    typer.Option(
        "--verbose", "-v", help="Also show HTTP codes, event names, transactions and keys."
    ),
]


def demo(
    config: ConfigOption = None,
    out: Annotated[Path, typer.Option(help="Folder for the demo database and outputs.")] = Path(
        "demo-out"
    ),
    lang: LangOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Run a simulated store on this machine and tell its day to the store owner."""
    from api.app import create_app
    from drivers.manager import DeviceManager
    from pos_loyalty.lanes import LaneHub

    settings = _demo_settings(load_or_exit(config), out.resolve())
    say = Narrator(settings, lang or store_lang(settings), verbose)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    _log_devices_to(out / "devices.log")
    store = open_store_or_exit(settings, migrate=True)
    with store.uow(write=True) as uow:
        api_key = create_key(uow=uow, scope=Scope.TILL, label="demo till")
    say.print(
        Panel.fit(
            f"[bold]{settings.store.name}[/] ({settings.store.id}) — "
            + say.tr("демонстрация", "demo")
            + say.tech(f"database {settings.database_url}\nconfig {settings.source}", "\n"),
            title="pos-loyalty",
        )
    )
    hub = LaneHub(store)
    with (
        simulated_devices(settings, out / "devices") as sims,
        DeviceManager(
            settings,
            hub,
            scanner_ports=sims.scanner_ports,
            printer_connections=sims.printer_connections,
        ),
        ApiServer(
            create_app(settings, store=store, hub=hub, receipt_png=render_receipt_png), free_port()
        ) as server,
    ):
        stage = Stage(TillClient(server.url, api_key), sims, settings, out, say)
        _print_pages(say, server.url, api_key, hub.lane_ids)
        _play(stage, store)
    store.close()
    if say.failed:
        say.print(
            say.tr(
                f"[bold red]Демонстрация не удалась: шагов с ошибкой — {len(say.failed)}.[/]",
                f"[bold red]Demo failed: {len(say.failed)} step(s) went wrong.[/]",
            )
        )
        for problem in say.failed:
            say.print(f"  - {problem}", highlight=False)
        raise typer.Exit(1)
    say.print(
        say.tr(
            "[bold green]Демонстрация закончена.[/] Файлы в ",
            "[bold green]Demo finished.[/] Outputs in ",
        )
        + f"{out}/"
    )


def _play(stage: Stage, store: Store) -> None:
    """The store's day, scene by scene."""
    settings = stage.settings
    customers = enrolment(stage, today=store.now().astimezone(settings.store.tz).date())
    identification(stage, customers)
    lane_devices(stage, customers)
    ivan, maria, olga = customers
    follower = LaneFollower(stage.till.base_url, stage.till.api_key, "lane-1")
    try:
        day = Day(stage, follower)
        coupon = day.maria_checkout(maria)
        day.olga_paper_out(olga)
        if coupon is not None:
            day.maria_next_visit(maria, coupon)
        day.yoghurts_and_a_promo_code(ivan)
    finally:
        follower.close()
    rush_hour(stage, store, ivan)
    lapsed_regulars(stage, store, [MILK, CROISSANT])  # issue 16: outreach
    segments(stage, store)
    head_office_scene(stage, store)
    reactivation_campaign(stage, store)
    summary(stage)


def _demo_settings(settings: Settings, out: Path) -> Settings:
    """The repository's store, with its database and secret in the demo folder."""
    data = settings.model_dump(exclude={"source"}, exclude_unset=True)
    data["store"]["database_url"] = f"sqlite:///{out / 'demo.db'}"
    data["store"]["secret_file"] = str(out / "secret.key")
    return settings_from_dict(data, source=settings.source, environ={})


def _print_pages(say: Narrator, base_url: str, api_key: str, lane_ids: list[str]) -> None:
    """The screens this demo serves while it runs (sign in with the demo's till key)."""
    lines = [f"{say.tr('управление магазином', 'back office'):<22} {base_url}/store"]
    lines += [
        f"{say.tr('экран покупателя', 'display') + ' ' + lane:<22} {base_url}/lanes/{lane}/display"
        for lane in lane_ids[:2]
    ]
    if len(lane_ids) > 2:
        lines.append(
            f"{'':<22} "
            + say.tr(f"… других касс: {len(lane_ids) - 2}", f"… and {len(lane_ids) - 2} more lanes")
        )
    lines += [f"{say.tr('описание API', 'API docs'):<22} {base_url}/docs"]
    lines += [f"{say.tr('метрики', 'metrics'):<22} {base_url}/metrics"]
    lines.append(say.tr(f"вход по ключу кассы {api_key}", f"sign in with the till key {api_key}"))
    say.print(Panel.fit("\n".join(lines), title=say.tr("страницы", "pages")), highlight=False)


def _log_devices_to(path: Path) -> None:
    """The drivers' log (a dropped garbled scan, a printer fault) goes to a file, not between
    the demo's tables."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("drivers", "firmware_sim"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
