"""The public rule format (`[points]`, `[[tiers]]`, `[[rules]]`) as strict pydantic models.

These names are what head office writes in `config.toml` and in signed bundles, so they are kept
exactly. Validation refuses anything doubtful (unknown keys or kinds, percentages outside 0–100,
negative amounts, duplicate ids, tiers out of order) with messages that name the rule id and key.
Adding a rule kind means: a model below with `kind: Literal[...]`, a member in `Rule`, and a
branch in `compiled.py`/`engine.py`.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from pos_loyalty.rules.budget import Budget
from pos_loyalty.rules.eligibility import NoRewardsConfig, PriceFloor
from pos_loyalty.rules.promo import PromoCodes
from pos_loyalty.strict import StrictModel

MAX_AMOUNT = 10**12
"""Amounts beyond 10^12 minor units are refused: no store sells that, and it bounds arithmetic."""

RULE_KINDS = ("discount", "points", "threshold", "stamps", "personal", "referral")


def _check_percent(value: Decimal) -> Decimal:
    if not value.is_finite() or value < 0 or value > 100:
        raise ValueError("must be between 0 and 100")
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError("may have at most 2 decimal places")
    return value


Percent = Annotated[Decimal, AfterValidator(_check_percent)]
Amount = Annotated[int, Field(ge=0, le=MAX_AMOUNT)]
PositiveInt = Annotated[int, Field(ge=1, le=MAX_AMOUNT)]
Name = Annotated[str, Field(min_length=1, max_length=100)]
# A coupon's stack group when it is presented: "coupon" (the default: of several coupons in one
# basket only the one giving most applies), another group's name to compete with those rules,
# or "" to stack with every discount.
CouponStackGroup = Annotated[str, Field(max_length=100)]
Label = Annotated[str, Field(min_length=1, max_length=120)]
RuleId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9-]+$")]
_HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


class PointsConfig(StrictModel):
    """`[points]`: what a point is worth and how much of a bill points may pay."""

    point_value_minor: PositiveInt = 100
    redeem_max_percent: Annotated[int, Field(ge=0, le=100)] = 30
    expire_days: Annotated[int, Field(ge=0, le=36500)] = 365
    # Days earned points wait before they can be spent (a return window): shown as pending.
    pending_days: Annotated[int, Field(ge=0, le=365)] = 0


class RefundsConfig(StrictModel):
    """`[refunds]`: what a refund does when the points or a coupon it takes back are spent.

    `points_shortfall`: points to claw back beyond the balance are `"deduct_money"` (their value is
    kept from the money refunded; what money cannot cover stays a debt) or `"debt"` (recorded,
    shown, and burning is blocked until later purchases pay it back). `used_coupon`: a coupon the
    sale earned, already spent, whose condition the refund breaks is `"keep"` (the store absorbs
    it) or `"deduct_money"` (the discount it gave is kept from the money refunded)."""

    points_shortfall: Literal["deduct_money", "debt"] = "debt"
    used_coupon: Literal["keep", "deduct_money"] = "keep"


class TierConfig(StrictModel):
    """`[[tiers]]`: the highest tier whose `min_spend` the lifetime paid spend reached applies."""

    name: Name
    min_spend: Amount


class When(StrictModel):
    """Conditions that must all hold. Line filters (categories, skus, exclude_skus) also choose
    the lines a rule works on; an empty list means no restriction."""

    tiers: list[Name] = []
    segments: list[Name] = []
    stores: list[Name] = []
    categories: list[Name] = []
    skus: list[Name] = []
    exclude_skus: list[Name] = []
    min_subtotal: Amount = 0
    first_purchase: bool | None = None


class Active(StrictModel):
    """When a rule runs, in the store's local time: dates inclusive, weekdays 1=Mon..7=Sun,
    hours `HH:MM-HH:MM` (end exclusive; `22:00-02:00` crosses midnight and belongs to the day
    it starts on, for both the weekday and the date checks)."""

    from_: date | None = Field(default=None, alias="from")
    until: date | None = None
    weekdays: list[Annotated[int, Field(ge=1, le=7)]] | None = None
    hours: str | None = None

    @field_validator("weekdays")
    @classmethod
    def _some_weekday(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and not value:
            raise ValueError("must list at least one weekday (1=Mon..7=Sun) or be left out")
        return value

    @field_validator("hours")
    @classmethod
    def _hours_format(cls, value: str | None) -> str | None:
        if value is None:
            return value
        match = _HOURS.match(value)
        if not match:
            raise ValueError('must look like "08:00-11:00"')
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
            raise ValueError('must hold times from 00:00 to 24:00, like "08:00-11:00"')
        if (h1, m1) == (h2, m2):
            raise ValueError("start and end are equal: the window is empty")
        return value

    @model_validator(mode="after")
    def _dates_in_order(self) -> Active:
        if self.from_ and self.until and self.from_ > self.until:
            raise ValueError(f"'from' ({self.from_}) is after 'until' ({self.until})")
        return self

    def minutes(self) -> tuple[int, int] | None:
        """The hours window as (start, end) minutes after midnight."""
        if self.hours is None:
            return None
        match = _HOURS.match(self.hours)
        assert match
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        return h1 * 60 + m1, h2 * 60 + m2


class _RuleBase(StrictModel):
    id: RuleId
    label: Label
    priority: Annotated[int, Field(ge=-1_000_000, le=1_000_000)] = 0
    stack_group: Name | None = None
    when: When = When()
    active: Active = Active()


class _DiscountLike(_RuleBase):
    exclusive: bool = False
    max_discount: Amount = 0
    budget: Budget | None = None  # caps per day / week / campaign (budget.py)


class DiscountRule(_DiscountLike):
    """Money off: `percent` or `amount_off` of the basket (spread over the matching lines), of
    each matching line (`amount_off` per unit), or of one unit of the cheapest matching line."""

    kind: Literal["discount"]
    percent: Percent | None = None
    amount_off: Amount | None = None
    applies_to: Literal["basket", "lines", "cheapest"] = "basket"
    # `trigger = "code"`: applies only when the basket carries one of `promo.codes` (promo.py)
    trigger: Literal["code"] | None = None
    promo: PromoCodes | None = None
    # With `applies_to = "cheapest"`: for every `buy` whole units of the matching goods in the
    # basket, the `get` cheapest units get `percent` (100: free) or `amount_off` each — "3 за 2"
    # is buy = 3, get = 1, percent = 100. Without `buy`, one unit of the cheapest line.
    # `get` left out is 1; None (not 1) by default so a head-office bundle, which writes every
    # field, reads back as valid (`get = null` without `buy`).
    buy: Annotated[int, Field(ge=2, le=1000)] | None = None
    get: Annotated[int, Field(ge=1, le=999)] | None = None

    @model_validator(mode="after")
    def _one_value(self) -> DiscountRule:
        if (self.percent is None) == (self.amount_off is None):
            raise ValueError("give exactly one of 'percent' or 'amount_off'")
        if self.buy is not None and self.applies_to != "cheapest":
            raise ValueError("'buy' goes with applies_to = \"cheapest\"")
        if self.buy is not None and (self.get or 1) >= self.buy:
            raise ValueError(f"'get' ({self.get}) must be less than 'buy' ({self.buy})")
        if self.get is not None and self.buy is None:
            raise ValueError("'get' goes with 'buy'")
        if (self.trigger == "code") != (self.promo is not None):
            raise ValueError("trigger = \"code\" and 'promo' (its codes) go together")
        return self


class PointsRule(_RuleBase):
    """Bonus points on what is paid in money: `earn_percent` % of it in points (floor), or
    `points` for every whole `earn_per`; `multipliers` weight categories (coffee = 2)."""

    kind: Literal["points"]
    earn_percent: Percent | None = None
    earn_per: PositiveInt | None = None
    points: PositiveInt | None = None
    multipliers: dict[Name, Annotated[Decimal, Field(ge=0, le=100)]] = {}
    budget: Budget | None = None  # caps on points given per day / week / campaign (budget.py)

    @model_validator(mode="after")
    def _one_way(self) -> PointsRule:
        if (self.earn_percent is None) == (self.earn_per is None):
            raise ValueError("give exactly one of 'earn_percent' or 'earn_per'")
        if self.points is not None and self.earn_per is None:
            raise ValueError("'points' goes with 'earn_per' (points for every earn_per paid)")
        return self

    @property
    def points_per_step(self) -> int:
        return self.points if self.points is not None else 1


class CouponReward(StrictModel):
    """A coupon for the next purchase, issued when the sale is committed."""

    amount_off: Amount | None = None
    percent_off: Annotated[int, Field(ge=1, le=100)] | None = None
    valid_days: Annotated[int, Field(ge=1, le=3660)] = 14
    min_subtotal: Amount = 0
    label: Label | None = None
    # true: a bearer coupon anyone may present (a gift to pass on); by default only the
    # customer who earned it may (a sale without a customer always issues a bearer coupon)
    bearer: bool = False
    stack_group: CouponStackGroup = "coupon"

    @model_validator(mode="after")
    def _one_value(self) -> CouponReward:
        if (self.amount_off is None) == (self.percent_off is None):
            raise ValueError("give exactly one of 'amount_off' or 'percent_off'")
        return self


class ThresholdReward(StrictModel):
    coupon: CouponReward | None = None
    amount_off: PositiveInt | None = None
    points: PositiveInt | None = None

    @model_validator(mode="after")
    def _one_reward(self) -> ThresholdReward:
        given = [k for k in ("coupon", "amount_off", "points") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'coupon', 'amount_off' or 'points'")
        return self


class ThresholdRule(_DiscountLike):
    """Spend at least `min_subtotal` (after item-level discounts, on the matching lines) and get
    the reward; short by at most `hint_within` → an upsell hint for the cashier."""

    kind: Literal["threshold"]
    min_subtotal: PositiveInt
    reward: ThresholdReward
    hint_within: Amount = 0


class StampsRule(_DiscountLike):
    """Every `every`-th qualifying unit is free; the counter lives per customer per rule."""

    kind: Literal["stamps"]
    every: Annotated[int, Field(ge=2, le=1000)]


PersonalTrigger = Literal["favourite", "replenish", "cross_sell", "winback", "birthday"]

# Keys that only some triggers use, so a key given to the wrong trigger is refused, not ignored.
_TRIGGER_KEYS: dict[str, frozenset[str]] = {
    "favourite": frozenset({"lookback_days", "by", "min_purchases"}),
    "replenish": frozenset(
        {
            "lookback_days",
            "min_purchases",
            "lead_days",
            "lead_percent",
            "min_interval_days",
            "tolerance_percent",
        }
    ),
    "cross_sell": frozenset({"lookback_days", "if_bought", "offer", "offer_by"}),
    "winback": frozenset({"inactive_days", "offer", "offer_by"}),
    "birthday": frozenset({"days_before", "days_after", "offer", "offer_by"}),
}
_ALL_TRIGGER_KEYS = frozenset[str]().union(*_TRIGGER_KEYS.values())
DEFAULT_LOOKBACK_DAYS = {"favourite": 90, "replenish": 365, "cross_sell": 30}


class PersonalRule(_RuleBase):
    """A coupon chosen from the customer's purchase history, issued when the sale is committed.

    `trigger` says why: `favourite` (the most bought sku or category → `percent_off` on it),
    `replenish` (bought at a regular interval → valid from a little before the next purchase),
    `cross_sell` (bought `if_bought` → a coupon on `offer`), `winback` (back after
    `inactive_days`), `birthday` (within `days_before`/`days_after`). `when` works as for every
    rule; its `skus`/`categories`/`exclude_skus` narrow the goods `favourite` and `replenish`
    may pick. At most `max_per_receipt` personal coupons per receipt (the strictest value among
    the rules that fired applies), highest value first; one active coupon per rule per customer.
    """

    kind: Literal["personal"]
    trigger: PersonalTrigger
    percent_off: Annotated[int, Field(ge=1, le=100)] | None = None
    amount_off: PositiveInt | None = None
    min_subtotal: Amount = 0  # the coupon's own condition when it is presented
    valid_days: Annotated[int, Field(ge=1, le=3660)] = 14
    max_per_receipt: Annotated[int, Field(ge=1, le=20)] = 2
    cooldown_days: Annotated[int, Field(ge=0, le=3660)] = 0  # no new coupon this soon after one
    # the issued coupon's stack group when it is presented (`stack_group` above is the rule's
    # own, among personal offers)
    coupon_stack_group: CouponStackGroup = "coupon"
    # favourite, replenish, cross_sell
    lookback_days: Annotated[int, Field(ge=1, le=3660)] | None = None
    min_purchases: Annotated[int, Field(ge=1, le=1000)] = 3  # visits (days) that count
    by: Literal["sku", "category"] = "category"
    # replenish: valid from `lead_days` (or `lead_percent` % of the interval, default 25 %)
    # before the expected purchase; the interval is the median gap, regular when the median
    # absolute deviation of the gaps is within `tolerance_percent` % of it.
    lead_days: Annotated[int, Field(ge=0, le=3660)] | None = None
    lead_percent: Annotated[int, Field(ge=0, le=100)] | None = None
    min_interval_days: Annotated[int, Field(ge=1, le=3660)] = 7
    tolerance_percent: Annotated[int, Field(ge=0, le=1000)] = 50
    # cross_sell (and the coupon's goods for winback/birthday): skus or categories
    if_bought: list[Name] = []
    offer: list[Name] = []
    offer_by: Literal["sku", "category"] = "category"
    # winback
    inactive_days: Annotated[int, Field(ge=1, le=3660)] = 90
    # birthday
    days_before: Annotated[int, Field(ge=0, le=60)] = 3
    days_after: Annotated[int, Field(ge=0, le=60)] = 3

    @model_validator(mode="after")
    def _consistent(self) -> PersonalRule:
        if (self.percent_off is None) == (self.amount_off is None):
            raise ValueError("give exactly one of 'percent_off' or 'amount_off'")
        foreign = sorted((self.model_fields_set & _ALL_TRIGGER_KEYS) - _TRIGGER_KEYS[self.trigger])
        if foreign:
            raise ValueError(
                f"trigger '{self.trigger}' does not use {', '.join(repr(k) for k in foreign)}"
            )
        if self.trigger == "favourite" and self.amount_off is not None:
            raise ValueError("trigger 'favourite' gives 'percent_off' on the favourite goods")
        if self.trigger == "cross_sell" and not (self.if_bought and self.offer):
            raise ValueError("trigger 'cross_sell' needs both 'if_bought' and 'offer'")
        if self.lead_days is not None and self.lead_percent is not None:
            raise ValueError("give at most one of 'lead_days' or 'lead_percent'")
        return self

    @property
    def lookback(self) -> int:
        """Days of history the trigger looks at (its `lookback_days` or the trigger's default)."""
        if self.lookback_days is not None:
            return self.lookback_days
        return DEFAULT_LOOKBACK_DAYS.get(self.trigger, 0)


class ReferralRule(_RuleBase):
    """A customer's referral code, given at enrolment, brings a friend: after the friend's first
    sale (paid at least `min_subtotal`) the referrer gets `referrer_points` and the friend
    `referee_points`, once per new customer (sales/referrals.py). Not part of basket pricing."""

    kind: Literal["referral"]
    referrer_points: Amount = 0
    referee_points: Amount = 0
    min_subtotal: Amount = 0

    @model_validator(mode="after")
    def _some_reward(self) -> ReferralRule:
        if not (self.referrer_points or self.referee_points):
            raise ValueError("give 'referrer_points', 'referee_points' or both")
        return self


Rule = Annotated[
    DiscountRule | PointsRule | ThresholdRule | StampsRule | PersonalRule | ReferralRule,
    Field(discriminator="kind"),
]
"""One `[[rules]]` entry; `kind` picks the model."""

AnyRule = DiscountRule | PointsRule | ThresholdRule | StampsRule | PersonalRule | ReferralRule


def stacking_family(rule: AnyRule) -> str:
    """Rules compete in a stack group only with rules of the same family (money, points, reward)."""
    if isinstance(rule, PointsRule):
        return "points"
    if isinstance(rule, PersonalRule):
        return "personal"
    if isinstance(rule, ThresholdRule) and rule.reward.amount_off is None:
        return "reward"
    return "money"


def _error(loc: tuple[str | int, ...], message: str, value: Any) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("rules_config", message), loc=loc, input=value)


def rules_config_errors(
    points: PointsConfig, tiers: list[TierConfig], rules: list[AnyRule]
) -> list[InitErrorDetails]:
    """Problems that need the whole section: duplicate ids, tier order, unknown tier names,
    stack groups that mix families. Locations are relative to the section's parent."""
    del points  # nothing cross-field about it yet; kept so the signature covers the section
    errors: list[InitErrorDetails] = []
    seen_names: dict[str, int] = {}
    previous: TierConfig | None = None
    for index, tier in enumerate(tiers):
        if tier.name in seen_names:
            errors.append(
                _error(
                    ("tiers", index, "name"),
                    f'tier name "{tier.name}" is already used by tiers[{seen_names[tier.name]}]',
                    tier.name,
                )
            )
        seen_names.setdefault(tier.name, index)
        if previous is not None and tier.min_spend <= previous.min_spend:
            errors.append(
                _error(
                    ("tiers", index, "min_spend"),
                    "tiers must be listed by strictly increasing min_spend: "
                    f'{tier.min_spend} is not above "{previous.name}" ({previous.min_spend})',
                    tier.min_spend,
                )
            )
        previous = tier
    seen_ids: dict[str, int] = {}
    group_family: dict[str, tuple[str, str]] = {}
    for index, rule in enumerate(rules):
        if rule.id in seen_ids:
            errors.append(
                _error(
                    ("rules", index, "id"),
                    f'id "{rule.id}" is already used by rules[{seen_ids[rule.id]}]',
                    rule.id,
                )
            )
        seen_ids.setdefault(rule.id, index)
        for tier_name in rule.when.tiers:
            if tier_name not in seen_names:
                known = ", ".join(t.name for t in tiers) or "none defined"
                errors.append(
                    _error(
                        ("rules", index, "when", "tiers"),
                        f'unknown tier "{tier_name}" (tiers: {known})',
                        tier_name,
                    )
                )
        if rule.stack_group is not None:
            family = stacking_family(rule)
            first = group_family.setdefault(rule.stack_group, (family, rule.id))
            if first[0] != family:
                errors.append(
                    _error(
                        ("rules", index, "stack_group"),
                        f'group "{rule.stack_group}" mixes {family} rules with {first[0]} rules '
                        f'(like "{first[1]}"); use another group name',
                        rule.stack_group,
                    )
                )
    return errors


def check_rules_section(section: Any) -> Any:
    """`model_validator(mode="after")` body for any model with `points`, `tiers`, `rules` fields.

    Raises a pydantic ValidationError whose locations (`rules.3.id`) nest under the model, so a
    settings model that embeds the section reports `rules[3] (id "gold-10").id: ...`.
    """
    errors = rules_config_errors(section.points, section.tiers, section.rules)
    if errors:
        raise ValidationError.from_exception_data(type(section).__name__, errors)
    return section


class RulesConfig(StrictModel):
    """The rules section on its own: `[points]`, `[[tiers]]`, `[[rules]]`, and the goods they may
    not touch (`[no_rewards]`, `[[price_floors]]`, see eligibility.py)."""

    points: PointsConfig = PointsConfig()
    tiers: list[TierConfig] = []
    rules: list[Rule] = []
    no_rewards: NoRewardsConfig = NoRewardsConfig()
    price_floors: list[PriceFloor] = []
    refunds: RefundsConfig = RefundsConfig()

    _check = model_validator(mode="after")(check_rules_section)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RulesConfig:
        """Validate the rules section of a parsed config; other top-level tables are ignored."""
        section = {k: data[k] for k in RULES_SECTION_KEYS if k in data}
        return cls.model_validate(section)


class RulesConfigError(Exception):
    """The rules section cannot be used; `problems` has one readable line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid rules\n" + "\n".join(f"  - {p}" for p in problems))


def describe_location(loc: tuple[int | str, ...], data: Any) -> str:
    """`rules[2] (id "gold-10").percent` from a pydantic location (union tags left out)."""
    parts: list[str] = []
    node: Any = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and 0 <= item < len(node):
                node = node[item]
                if isinstance(node, dict) and isinstance(node.get("id"), str):
                    label += f' (id "{node["id"]}")'
                elif isinstance(node, dict) and isinstance(node.get("name"), str):
                    label += f' (name "{node["name"]}")'
            else:
                node = None
            parts.append(label)
            continue
        if isinstance(node, dict) and item in RULE_KINDS and node.get("kind") == item:
            continue  # the discriminated-union tag, not a key in the file
        if item.startswith("function-") or item in {"constrained-str", "list[...]"}:
            continue
        parts.append(("." if parts else "") + item)
        node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def _message(err: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind == "extra_forbidden":
        return "unknown key (check the spelling against the rule format)"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        return f"unknown kind {ctx.get('tag')!r} (expected one of: {', '.join(RULE_KINDS)})"
    if kind == "union_tag_not_found":
        return f"'kind' is missing (expected one of: {', '.join(RULE_KINDS)})"
    if kind == "greater_than_equal" and ctx.get("ge") == 0:
        return f"must not be negative, got {value!r}"
    if kind == "rules_config":
        return str(err["msg"])
    message = str(err["msg"]).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == "^[a-z0-9-]+$":
        message = "must use only a-z, 0-9 and '-'"
    if isinstance(value, str | int | float | Decimal | date) and not isinstance(value, bool):
        message += f", got {value!r}" if not isinstance(value, Decimal) else f", got {value}"
    return message


RULES_SECTION_KEYS = frozenset(
    {"points", "tiers", "rules", "no_rewards", "price_floors", "refunds"}
)
"""Top-level keys of the rule format; a settings model embedding them formats their errors here."""


def format_rules_error(err: Any, data: Any) -> str:
    """One pydantic error as a line, e.g.
    `rules[2] (id "gold-10").percent: must be between 0 and 100, got 150`."""
    loc = tuple(err["loc"])
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc += ("kind",)  # the problem is the `kind` key itself
    return f"{describe_location(loc, data)}: {_message(err)}"


def format_rules_errors(exc: ValidationError, data: Any) -> list[str]:
    """One line per problem (see `format_rules_error`)."""
    return [format_rules_error(err, data) for err in exc.errors(include_url=False)]


def rules_config_from_dict(data: dict[str, Any], *, source: str = "<dict>") -> RulesConfig:
    """Validate, turning a pydantic error into `RulesConfigError` with readable lines."""
    try:
        return RulesConfig.from_dict(data)
    except ValidationError as exc:
        raise RulesConfigError(source, format_rules_errors(exc, data)) from None


def load_rules_file(path: str | Path) -> RulesConfig:
    """Read a TOML file holding `[points]`/`[[tiers]]`/`[[rules]]` (a full config.toml is fine)."""
    source = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesConfigError(source, ["file not found"]) from None
    except UnicodeDecodeError:
        raise RulesConfigError(source, ["the file is not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesConfigError(source, [f"not valid TOML: {exc}"]) from None
    return rules_config_from_dict(data, source=source)
