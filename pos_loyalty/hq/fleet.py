"""The store registry at head office: who is registered, what each store runs, who is behind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from pos_loyalty.apikeys.models import ApiKey, Scope
from pos_loyalty.apikeys.service import create_key
from pos_loyalty.errors import InvalidInput
from pos_loyalty.hq.bundle import Targets
from pos_loyalty.hq.models import PublishedBundle, RegisteredStore
from pos_loyalty.security import hash_api_key
from pos_loyalty.storage import UnitOfWork


def register_store(*, uow: UnitOfWork, store_id: str, name: str = "", region: str = "") -> str:
    """Add (or re-key) a store; returns its new `store` key, the only time it is shown."""
    if not store_id or len(store_id) > 64 or not all(c.isalnum() or c in "_.-" for c in store_id):
        raise InvalidInput(f"store id {store_id!r} must be 1-64 of A-Z a-z 0-9 _ . -")
    token = create_key(uow=uow, scope=Scope.STORE, label=f"store {store_id}")
    key = uow.session.exec(select(ApiKey).where(ApiKey.key_hash == hash_api_key(token))).one()
    row = uow.session.get(RegisteredStore, store_id) or RegisteredStore(id=store_id)
    row.name, row.region, row.api_key_id = name or row.name, region or row.region, key.id
    uow.session.add(row)
    uow.commit()
    return token


def store_for_token(*, uow: UnitOfWork, token: str) -> RegisteredStore | None:
    """The registered store whose (unrevoked) key this is."""
    return uow.session.exec(
        select(RegisteredStore)
        .join(ApiKey, col(ApiKey.id) == col(RegisteredStore.api_key_id))
        .where(ApiKey.key_hash == hash_api_key(token), col(ApiKey.revoked_at).is_(None))
    ).first()


def _targets(row: PublishedBundle) -> Targets:
    return Targets(tuple(row.targets.get("stores", ())), tuple(row.targets.get("regions", ())))


def current_bundle_for(*, uow: UnitOfWork, store: RegisteredStore) -> PublishedBundle | None:
    """The newest bundle that targets this store (by id, by region, or everyone)."""
    for row in uow.session.exec(
        select(PublishedBundle).order_by(col(PublishedBundle.version).desc())
    ):
        if _targets(row).includes(store_id=store.id, region=store.region or None):
            return row
    return None


@dataclass(frozen=True, slots=True)
class PullReport:
    """What a store says about itself with each pull."""

    active_version: int | None
    pending_version: int | None
    last_error: str
    software_version: str


def record_pull(
    *, uow: UnitOfWork, store: RegisteredStore, report: PullReport, now: datetime
) -> None:
    """Remember when the store was last seen and what it runs (the fleet view)."""
    store.last_seen_at = now
    store.active_version = report.active_version
    store.pending_version = report.pending_version
    store.last_error = report.last_error[:500]
    store.software_version = report.software_version[:64]
    uow.session.add(store)
    uow.commit()


@dataclass(frozen=True, slots=True)
class FleetRow:
    store_id: str
    name: str
    region: str
    active_version: int | None
    pending_version: int | None
    target_version: int | None  # the newest bundle head office has for it
    behind: bool
    last_error: str
    software_version: str
    last_seen_at: datetime | None


def fleet(*, uow: UnitOfWork) -> list[FleetRow]:
    """Each registered store: what it runs, what it should run, whether it failed and why."""
    bundles = list(
        uow.session.exec(select(PublishedBundle).order_by(col(PublishedBundle.version).desc()))
    )
    rows = []
    for store in uow.session.exec(select(RegisteredStore).order_by(col(RegisteredStore.id))):
        target = next(
            (
                b.version
                for b in bundles
                if _targets(b).includes(store_id=store.id, region=store.region or None)
            ),
            None,
        )
        newest_known = max(
            v for v in (store.active_version, store.pending_version, 0) if v is not None
        )
        rows.append(
            FleetRow(
                store_id=store.id,
                name=store.name,
                region=store.region,
                active_version=store.active_version,
                pending_version=store.pending_version,
                target_version=target,
                behind=target is not None and newest_known < target,
                last_error=store.last_error,
                software_version=store.software_version,
                last_seen_at=store.last_seen_at,
            )
        )
    return rows


def envelope_etag(row: PublishedBundle) -> str:
    return f'"v{row.version}"'
