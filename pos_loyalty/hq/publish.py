"""Publish a program as the next bundle version, and roll back by republishing an old one."""

from __future__ import annotations

import json
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func
from sqlmodel import col, select

from pos_loyalty.errors import InvalidInput, NotFound
from pos_loyalty.hq.bundle import Bundle, Program, Targets, program_from_json
from pos_loyalty.hq.models import PublishedBundle, RegisteredStore
from pos_loyalty.hq.signing import sign_bundle
from pos_loyalty.rules.config import RulesConfigError
from pos_loyalty.storage import UnitOfWork


def load_program_file(path: Path) -> Program:
    """A program TOML (a full config.toml is fine), checked exactly as `rules validate` does."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RulesConfigError(source, ["file not found"]) from None
    except UnicodeDecodeError:
        raise RulesConfigError(source, ["the file is not UTF-8 text"]) from None
    return program_from_toml(text, source=source)


def program_from_toml(text: str, *, source: str) -> Program:
    """A program from TOML text (the console's upload, a file's content).

    Category names come from a top-level `[category_names]` or the file's `[store.category_names]`.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesConfigError(source, [f"not valid TOML: {exc}"]) from None
    store = data.get("store")
    names = data.get("category_names")
    if names is None and isinstance(store, dict):
        names = store.get("category_names", {})
    section = {k: data[k] for k in ("points", "tiers", "rules") if k in data}
    return program_from_json({**section, "category_names": names or {}}, source=source)


def _check_targets(uow: UnitOfWork, targets: Targets) -> None:
    """Targets name stores and regions head office knows; a typo would reach nobody."""
    known = uow.session.exec(select(RegisteredStore.id, RegisteredStore.region)).all()
    ids, regions = {row[0] for row in known}, {row[1] for row in known}
    unknown = [f"store {s!r}" for s in targets.stores if s not in ids]
    unknown += [f"region {r!r}" for r in targets.regions if r not in regions]
    if unknown:
        raise InvalidInput(
            f"unknown targets: {', '.join(unknown)} (see `pos-loyalty hq stores`)",
            code="unknown_target",
            details={"unknown": unknown},
        )


def next_version(uow: UnitOfWork) -> int:
    latest = uow.session.exec(select(func.max(col(PublishedBundle.version)))).one()
    return int(latest or 0) + 1


def publish_bundle(
    *,
    uow: UnitOfWork,
    key: Ed25519PrivateKey,
    program: Program,
    now: datetime,
    effective_from: datetime | None = None,
    targets: Targets | None = None,
    note: str = "",
    rollback_of: int | None = None,
    published_by: str = "",
) -> Bundle:
    """Sign and store the program as the next version: what every targeted store pulls next.
    `published_by` says who (an API key's label, the CLI's user) for the console's list."""
    targets = targets or Targets()
    _check_targets(uow, targets)
    program.compile()  # the store's own compiler: what fails here would fail at every store
    bundle = Bundle(
        version=next_version(uow),
        effective_from=effective_from or now,
        published_at=now,
        targets=targets,
        note=note,
        program=program,
    )
    body = bundle.to_json()
    uow.session.add(
        PublishedBundle(
            version=bundle.version,
            published_at=now,
            effective_from=bundle.effective_from,
            targets=body["targets"],
            note=note,
            rollback_of=rollback_of,
            published_by=published_by[:200],
            envelope=sign_bundle(body, key).decode("utf-8"),
        )
    )
    uow.commit()
    return bundle


def published_program(*, uow: UnitOfWork, version: int) -> tuple[PublishedBundle, Program]:
    """A published version's row and program (for diff, rollback and dry runs)."""
    row = uow.session.get(PublishedBundle, version)
    if row is None:
        raise NotFound(f"no bundle version {version}", code="bundle_not_found")
    body: dict[str, Any] = json.loads(row.envelope)["bundle"]
    return row, program_from_json(body["program"], source=f"bundle v{version}")


def rollback_to(
    *,
    uow: UnitOfWork,
    key: Ed25519PrivateKey,
    version: int,
    now: datetime,
    note: str = "",
    published_by: str = "",
) -> Bundle:
    """Republish an old version's program as the next number: stores only ever move forward."""
    row, program = published_program(uow=uow, version=version)
    targets = Targets(tuple(row.targets.get("stores", ())), tuple(row.targets.get("regions", ())))
    return publish_bundle(
        uow=uow,
        key=key,
        program=program,
        now=now,
        targets=targets,
        note=note or f"rollback to v{version}",
        rollback_of=version,
        published_by=published_by,
    )


def list_bundles(*, uow: UnitOfWork) -> list[PublishedBundle]:
    """Every published version, newest first."""
    return list(
        uow.session.exec(select(PublishedBundle).order_by(col(PublishedBundle.version).desc()))
    )
