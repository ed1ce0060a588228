"""The store's configuration: `config.toml` parsed into validated pydantic models.

One place reads the file and the `POS_LOYALTY_*` environment overrides; everything else receives a
`Settings` object. A bad file stops start-up with messages that name the file, the key and what was
expected, so a store owner can fix it without reading code.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import tzinfo
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from babel import Locale, UnknownLocaleError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pos_loyalty.rules.config import (
    RULES_SECTION_KEYS,
    PointsConfig,
    RefundsConfig,
    Rule,
    TierConfig,
    check_rules_section,
    format_rules_error,
)
from pos_loyalty.rules.eligibility import NoRewardsConfig, PriceFloor
from pos_loyalty.segments.models import SegmentsConfig

CONFIG_ENV = "POS_LOYALTY_CONFIG"
DEFAULT_CONFIG_PATH = Path("config.toml")

# Environment variables that override one key of the file, for deployment.
ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "POS_LOYALTY_DATABASE_URL": ("store", "database_url"),
    "POS_LOYALTY_SECRET_FILE": ("store", "secret_file"),
    "POS_LOYALTY_STORE_ID": ("store", "id"),
}


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists each one as 'key: what was expected'."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: invalid configuration\n{lines}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(_Strict):
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "RUB"
    locale: str = "ru_RU"
    region: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "RU"
    timezone: str = "Europe/Moscow"
    database_url: str = "sqlite:///./pos_loyalty.db"
    secret_file: str = "./secret.key"
    footer: Annotated[str, Field(max_length=500)] = ""
    # What a receipt calls a category a coupon is for (`desserts = "Десерты"`); else its code.
    category_names: dict[
        Annotated[str, Field(min_length=1, max_length=64)],
        Annotated[str, Field(min_length=1, max_length=100)],
    ] = {}

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        try:
            Locale.parse(value)
        except (ValueError, UnknownLocaleError) as exc:
            raise ValueError(f"unknown locale {value!r} (expected e.g. 'ru_RU')") from exc
        return value

    @field_validator("region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {value!r} (expected e.g. 'RU')")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r} (expected e.g. 'Europe/Moscow')"
            ) from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not re.match(r"^(sqlite|postgresql(\+psycopg)?)://", value):
            raise ValueError(
                "expected 'sqlite:///path.db' or 'postgresql+psycopg://user@host/db', "
                f"got {value.split('://')[0]!r}"
            )
        return value

    @property
    def tz(self) -> tzinfo:
        return ZoneInfo(self.timezone)


class PrivacyConfig(_Strict):
    # Off by default: phones are found by a keyed hash and shown masked; the plain number is kept
    # only when the store needs it (e.g. to send SMS) and says so here.
    store_plain_phone: bool = False


class CardsConfig(_Strict):
    prefix: Annotated[str, Field(pattern=r"^[0-9]{1,10}$")] = "2775"
    length: Annotated[int, Field(ge=12, le=19)] = 16


class IdentityConfig(_Strict):
    # 0 = the loyalty QR is static (printed on a card); otherwise the app rotates issued_at and a
    # QR older than this many seconds is refused, so screenshots stop working.
    qr_max_age_s: Annotated[int, Field(ge=0, le=10 * 365 * 86400)] = 0


class ApiConfig(_Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080


class CameraConfig(_Strict):
    source: str | int
    decoder: Literal["zxing", "zbar", "opencv"] = "zxing"
    loop: bool = False
    debounce_s: Annotated[float, Field(ge=0, le=60)] = 3.0


class ScannerConfig(_Strict):
    port: str
    baudrate: Annotated[int, Field(ge=300, le=921600)] = 9600
    framing: Literal["cr", "lf", "crlf", "tab", "stx-etx", "stx-etx-lrc"] = "crlf"
    aim: bool = False
    # Text the scanner is programmed to add before / after each scan: stripped; a scan without it
    # is dropped as garbage.
    prefix: Annotated[str, Field(max_length=16)] = ""
    suffix: Annotated[str, Field(max_length=16)] = ""


class PrinterConfig(_Strict):
    connection: str
    profile: str = "TM-T88V"
    width_mm: Literal[58, 80] = 80
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0  # connecting, each status answer
    # A job the printer cannot take waits, retrying after 0.5, 1, 2 … s up to `retry_max_s`.
    retry_initial_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    retry_max_s: Annotated[float, Field(gt=0, le=600)] = 10.0


class LaneConfig(_Strict):
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    customer_ttl_s: Annotated[int, Field(ge=1, le=3600)] = 120
    camera: CameraConfig | None = None
    scanner: ScannerConfig | None = None
    printer: PrinterConfig | None = None


class Settings(_Strict):
    """The whole validated configuration; `source` says which file it came from."""

    source: str = "<defaults>"
    store: StoreConfig
    privacy: PrivacyConfig = PrivacyConfig()
    cards: CardsConfig = CardsConfig()
    identity: IdentityConfig = IdentityConfig()
    api: ApiConfig = ApiConfig()
    lanes: list[LaneConfig] = []
    points: PointsConfig = PointsConfig()
    tiers: list[TierConfig] = []
    rules: list[Rule] = []
    no_rewards: NoRewardsConfig = NoRewardsConfig()  # goods no reward may touch (tobacco)
    price_floors: list[PriceFloor] = []  # minimum unit prices rewards may not go below
    refunds: RefundsConfig = RefundsConfig()  # spent points and coupons a refund takes back
    segments: SegmentsConfig = SegmentsConfig()  # RFM thresholds and who may be contacted

    # Duplicate rule ids, tiers out of order …: refused with the rule id and key.
    _check_rules = model_validator(mode="after")(check_rules_section)

    @field_validator("lanes")
    @classmethod
    def _unique_lanes(cls, lanes: list[LaneConfig]) -> list[LaneConfig]:
        seen: set[str] = set()
        for lane in lanes:
            if lane.id in seen:
                raise ValueError(f"lane id {lane.id!r} is used twice")
            seen.add(lane.id)
        return lanes

    @property
    def base_dir(self) -> Path:
        """Relative paths in the file (database, secret) are relative to the file's folder."""
        in_memory = self.source.startswith("<")
        return Path.cwd() if in_memory else Path(self.source).resolve().parent

    def resolve_path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    @property
    def database_url(self) -> str:
        """The database URL with a relative SQLite path made absolute against the config folder."""
        url = self.store.database_url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.resolve_path(url[len(prefix) :]))
        return url

    @property
    def secret_path(self) -> Path:
        return self.resolve_path(self.store.secret_file)


def _describe(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    """`rules[2] (id "gold-10").percent` from a pydantic error location."""
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and 0 <= item < len(node):
                node = node[item]
                if isinstance(node, dict) and isinstance(node.get("id"), str):
                    label += f' (id "{node["id"]}")'
            else:
                node = None
            parts.append(label)
        else:
            if item in {"function-after", "function-before", "function-wrap"}:
                continue
            if isinstance(node, dict) and node.get("kind") == item:
                continue  # a rule's discriminated-union tag, not a key in the file
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def format_validation_error(exc: ValidationError, data: dict[str, Any]) -> list[str]:
    """One readable line per problem: the key, what was expected and what was found."""
    lines = []
    for err in exc.errors(include_url=False):
        if err["loc"] and err["loc"][0] in RULES_SECTION_KEYS:
            lines.append(format_rules_error(err, data))  # the same words as `rules validate`
            continue
        key = _describe(tuple(err["loc"]), data)
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against config.toml in the repository)"
        elif err["type"] == "missing":
            message = "required key is missing"
        elif "input" in err and err["type"] not in {"value_error", "assertion_error"}:
            message += f", got {err['input']!r}"
        lines.append(f"{key}: {message}")
    return lines


def _apply_env_overrides(data: dict[str, Any], environ: dict[str, str]) -> dict[str, str]:
    """Set each overridden key (copying its section, never the caller's dict); returns which
    variable set which key, so an error can name the variable rather than the file."""
    applied: dict[str, str] = {}
    for var, (section, key) in ENV_OVERRIDES.items():
        if not environ.get(var):
            continue
        table = data.get(section, {})
        if isinstance(table, dict):  # otherwise validation says the section is not a table
            data[section] = {**table, key: environ[var]}
            applied[f"{section}.{key}"] = var
    return applied


def _name_variables(problems: list[str], applied: dict[str, str]) -> list[str]:
    """`store.database_url (from POS_LOYALTY_DATABASE_URL): …` for a value the environment set."""
    named = []
    for problem in problems:
        key, sep, rest = problem.partition(": ")
        named.append(f"{key} (from {applied[key]}){sep}{rest}" if key in applied else problem)
    return named


def settings_from_dict(
    data: dict[str, Any], *, source: str = "<dict>", environ: dict[str, str] | None = None
) -> Settings:
    """Validate an already-parsed configuration (tests and tools build one in memory)."""
    data = {k: v for k, v in data.items()}
    applied = _apply_env_overrides(data, dict(os.environ) if environ is None else environ)
    try:
        return Settings.model_validate({**data, "source": source})
    except ValidationError as exc:
        problems = format_validation_error(exc, data)
        raise ConfigError(source, _name_variables(problems, applied)) from None


def load_settings(
    path: str | Path | None = None, *, environ: dict[str, str] | None = None
) -> Settings:
    """Read and validate the config file (`POS_LOYALTY_CONFIG` names it when `path` is None)."""
    env = dict(os.environ) if environ is None else environ
    config_path = Path(path or env.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)
    source = str(config_path)
    try:
        raw = config_path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(source, ["file not found"]) from None
    except OSError as exc:
        raise ConfigError(source, [f"cannot read the file: {exc.strerror}"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(source, ["the file is not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from None
    return settings_from_dict(data, source=source, environ=env)
