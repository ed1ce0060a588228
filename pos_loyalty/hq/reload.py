"""SIGHUP (or `rules reload`) at a store without head office: read config.toml's program again
and swap it in; a file with a mistake is refused and the running program keeps selling."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pos_loyalty.rules.compiled import compile_rules
from pos_loyalty.rules.config import RulesConfig
from pos_loyalty.settings import ConfigError, load_settings
from pos_loyalty.store import Store

log = logging.getLogger("pos_loyalty.hq")


def reload_local_program(*, store: Store) -> str:
    """Re-read the store's config file and activate its program; returns the new version."""
    try:
        fresh = load_settings(store.settings.source, environ=dict(os.environ))
    except ConfigError as exc:
        log.warning("reload refused, the running program stays: %s", "; ".join(exc.problems))
        raise
    compiled = compile_rules(
        RulesConfig(points=fresh.points, tiers=fresh.tiers, rules=fresh.rules),
        tz=store.settings.store.tz,
    )
    if compiled.version != store.rules.version:
        store.activate(compiled, category_names=dict(fresh.store.category_names))
        log.info("rules reloaded from %s: version %s", store.settings.source, compiled.version)
    return compiled.version


def pid_file(config_source: str) -> Path:
    """Where `serve` writes its process id, so `rules reload` can signal it."""
    return Path(config_source).resolve().with_suffix(".pid")
