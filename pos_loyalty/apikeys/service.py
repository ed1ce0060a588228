"""Create and check API keys."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from pos_loyalty.apikeys.models import ApiKey, Scope
from pos_loyalty.errors import NotFound
from pos_loyalty.security import hash_api_key, new_api_key
from pos_loyalty.storage import UnitOfWork

# Revocations made by this process so far: key caches in this process compare it with the count
# they saw when they cached a key, so a key revoked here is refused by them at once.
_revocations = 0
_revocations_lock = threading.Lock()


def revocations_in_this_process() -> int:
    """How many revocations this process has made; changes whenever one is made."""
    return _revocations


def create_key(*, uow: UnitOfWork, scope: Scope, label: str = "") -> str:
    """Store a new key's hash and return the token (the only time it exists in clear)."""
    token = new_api_key(scope.value)
    uow.session.add(ApiKey(key_hash=hash_api_key(token), scope=scope.value, label=label))
    uow.commit()
    return token


def scope_of(*, uow: UnitOfWork, token: str) -> Scope | None:
    """The scope of a valid, unrevoked key, or None."""
    key = uow.session.exec(select(ApiKey).where(ApiKey.key_hash == hash_api_key(token))).first()
    if key is None or key.revoked_at is not None:
        return None
    return Scope(key.scope)


def key_of(*, uow: UnitOfWork, token: str) -> KeyInfo | None:
    """The valid, unrevoked key a token belongs to (who an operator is), or None."""
    key = uow.session.exec(select(ApiKey).where(ApiKey.key_hash == hash_api_key(token))).first()
    if key is None or key.revoked_at is not None:
        return None
    return _info(key)


def key_label(*, uow: UnitOfWork, token: str) -> str:
    """Who a key is, in words for a list of who did what: `key 7 «marketing»`."""
    info = key_of(uow=uow, token=token)
    if info is None:
        return ""
    return f"key {info.id} «{info.label}»" if info.label else f"key {info.id}"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What may be shown of a key: never its token, which is not stored."""

    id: int
    scope: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


def _info(key: ApiKey) -> KeyInfo:
    assert key.id is not None
    return KeyInfo(key.id, key.scope, key.label, key.created_at, key.revoked_at)


def list_keys(*, uow: UnitOfWork) -> list[KeyInfo]:
    """Every key ever created, oldest first."""
    return [_info(key) for key in uow.session.exec(select(ApiKey).order_by(col(ApiKey.id)))]


def revoke_key(*, uow: UnitOfWork, key_id: int, now: datetime) -> KeyInfo:
    """Refuse the key from now on (a lost or replaced till); revoking twice keeps the first time."""
    key = uow.session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"no API key with id {key_id}", code="key_not_found")
    if key.revoked_at is None:
        key.revoked_at = now
        uow.session.add(key)
    info = _info(key)
    uow.commit()
    global _revocations
    with _revocations_lock:
        _revocations += 1
    return info
