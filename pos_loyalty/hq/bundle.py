"""A rule bundle: the program head office publishes, as signed data every store can check.

The bundle is plain JSON. Its canonical encoding (sorted keys, no spaces, UTF-8) is what is signed,
so a store re-encodes what it received and checks the signature over the same bytes head office
signed, whatever a proxy did to the whitespace. The program inside is normalised at publish time
(`RulesConfig` dumped as JSON), so it compiles at the store exactly as it did at head office.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from pos_loyalty.rules.compiled import CompiledRules, compile_rules
from pos_loyalty.rules.config import RulesConfig, RulesConfigError, format_rules_errors

BUNDLE_FORMAT = 1


class BundleRefused(Exception):
    """A bundle that must not be used; `reason` is a short code, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class Targets:
    """Which stores a bundle is for: every store when both lists are empty."""

    stores: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()

    @property
    def everyone(self) -> bool:
        return not self.stores and not self.regions

    def includes(self, *, store_id: str, region: str | None) -> bool:
        return (
            self.everyone
            or store_id in self.stores
            or (region is not None and region in self.regions)
        )

    def describe(self) -> str:
        if self.everyone:
            return "all stores"
        parts = [*(f"store {s}" for s in self.stores), *(f"region {r}" for r in self.regions)]
        return ", ".join(parts)

    def to_json(self) -> dict[str, list[str]]:
        return {"stores": sorted(self.stores), "regions": sorted(self.regions)}


@dataclass(frozen=True, slots=True)
class Program:
    """What a store runs: `[points]`, `[[tiers]]`, `[[rules]]` and the category names."""

    rules: RulesConfig
    category_names: dict[str, str] = field(default_factory=dict)

    def to_json(self, *, with_defaults: bool = False) -> dict[str, Any]:
        """Keys left at their default are left out (a personal rule refuses keys its trigger
        does not use), unless `with_defaults` (for saying what changed)."""
        body = self.rules.model_dump(mode="json", by_alias=True, exclude_defaults=not with_defaults)
        return {**body, "category_names": dict(sorted(self.category_names.items()))}

    def compile(self, *, tz: Any = None) -> CompiledRules:
        return compile_rules(self.rules, tz=tz)


def program_from_json(data: Any, *, source: str = "<bundle>") -> Program:
    """The program in a bundle, validated by the same code as `rules validate`."""
    if not isinstance(data, dict):
        raise RulesConfigError(source, ["(top level): the program must be a table"])
    names = data.get("category_names", {})
    if not isinstance(names, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in names.items()
    ):
        raise RulesConfigError(source, ["category_names: must map category codes to names"])
    try:
        rules = RulesConfig.from_dict(data)
    except ValidationError as exc:
        raise RulesConfigError(source, format_rules_errors(exc, data)) from None
    return Program(rules=rules, category_names=dict(names))


@dataclass(frozen=True, slots=True)
class Bundle:
    """One published version of the program and where and when it applies."""

    version: int
    effective_from: datetime
    published_at: datetime
    targets: Targets
    note: str
    program: Program

    def to_json(self) -> dict[str, Any]:
        return {
            "format": BUNDLE_FORMAT,
            "version": self.version,
            "effective_from": _instant(self.effective_from),
            "published_at": _instant(self.published_at),
            "targets": self.targets.to_json(),
            "note": self.note,
            "program": self.program.to_json(),
        }


def _instant(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("bundle moments must be aware datetimes")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_bytes(body: dict[str, Any]) -> bytes:
    """The exact bytes that are signed: sorted keys, no whitespace, UTF-8, no NaN."""
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _field(body: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise BundleRefused("malformed", f"bundle field {key!r} is missing or of the wrong type")
    return value


def _moment(body: dict[str, Any], key: str) -> datetime:
    text = _field(body, key, str)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BundleRefused("malformed", f"bundle field {key!r} is not an ISO moment") from None
    if moment.tzinfo is None:
        raise BundleRefused("malformed", f"bundle field {key!r} has no time zone")
    return moment.astimezone(UTC)


def bundle_from_json(body: Any) -> Bundle:
    """Parse a (signature-checked) bundle body; a bad shape or an invalid rule is refused."""
    if not isinstance(body, dict):
        raise BundleRefused("malformed", "the bundle is not a JSON object")
    if body.get("format") != BUNDLE_FORMAT:
        raise BundleRefused("malformed", f"unknown bundle format {body.get('format')!r}")
    version = _field(body, "version", int)
    if version < 1:
        raise BundleRefused("malformed", "bundle version must be 1 or more")
    targets = _field(body, "targets", dict)
    stores, regions = targets.get("stores", []), targets.get("regions", [])
    if not all(
        isinstance(x, list) and all(isinstance(i, str) for i in x) for x in (stores, regions)
    ):
        raise BundleRefused("malformed", "bundle targets must be lists of store ids and regions")
    try:
        program = program_from_json(_field(body, "program", dict), source=f"bundle v{version}")
    except RulesConfigError as exc:
        raise BundleRefused("invalid_rule", "; ".join(exc.problems)) from None
    return Bundle(
        version=version,
        effective_from=_moment(body, "effective_from"),
        published_at=_moment(body, "published_at"),
        targets=Targets(tuple(stores), tuple(regions)),
        note=_field(body, "note", str),
        program=program,
    )
