"""`/hq`: the program versions head office published, a new one uploaded and checked by the
store's own compiler (each message at its rule and key), the diff between two versions, publish
with `effective_from` and targets, and roll back (republish an old version as the next one).

Publishing goes through the same services as `pos-loyalty hq publish` and `POST /v1/hq/bundles`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlmodel import select
from starlette.responses import RedirectResponse, Response

from api.pages.hq_common import HqPage, page_store, signed_in_as
from api.pages.hq_program import PROGRAM_MAX_CHARS, CheckedProgram, check_program
from api.pages.program import rules_in_words
from api.pages.render import render, words_for
from api.pages.session import checked_form
from pos_loyalty.errors import DomainError
from pos_loyalty.hq.bundle import Program, Targets
from pos_loyalty.hq.diff import diff_programs
from pos_loyalty.hq.models import RegisteredStore
from pos_loyalty.hq.publish import list_bundles, publish_bundle, published_program, rollback_to
from pos_loyalty.hq.signing import SigningKeyError, load_signing_key
from pos_loyalty.moments import local_moment
from pos_loyalty.store import Store

router = APIRouter(include_in_schema=False)
UPLOAD_MAX_BYTES = 4 * PROGRAM_MAX_CHARS  # a form-encoded Cyrillic letter takes 6 bytes
FORM_FIELDS = ("program", "effective_from", "stores", "regions", "note")


def _versions(store: Store) -> list[dict[str, Any]]:
    with store.uow() as uow:
        return [
            {
                "version": row.version,
                "published_at": row.published_at,
                "effective_from": row.effective_from,
                "stores": row.targets.get("stores", []),
                "regions": row.targets.get("regions", []),
                "note": row.note,
                "who": row.published_by,
                "rollback_of": row.rollback_of,
            }
            for row in list_bundles(uow=uow)
        ]


def _registry(store: Store) -> dict[str, list[str]]:
    with store.uow() as uow:
        rows = [(row.id, row.region) for row in uow.session.exec(select(RegisteredStore))]
    return {
        "stores": sorted(store_id for store_id, _ in rows),
        "regions": sorted({region for _, region in rows if region}),
    }


def _page(request: Request, *, status_code: int = 200, **extra: Any) -> Response:
    store = page_store(request)
    versions = _versions(store)
    context = {
        "section": "bundles",
        "versions": versions,
        "registry": _registry(store),
        "form": dict.fromkeys(FORM_FIELDS, ""),
        "checked": None,
        **extra,
    }
    return render(request, "hq_bundles.html", context, status_code=status_code)


@router.get("/hq")
def bundles_page(
    request: Request,
    _: HqPage,
    published: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    return _page(request, published=published)


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.replace(";", ",").split(",") if part.strip())


def _moment(text: str, store: Store) -> datetime | None:
    """`datetime-local` (read in head office's zone) or an ISO moment; empty: now."""
    if not text.strip():
        return None
    return local_moment(text, store.settings.store.tz)


def _changes(store: Store, program: Program) -> tuple[int, list[str]] | None:
    """What the upload changes against the newest published version."""
    with store.uow() as uow:
        newest = list_bundles(uow=uow)
        if not newest:
            return None
        version = newest[0].version
        old = published_program(uow=uow, version=version)[1]
    return version, diff_programs(old, program)


def _publish(request: Request, program: Program, form: dict[str, str]) -> int:
    store = page_store(request)
    office = store.settings.head_office
    assert office is not None  # HqPage
    key = load_signing_key(store.settings.resolve_path(office.signing_key))
    who = signed_in_as(request)
    with store.uow(write=True) as uow:
        bundle = publish_bundle(
            uow=uow,
            key=key,
            program=program,
            now=store.now(),
            effective_from=_moment(form["effective_from"], store),
            targets=Targets(_split(form["stores"]), _split(form["regions"])),
            note=form["note"][:1000],
            published_by=who,
        )
    return bundle.version


@router.post("/hq/bundles")
async def upload(request: Request, _: HqPage) -> Response:
    """Check the uploaded program (`action=check`) or publish it (`action=publish`)."""
    fields = await checked_form(request, max_bytes=UPLOAD_MAX_BYTES)
    form = {name: fields.get(name, "") for name in FORM_FIELDS}
    checked: CheckedProgram = check_program(form["program"])
    if checked.program is None:
        return _page(request, form=form, checked=checked, status_code=422)
    rules = rules_in_words(list(checked.program.rules.rules), words_for(request))
    if fields.get("action") != "publish":
        changes = _changes(page_store(request), checked.program)
        return _page(request, form=form, checked=checked, rules=rules, changes=changes)
    try:
        version = _publish(request, checked.program, form)
    except ValueError:
        error = f"effective_from: {form['effective_from']!r} is not a date and time"
        return _page(request, form=form, checked=checked, publish_error=error, status_code=422)
    except (DomainError, SigningKeyError) as exc:
        message = exc.message if isinstance(exc, DomainError) else str(exc)
        return _page(request, form=form, checked=checked, publish_error=message, status_code=422)
    return RedirectResponse(f"/hq?published={version}", status_code=303)


@router.post("/hq/bundles/{version}/rollback")
async def rollback(request: Request, version: int, _: HqPage) -> Response:
    """Republish an old version's program (and targets) as the next version."""
    await checked_form(request)
    store = page_store(request)
    office = store.settings.head_office
    assert office is not None
    who = signed_in_as(request)
    try:
        key = load_signing_key(store.settings.resolve_path(office.signing_key))
        with store.uow(write=True) as uow:
            bundle = rollback_to(
                uow=uow, key=key, version=version, now=store.now(), published_by=who
            )
    except (DomainError, SigningKeyError) as exc:
        message = exc.message if isinstance(exc, DomainError) else str(exc)
        return _page(request, publish_error=message, status_code=422)
    return RedirectResponse(f"/hq?published={bundle.version}", status_code=303)


@router.get("/hq/diff")
def diff_page(
    request: Request,
    _: HqPage,
    old: Annotated[int, Query(ge=1)],
    new: Annotated[int, Query(ge=1)],
) -> Response:
    store = page_store(request)
    try:
        with store.uow() as uow:
            before = published_program(uow=uow, version=old)[1]
            after = published_program(uow=uow, version=new)[1]
    except DomainError as exc:
        return _page(request, publish_error=exc.message, status_code=404)
    context = {"section": "bundles", "old": old, "new": new, "lines": diff_programs(before, after)}
    return render(request, "hq_diff.html", context)
