"""Head office: publish signed rule bundles, serve each store its current one, show the fleet.

Stores pull `GET /v1/hq/bundles/current` with a key of scope `store`; everything else is for
head office's own tools (scope `hq`)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import HqScope, StoreDep, require_scope
from api.errors import ApiError
from pos_loyalty.apikeys.models import Scope
from pos_loyalty.apikeys.service import key_label
from pos_loyalty.errors import InvalidInput
from pos_loyalty.hq.bundle import Bundle, Program, Targets, program_from_json
from pos_loyalty.hq.figures import figures_from_query, record_figures
from pos_loyalty.hq.fleet import (
    PullReport,
    current_bundle_for,
    envelope_etag,
    fleet,
    record_pull,
    store_for_token,
)
from pos_loyalty.hq.publish import list_bundles, publish_bundle, published_program
from pos_loyalty.hq.replay import dry_run
from pos_loyalty.hq.results import results_report, since_moment
from pos_loyalty.hq.signing import SigningKeyError, load_signing_key
from pos_loyalty.rules.compiled import CompiledRules
from pos_loyalty.rules.config import RulesConfigError
from pos_loyalty.storage import UnitOfWork
from pos_loyalty.store import Store

router = APIRouter(prefix="/v1/hq", tags=["head office"])
StoreScope = Annotated[Scope, Depends(require_scope(Scope.STORE))]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TargetsIn(_In):
    stores: list[Annotated[str, Field(min_length=1, max_length=64)]] = []
    regions: list[Annotated[str, Field(min_length=1, max_length=64)]] = []


class PublishIn(_In):
    program: dict[str, Any]  # [points], [[tiers]], [[rules]], category_names, as JSON
    effective_from: datetime | None = None  # default: now
    targets: TargetsIn = TargetsIn()
    note: Annotated[str, Field(max_length=1000)] = ""


class TargetsPublic(BaseModel):
    stores: list[str]
    regions: list[str]


class BundlePublic(BaseModel):
    version: int
    published_at: datetime
    effective_from: datetime
    targets: TargetsPublic
    note: str
    rollback_of: int | None = None


class SignedBundlePublic(BaseModel):
    """The envelope as stored: the signature covers the canonical JSON of `bundle`."""

    bundle: dict[str, Any]
    signature: str


class FleetStorePublic(BaseModel):
    store_id: str
    name: str
    region: str
    active_version: int | None
    pending_version: int | None
    target_version: int | None
    behind: bool
    last_error: str
    software_version: str
    last_seen_at: datetime | None


def _signing_key(store: Store) -> Any:
    office = store.settings.head_office
    if office is None:
        raise ApiError(
            409, "not_head_office", "this service has no [head_office] section: it cannot publish"
        )
    try:
        return load_signing_key(store.settings.resolve_path(office.signing_key))
    except SigningKeyError as exc:
        raise ApiError(503, "signing_key_unavailable", str(exc)) from None


def _public(bundle: Bundle) -> BundlePublic:
    return BundlePublic(
        version=bundle.version,
        published_at=bundle.published_at,
        effective_from=bundle.effective_from,
        targets=TargetsPublic(**bundle.targets.to_json()),
        note=bundle.note,
    )


def _program(data: dict[str, Any], *, source: str) -> Program:
    """A program sent as JSON, checked by the store's own compiler, or 422 with its problems."""
    try:
        return program_from_json(data, source=source)
    except RulesConfigError as exc:
        raise InvalidInput(
            "the program is not valid: " + "; ".join(exc.problems),
            code="rules_invalid",
            details={"problems": exc.problems},
        ) from None


@router.post("/bundles", status_code=201, response_model=BundlePublic)
def publish(body: PublishIn, request: Request, store: StoreDep, _: HqScope) -> BundlePublic:
    """Validate with the store's own compiler, sign, store: the next version."""
    program = _program(body.program, source="program")
    key = _signing_key(store)
    with store.uow(write=True) as uow:
        bundle = publish_bundle(
            uow=uow,
            key=key,
            program=program,
            now=store.now(),
            effective_from=_local(body.effective_from, store),
            targets=Targets(tuple(body.targets.stores), tuple(body.targets.regions)),
            note=body.note,
            published_by=key_label(uow=uow, token=bearer_token(request)),
        )
    return _public(bundle)


@router.get("/bundles", response_model=list[BundlePublic])
def bundles(store: StoreDep, _: HqScope) -> list[BundlePublic]:
    """Every published version, newest first."""
    with store.uow() as uow:
        return [
            BundlePublic(
                version=r.version,
                published_at=r.published_at,
                effective_from=r.effective_from,
                targets=TargetsPublic(**r.targets),
                note=r.note,
                rollback_of=r.rollback_of,
            )
            for r in list_bundles(uow=uow)
        ]


def _local(moment: datetime | None, store: Store) -> datetime | None:
    """A moment without an offset is head office's local time, as `hq publish` and the console
    read it."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=store.settings.store.tz)


def bearer_token(request: Request) -> str:
    return request.headers.get("authorization", "").partition(" ")[2].strip()


def _version(text: str) -> int | None:
    return int(text) if text.isdigit() else None


@router.get(
    "/bundles/current",
    response_model=SignedBundlePublic,
    responses={304: {"description": "the store already has this version"}},
)
def current(
    request: Request,
    store: StoreDep,
    _: StoreScope,
    store_id: Annotated[str, Query(alias="store", min_length=1, max_length=64)],
    active: Annotated[str, Query(max_length=12)] = "",
    pending: Annotated[str, Query(max_length=12)] = "",
    error: Annotated[str, Query(max_length=500)] = "",
    software: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """The newest bundle for the asking store, signed; its report is recorded for the fleet."""
    with store.uow(write=True) as uow:
        registered = store_for_token(uow=uow, token=bearer_token(request))
        if registered is None or registered.id != store_id:
            raise ApiError(
                403,
                "wrong_store",
                f"this key does not belong to store {store_id!r}",
            )
        report = PullReport(_version(active), _version(pending), error, software)
        if (figures := figures_from_query(request.query_params)) is not None:
            record_figures(
                uow=uow,
                store_id=registered.id,
                figures=figures,
                now=store.now(),
                tz=store.settings.store.tz,
            )
        row = current_bundle_for(uow=uow, store=registered)
        etag, envelope = (envelope_etag(row), row.envelope) if row is not None else ("", "")
        record_pull(uow=uow, store=registered, report=report, now=store.now())
    if not etag:
        raise ApiError(404, "no_bundle", f"no bundle published for store {store_id!r} yet")
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return Response(
        content=envelope.encode("utf-8"),
        media_type="application/json",
        headers={"ETag": etag},
    )


@router.get("/stores", response_model=list[FleetStorePublic])
def stores(store: StoreDep, _: HqScope) -> list[FleetStorePublic]:
    """Which store runs what, who is behind, who failed and why, when each was last seen."""
    with store.uow() as uow:
        rows = fleet(uow=uow)
    return [FleetStorePublic(**asdict(row)) for row in rows]


class FiguresPublic(BaseModel):
    baskets: int
    discount: int
    points: int
    liability: int  # points at the program's point value, minor units
    coupons: int


class RuleForecastPublic(BaseModel):
    rule_id: str
    label: str
    active: FiguresPublic
    proposed: FiguresPublic


class ForecastTotalPublic(BaseModel):
    active: FiguresPublic
    proposed: FiguresPublic


class ComparedPublic(BaseModel):
    """One side of a dry run: which program it is and how its figures were made."""

    kind: Literal["version", "active", "recorded", "program"]
    version: int | None  # the published version (kind "version")
    rules_version: str  # the program's content hash, as sales record it
    figures: Literal["replayed", "recorded"]  # priced again, or what the sales recorded


class DryRunPublic(BaseModel):
    sales: int
    since: datetime
    active_version: str  # the baseline's rules_version (kept for older callers)
    proposed_version: str  # the candidate's
    baseline: ComparedPublic
    candidate: ComparedPublic
    refunded_sales: int  # refunded whole: they count for nothing on either side
    rules: list[RuleForecastPublic]
    total: ForecastTotalPublic


class BaselineIn(_In):
    """What to compare against: a published `version`, the program this service runs now
    (`active`), or what the sales recorded under the programs they ran under (`recorded`)."""

    kind: Literal["version", "active", "recorded"]
    version: Annotated[int, Field(ge=1)] | None = None


class CandidateIn(_In):
    """What to forecast: a published `version`, or an uploaded `program` (not published)."""

    kind: Literal["version", "program"]
    version: Annotated[int, Field(ge=1)] | None = None
    program: dict[str, Any] | None = None  # [points], [[tiers]], [[rules]], as JSON


class DryRunIn(_In):
    since: Annotated[str, Field(max_length=40)] = "90d"  # 90d, 12h or an ISO date
    # default: the version before this one (the service's own program for version 1)
    baseline: BaselineIn | None = None


class CompareIn(_In):
    since: Annotated[str, Field(max_length=40)] = "90d"
    baseline: BaselineIn
    candidate: CandidateIn


def _since(text: str, store: Store) -> datetime:
    try:
        return since_moment(text, now=store.now(), tz=store.settings.store.tz)
    except ValueError as exc:
        raise InvalidInput(str(exc), code="since_invalid") from None


def _needs_version(version: int | None, field: str) -> int:
    if version is None:
        raise InvalidInput(
            f"{field}: kind 'version' needs a 'version'",
            code="validation_error",
            details=[{"field": f"{field}.version", "message": "required for kind 'version'"}],
        )
    return version


def _chosen(
    uow: UnitOfWork, store: Store, side: BaselineIn | CandidateIn, field: str
) -> tuple[CompiledRules, ComparedPublic]:
    """The compiled program one side names, and how the answer names it."""
    tz = store.settings.store.tz
    version: int | None = None
    if side.kind == "version":
        version = _needs_version(side.version, field)
        rules = published_program(uow=uow, version=version)[1].compile(tz=tz)
    elif side.kind == "program":
        if side.program is None:
            raise InvalidInput(
                f"{field}: kind 'program' needs a 'program'", code="validation_error"
            )
        rules = _program(side.program, source=f"{field}.program").compile(tz=tz)
    else:  # active, recorded: the program this service runs now names the recorded side too
        rules = store.rules
    figures: Literal["replayed", "recorded"] = "recorded" if side.kind == "recorded" else "replayed"
    return rules, ComparedPublic(
        kind=side.kind, version=version, rules_version=rules.version, figures=figures
    )


def _forecast(
    store: Store, since: str, baseline: BaselineIn, candidate: CandidateIn
) -> DryRunPublic:
    start = _since(since, store)
    with store.uow() as uow:
        before, baseline_public = _chosen(uow, store, baseline, "baseline")
        after, candidate_public = _chosen(uow, store, candidate, "candidate")
        result = dry_run(
            uow=uow,
            active=before,
            proposed=after,
            since=start,
            locale=store.settings.store.locale,
            currency=store.settings.store.currency,
            replay_active=baseline.kind != "recorded",
            tz=store.settings.store.tz,
        )
    return DryRunPublic.model_validate(
        {**result.to_dict(), "baseline": baseline_public, "candidate": candidate_public}
    )


@router.post("/bundles/{version}/dry-run", response_model=DryRunPublic)
def forecast(
    version: Annotated[int, Path(ge=1)], body: DryRunIn, store: StoreDep, _: HqScope
) -> DryRunPublic:
    """Replay the sales in this database under bundle `version` and compare with `baseline`
    (default: the version before it, or this service's own program for version 1), both priced
    the same way: per rule and in total. Writes nothing."""
    baseline = body.baseline or (
        BaselineIn(kind="version", version=version - 1)
        if version > 1
        else BaselineIn(kind="active")
    )
    return _forecast(store, body.since, baseline, CandidateIn(kind="version", version=version))


@router.post("/dry-run", response_model=DryRunPublic)
def compare(body: CompareIn, store: StoreDep, _: HqScope) -> DryRunPublic:
    """Replay the sales in this database under `candidate` (a published version or an uploaded
    program) and compare with `baseline` (a published version, the program this service runs,
    or what the sales recorded); the answer names both. Writes nothing."""
    return _forecast(store, body.since, body.baseline, body.candidate)


class RuleResultPublic(BaseModel):
    rule_id: str
    baskets: int
    discount: int
    points_issued: int
    points_burned: int
    coupons_issued: int
    coupons_redeemed: int
    redemption_rate: float
    revenue: int


class ResultsPublic(BaseModel):
    since: datetime
    until: datetime
    sales: int
    revenue: int
    rules: list[RuleResultPublic]


@router.get("/results", response_model=ResultsPublic)
def results(
    store: StoreDep, _: HqScope, since: Annotated[str, Query(max_length=40)] = "30d"
) -> ResultsPublic:
    """What each rule did over the period, from the sales in this database."""
    start = _since(since, store)
    with store.uow() as uow:
        report = results_report(uow=uow, since=start, until=store.now())
    return ResultsPublic.model_validate(report.to_dict())
