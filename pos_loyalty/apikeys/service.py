"""Create and check API keys."""

from __future__ import annotations

from sqlmodel import select

from pos_loyalty.apikeys.models import ApiKey, Scope
from pos_loyalty.security import hash_api_key, new_api_key
from pos_loyalty.storage import UnitOfWork


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
