"""What every head-office page shares: who may open it, the period field, the number formats.

The console signs in like every page (`session.page_scope`, a key of scope `hq` or `admin`) and
exists only on `pos-loyalty hq serve` (a service with `[head_office]`); elsewhere `/hq` is 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from api.pages.session import KEY_COOKIE, page_scope
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.apikeys.service import key_label
from pos_loyalty.hq.results import since_moment
from pos_loyalty.store import Store

_signed_in = page_scope(Scope.HQ)


async def _head_office_page(
    request: Request, scope: Annotated[Scope, Depends(_signed_in)]
) -> Scope:
    store: Store = request.app.state.store
    if store.settings.head_office is None:
        raise HTTPException(404, "this service is not head office: no [head_office] section")
    return scope


HqPage = Annotated[Scope, Depends(_head_office_page)]
SINCE_MAX = 40


def page_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def signed_in_as(request: Request) -> str:
    """The signed-in key in words (`key 3 «marketing»`), for the list of who published what."""
    store = page_store(request)
    with store.uow() as uow:
        return key_label(uow=uow, token=request.cookies.get(KEY_COOKIE, "").strip())


def period_start(request: Request, text: str, default: str) -> tuple[str, datetime]:
    """The period field (`30d`, `12h`, an ISO date) and its start; a bad one falls back."""
    store = page_store(request)
    now, tz = store.now(), store.settings.store.tz
    try:
        return text, since_moment(text, now=now, tz=tz)
    except ValueError:
        return default, since_moment(default, now=now, tz=tz)
