"""`pos-loyalty rules sync|status|reload`: the program a running store uses, from head office
(pull now, what is active and pending) or from its own config.toml (re-read on SIGHUP)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import typer
from rich.markup import escape

from pos_loyalty.cli.common import (
    ConfigOption,
    console,
    err_console,
    load_or_exit,
    open_store_or_exit,
)
from pos_loyalty.rules import RulesConfig, compile_rules
from pos_loyalty.store import Store


def _store_with_hq(config: Path | None) -> Store:
    settings = load_or_exit(config)
    if settings.hq is None:
        err_console.print(
            f"[bold red]No head office:[/] {settings.source} has no [hq] section; this store "
            "runs the program in its config.toml (`rules reload` re-reads it)",
            highlight=False,
        )
        raise typer.Exit(2)
    return open_store_or_exit(settings)


def sync(config: ConfigOption = None) -> None:
    """Pull head office's current bundle now; the running service activates it at its moment."""
    from pos_loyalty.hq.local import apply_active
    from pos_loyalty.hq.sync import pull_once

    store = _store_with_hq(config)
    try:
        outcome = pull_once(store=store)
        apply_active(store=store, now=store.now())
    finally:
        store.close()
    style = {"accepted": "green", "unchanged": "green"}.get(outcome.result, "red")
    console.print(f"[bold {style}]{outcome.result}[/]: {escape(outcome.message)}", highlight=False)
    if outcome.result in ("refused", "failed"):
        raise typer.Exit(1)


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "never"


def status(config: ConfigOption = None) -> None:
    """Which program runs: active bundle and since when, pending, last sync, last error."""
    from pos_loyalty.hq.local import local_status

    settings = load_or_exit(config)
    if settings.hq is None:
        version = compile_rules(
            RulesConfig(points=settings.points, tiers=settings.tiers, rules=settings.rules)
        ).version
        console.print(
            f"program from {settings.source} (version {version}); no head office", highlight=False
        )
        return
    store = open_store_or_exit(settings)
    try:
        with store.uow() as uow:
            st = local_status(uow=uow)
    finally:
        store.close()
    active = (
        f"v{st.active_version} since {_when(st.active_since)}"
        if st.active_version
        else (f"none from head office yet (program from {settings.source})")
    )
    pending = f"v{st.pending_version} from {_when(st.pending_from)}" if st.pending_version else "—"
    console.print(f"active: {active}", highlight=False)
    console.print(f"pending: {pending}", highlight=False)
    console.print(
        f"last sync: {_when(st.last_success_at)} (last attempt {_when(st.last_attempt_at)})",
        highlight=False,
    )
    error = f"{escape(st.last_error)} at {_when(st.last_error_at)}" if st.last_error else "—"
    console.print(f"last error: {error}", highlight=False)


def reload(config: ConfigOption = None) -> None:
    """Check config.toml's program and make the running `serve` re-read it (SIGHUP)."""
    import signal

    from pos_loyalty.hq.reload import pid_file

    settings = load_or_exit(config)  # a mistake stops here; the running program is untouched
    path = pid_file(settings.source)
    try:
        pid = int(path.read_text(encoding="ascii").strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError):
        err_console.print(
            f"[bold red]No running service[/] for {settings.source} ({path} missing or stale)",
            highlight=False,
        )
        raise typer.Exit(1) from None
    what = "pull from head office now" if settings.hq else "re-read its program"
    console.print(f"asked serve (pid {pid}) to {what}", highlight=False)
