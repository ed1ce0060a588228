"""A store's own copy of head office's bundles: accept one (verified, newer, compiled), activate
the one whose moment has come, and say what runs. Used by the sync loop, `rules sync` and
`rules status`; works with head office down, from what the store's database holds."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from pos_loyalty.hq.bundle import Bundle, BundleRefused, bundle_from_json
from pos_loyalty.hq.models import AcceptedBundle, BundleStatus, SyncState
from pos_loyalty.hq.signing import parse_public_key, verify_envelope
from pos_loyalty.rules.compiled import CompiledRules
from pos_loyalty.settings import HqConfig
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.store import Store

log = logging.getLogger("pos_loyalty.hq")


def printable(text: str, limit: int = 500) -> str:
    """Text from outside (a bundle, head office's answer) made safe for a log line or a page."""
    cleaned = "".join(c if c.isprintable() else "?" for c in text)
    return cleaned[:limit]


def bundle_rules_version(version: int, compiled: CompiledRules) -> str:
    """What quotes and sales record as `rules_version`: the bundle number and the content hash."""
    return f"v{version}-{compiled.version}"


def hq_config(store: Store) -> HqConfig:
    if store.settings.hq is None:
        raise RuntimeError("this store has no [hq] section: its program is its config.toml")
    return store.settings.hq


def _verified(store: Store, raw: bytes) -> Bundle:
    hq = hq_config(store)
    body = verify_envelope(raw, parse_public_key(hq.public_key))
    bundle = bundle_from_json(body)
    if not bundle.targets.includes(store_id=store.settings.store.id, region=hq.region or None):
        raise BundleRefused(
            "not_for_this_store",
            f"bundle v{bundle.version} is for {bundle.targets.describe()}, "
            f"not store {store.settings.store.id}",
        )
    return bundle


def compiled_bundle(store: Store, raw: bytes) -> tuple[Bundle, CompiledRules]:
    """Verify and compile a signed bundle for this store (its `rules_version` names the bundle)."""
    bundle = _verified(store, raw)
    try:
        compiled = bundle.program.compile(tz=store.settings.store.tz)
    except (ValueError, TypeError) as exc:
        raise BundleRefused("invalid_rule", f"bundle v{bundle.version}: {exc}") from None
    return bundle, replace(compiled, version=bundle_rules_version(bundle.version, compiled))


def newest_accepted(uow: UnitOfWork) -> int:
    latest = uow.session.exec(select(func.max(col(AcceptedBundle.version)))).one()
    return int(latest or 0)


def _state(uow: UnitOfWork) -> SyncState:
    return uow.session.get(SyncState, 1) or SyncState(id=1)


def accept_bundle(*, store: Store, raw: bytes, now: datetime) -> Bundle:
    """Keep a downloaded bundle if it passes every check; otherwise refuse it whole (the program
    that runs is untouched) and remember why."""
    try:
        bundle, _ = compiled_bundle(store, raw)
        with store.uow(write=True) as uow:
            newest = newest_accepted(uow)
            if bundle.version <= newest:
                raise BundleRefused(
                    "not_newer",
                    f"bundle v{bundle.version} is not newer than v{newest} "
                    "(an old or replayed bundle)",
                )
            uow.session.add(
                AcceptedBundle(
                    version=bundle.version,
                    received_at=now,
                    effective_from=bundle.effective_from,
                    status=BundleStatus.PENDING.value,
                    envelope=raw.decode("utf-8"),
                )
            )
            state = _state(uow)
            state.last_attempt_at = state.last_success_at = now
            state.last_error, state.last_error_at = "", None
            uow.session.add(state)
            uow.commit()
    except BundleRefused as refused:
        record_sync(store=store, now=now, error=f"refused ({refused.reason}): {refused.message}")
        raise
    log.info(
        "accepted rules bundle v%d, effective from %s (%s)",
        bundle.version,
        bundle.effective_from.isoformat(),
        printable(bundle.note, 200),
    )
    return bundle


def record_sync(*, store: Store, now: datetime, error: str = "") -> None:
    """Remember a pull: when, and the error if it failed or a bundle was refused."""
    with store.uow(write=True) as uow:
        state = _state(uow)
        state.last_attempt_at = now
        if error:
            state.last_error, state.last_error_at = printable(error), now
            state.refusals += error.startswith("refused")
            state.failures += 1
        else:
            state.last_success_at = now
        uow.session.add(state)
        uow.commit()
    if error:
        log.warning("rules sync: %s; the current program keeps running", printable(error))


def activate_due(*, store: Store, now: datetime) -> tuple[int, bytes] | None:
    """Mark the newest bundle whose moment has come active (older ones superseded); returns the
    active bundle's version and signed text."""
    with store.uow(write=True) as uow:
        rows = list(uow.session.exec(select(AcceptedBundle).order_by(col(AcceptedBundle.version))))
        due = [r for r in rows if r.effective_from <= now]
        if not due:
            return None
        newest = due[-1]
        changed = False
        for row in due:
            status = BundleStatus.ACTIVE if row is newest else BundleStatus.SUPERSEDED
            if row.status != status.value:
                row.status = status.value
                if row is newest:
                    row.activated_at = now
                uow.session.add(row)
                changed = True
        if changed:
            uow.commit()
        return newest.version, newest.envelope.encode("utf-8")


def apply_active(*, store: Store, now: datetime) -> int | None:
    """Make the running program the active bundle (swapped in one step); returns its version.

    The stored bundle is verified again before use: the local copy is data like any download.
    """
    due = activate_due(store=store, now=now)
    if due is None:
        return None
    version, raw = due
    if store.rules.version.startswith(f"v{version}-"):
        return version
    try:
        bundle, compiled = compiled_bundle(store, raw)
    except BundleRefused as refused:  # the local copy was damaged: keep what runs
        record_sync(store=store, now=now, error=f"stored v{version} unusable: {refused}")
        return None
    store.activate(compiled, category_names=bundle.program.category_names)
    log.info("rules bundle v%d active (rules_version %s)", bundle.version, compiled.version)
    return bundle.version


@dataclass(frozen=True, slots=True)
class LocalStatus:
    """What `rules status` and each pull report."""

    active_version: int | None
    active_since: datetime | None
    pending_version: int | None
    pending_from: datetime | None
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str
    last_error_at: datetime | None
    refusals: int
    failures: int = 0  # pulls that failed or were refused

    @property
    def failing(self) -> bool:
        """The last pull failed (head office unreachable, an error, a refused bundle)."""
        return self.last_attempt_at is not None and self.last_error_at == self.last_attempt_at

    def to_dict(self) -> dict[str, Any]:
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in ((name, getattr(self, name)) for name in self.__dataclass_fields__)
        }


def local_status(*, uow: UnitOfWork) -> LocalStatus:
    """The active and pending bundles and how the last sync went, from the store's database."""
    rows = list(uow.session.exec(select(AcceptedBundle).order_by(col(AcceptedBundle.version))))
    active = next((r for r in reversed(rows) if r.status == BundleStatus.ACTIVE.value), None)
    pending = next(
        (
            r
            for r in reversed(rows)
            if r.status == BundleStatus.PENDING.value
            and (active is None or r.version > active.version)
        ),
        None,
    )
    state = _state(uow)
    return LocalStatus(
        active_version=active.version if active else None,
        active_since=active.activated_at if active else None,
        pending_version=pending.version if pending else None,
        pending_from=pending.effective_from if pending else None,
        last_attempt_at=state.last_attempt_at,
        last_success_at=state.last_success_at,
        last_error=state.last_error,
        last_error_at=state.last_error_at,
        refusals=state.refusals,
        failures=state.failures,
    )


def next_activation(*, uow: UnitOfWork) -> datetime | None:
    """The earliest moment a pending bundle becomes active."""
    return uow.session.exec(
        select(func.min(col(AcceptedBundle.effective_from))).where(
            AcceptedBundle.status == BundleStatus.PENDING.value
        )
    ).one()


def running_program(*, store: Store, now: datetime) -> CompiledRules:
    """The program that runs now, read only: the active (or due) bundle, else config.toml's."""
    if store.settings.hq is None:
        return store.rules
    with store.uow() as uow:
        row = uow.session.exec(
            select(AcceptedBundle)
            .where(col(AcceptedBundle.effective_from) <= now)
            .order_by(col(AcceptedBundle.version).desc())
        ).first()
        raw = row.envelope.encode("utf-8") if row is not None else None
    if raw is None:
        return store.rules
    return compiled_bundle(store, raw)[1]
