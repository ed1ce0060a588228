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
from pydantic import Field, ValidationError, field_validator, model_validator

from pos_loyalty.hq.signing import parse_public_key
from pos_loyalty.rules.config import (
    RULES_SECTION_KEYS,
    PointsConfig,
    RefundsConfig,
    Rule,
    TierConfig,
    check_rules_section,
    describe_location,
    format_rules_error,
)
from pos_loyalty.rules.eligibility import NoRewardsConfig, PriceFloor
from pos_loyalty.segments.models import SegmentsConfig
from pos_loyalty.strict import StrictModel

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


class StoreConfig(StrictModel):
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "RUB"
    locale: str = "ru_RU"
    region: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "RU"
    timezone: str = "Europe/Moscow"
    database_url: str = "sqlite:///./pos_loyalty.db"
    secret_file: str = "./secret.key"
    footer: Annotated[str, Field(max_length=500)] = ""
    # Where a customer joins the program: the customer display's idle screen shows it as a QR.
    enrol_url: Annotated[str, Field(max_length=500, pattern=r"^(https?://\S+)?$")] = ""
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


class PrivacyConfig(StrictModel):
    # Off by default: phones are found by a keyed hash and shown masked; the plain number is kept
    # only when the store needs it (e.g. to send SMS) and says so here.
    store_plain_phone: bool = False


class CardsConfig(StrictModel):
    prefix: Annotated[str, Field(pattern=r"^[0-9]{1,10}$")] = "2775"
    length: Annotated[int, Field(ge=12, le=19)] = 16


class IdentityConfig(StrictModel):
    # 0 = the loyalty QR is static (printed on a card); otherwise the app rotates issued_at and a
    # QR older than this many seconds is refused, so screenshots stop working.
    qr_max_age_s: Annotated[int, Field(ge=0, le=10 * 365 * 86400)] = 0
    # `POST /v1/identify` answers 429 (Retry-After) once a key, or a lane, has had this many
    # failed identifications (unknown or invalid phone, card, QR) within `failure_window_s`:
    # a cashier's typos pass, a script walking through phone numbers does not.
    failures_per_key: Annotated[int, Field(ge=1, le=100_000)] = 20
    failures_per_lane: Annotated[int, Field(ge=1, le=100_000)] = 10
    failure_window_s: Annotated[int, Field(ge=1, le=86_400)] = 300


class StorageConfig(StrictModel):
    # Below this much free space on the SQLite database's disk, new work is refused (503) and
    # the WAL is checkpointed and cut; service resumes by itself when space returns.
    min_free_mb: Annotated[float, Field(ge=0, le=1_000_000)] = 64
    # Kept allocated next to the SQLite database and given up when the disk fills, so the WAL
    # can still be checkpointed and cut (0: none).
    reserve_mb: Annotated[float, Field(ge=0, le=10_000)] = 8


class ReadinessConfig(StrictModel):
    # A receipt queued longer than this makes /readyz report the print queue as stuck.
    print_stuck_after_s: Annotated[int, Field(ge=1, le=86400)] = 300


class ApiConfig(StrictModel):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    # Request bodies larger than this are refused with 413 before they are read whole; baskets
    # (evaluate, transactions and refunds: up to 1000 lines) may be larger than the rest.
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 2**20)] = 64 * 2**10
    max_basket_body_bytes: Annotated[int, Field(ge=1024, le=64 * 2**20)] = 2**20
    # /docs, /redoc, /openapi.json and /metrics: "loopback" (only from this machine, no key),
    # "key" (any valid API key, from anywhere) or "open" (anyone who can reach the port).
    open_docs: Literal["loopback", "key", "open"] = "loopback"
    # A revoked key is refused by a running server within this many seconds (0: every request
    # looks the key up); a revocation made in the server's own process takes effect at once.
    key_cache_s: Annotated[float, Field(ge=0, le=300)] = 2.0


class CameraConfig(StrictModel):
    source: str | int
    decoder: Literal["zxing", "zbar", "opencv"] = "zxing"
    loop: bool = False
    debounce_s: Annotated[float, Field(ge=0, le=60)] = 3.0


class ScannerConfig(StrictModel):
    port: str
    baudrate: Annotated[int, Field(ge=300, le=921600)] = 9600
    framing: Literal["cr", "lf", "crlf", "tab", "stx-etx", "stx-etx-lrc"] = "crlf"
    aim: bool = False
    # Text the scanner is programmed to add before / after each scan: stripped; a scan without it
    # is dropped as garbage.
    prefix: Annotated[str, Field(max_length=16)] = ""
    suffix: Annotated[str, Field(max_length=16)] = ""
    # The same code read again within this many seconds is one scan (as the camera's debounce_s).
    debounce_s: Annotated[float, Field(ge=0, le=60)] = 1.0


class PrinterConfig(StrictModel):
    connection: str
    profile: str = "TM-T88V"
    width_mm: Literal[58, 80] = 80
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0  # connecting, each status answer
    # A job the printer cannot take waits, retrying after 0.5, 1, 2 … s up to `retry_max_s`.
    retry_initial_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    retry_max_s: Annotated[float, Field(gt=0, le=600)] = 10.0


class LaneConfig(StrictModel):
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    customer_ttl_s: Annotated[int, Field(ge=1, le=3600)] = 120
    camera: CameraConfig | None = None
    scanner: ScannerConfig | None = None
    printer: PrinterConfig | None = None


class HqConfig(StrictModel):
    """`[hq]`: this store takes its program from head office instead of this file's rules."""

    url: Annotated[str, Field(pattern=r"^https?://")]
    public_key: str  # head office's, as `pos-loyalty hq keys create` printed it
    api_key: Annotated[str, Field(min_length=8)]  # this store's key of scope `store`
    region: Annotated[str, Field(max_length=64)] = ""  # as head office's registry names it
    interval_s: Annotated[float, Field(gt=0, le=86400)] = 60.0
    max_backoff_s: Annotated[float, Field(gt=0, le=86400)] = 900.0
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0

    @field_validator("public_key")
    @classmethod
    def _ed25519_key(cls, value: str) -> str:
        parse_public_key(value)
        return value


class HeadOfficeConfig(StrictModel):
    """`[head_office]`: this process is head office (`pos-loyalty hq serve`)."""

    signing_key: str = "./hq-signing.key"  # Ed25519 private key, mode 0600


class Settings(StrictModel):
    """The whole validated configuration; `source` says which file it came from."""

    source: str = "<defaults>"
    store: StoreConfig
    privacy: PrivacyConfig = PrivacyConfig()
    cards: CardsConfig = CardsConfig()
    identity: IdentityConfig = IdentityConfig()
    api: ApiConfig = ApiConfig()
    storage: StorageConfig = StorageConfig()
    readiness: ReadinessConfig = ReadinessConfig()
    lanes: list[LaneConfig] = []
    points: PointsConfig = PointsConfig()
    tiers: list[TierConfig] = []
    rules: list[Rule] = []
    no_rewards: NoRewardsConfig = NoRewardsConfig()  # goods no reward may touch (tobacco)
    price_floors: list[PriceFloor] = []  # minimum unit prices rewards may not go below
    refunds: RefundsConfig = RefundsConfig()  # spent points and coupons a refund takes back
    segments: SegmentsConfig = SegmentsConfig()  # RFM thresholds and who may be contacted
    hq: HqConfig | None = None  # pull the program from head office
    head_office: HeadOfficeConfig | None = None  # this process publishes bundles

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


def format_validation_error(exc: ValidationError, data: dict[str, Any]) -> list[str]:
    """One readable line per problem: the key, what was expected and what was found."""
    lines = []
    for err in exc.errors(include_url=False):
        if err["loc"] and err["loc"][0] in RULES_SECTION_KEYS:
            lines.append(format_rules_error(err, data))  # the same words as `rules validate`
            continue
        key = describe_location(tuple(err["loc"]), data)
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
