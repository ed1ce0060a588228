"""Which goods a reward may touch, and how far: `[no_rewards]` and `[[price_floors]]`.

Some goods must not be discounted by any means (tobacco: 15-FZ art. 16), others must not be sold
below a minimum retail price (alcohol). These are store law, not promotions, so they sit beside the
rules and bind every one of them: the engine takes excluded lines out of the program altogether
(no discount, coupon, free stamp unit or points burn; no points earned unless `earn_points`), and
caps whatever reaches a floored line at its floor.

```toml
[no_rewards]
categories = ["tobacco"]
skus = []
earn_points = false            # true: the goods still earn bonus points
label = "Табачная продукция"   # how the cashier hears about them

[[price_floors]]
categories = ["vodka"]
min_unit_price = 34900         # 349,00 ₽ a unit (a kilogram for weighed goods)
label = "Минимальная цена на водку"
```
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, NonNegativeInt, model_validator

from pos_loyalty.money import Qty, line_amount
from pos_loyalty.plain_text import PlainText
from pos_loyalty.rules.messages import is_russian
from pos_loyalty.rules.quote import Notice
from pos_loyalty.strict import StrictModel

_Code = Annotated[PlainText, Field(min_length=1, max_length=64)]
_Label = Annotated[PlainText, Field(min_length=1, max_length=60)]


class NoRewardsConfig(StrictModel):
    """`[no_rewards]`: goods no reward may touch."""

    categories: list[_Code] = []
    skus: list[_Code] = []
    earn_points: bool = False
    label: _Label = "Товары вне программы лояльности"


class PriceFloor(StrictModel):
    """`[[price_floors]]`: no combination of rewards takes a unit of these goods below the price."""

    categories: list[_Code] = []
    skus: list[_Code] = []
    min_unit_price: NonNegativeInt
    label: _Label = "Минимальная цена"

    @model_validator(mode="after")
    def _names_goods(self) -> PriceFloor:
        if not self.categories and not self.skus:
            raise ValueError("a price floor needs 'skus' or 'categories'")
        return self


@dataclass(frozen=True, slots=True)
class RewardGuard:
    """The compiled `[no_rewards]` and `[[price_floors]]`; a sku's own floor wins over its
    category's, and the highest applies when several name the same goods."""

    excluded_skus: frozenset[str]
    excluded_categories: frozenset[str]
    earn_points: bool
    label: str
    floor_by_sku: dict[str, tuple[int, str]]
    floor_by_category: dict[str, tuple[int, str]]

    @property
    def has_floors(self) -> bool:
        return bool(self.floor_by_sku or self.floor_by_category)

    def excludes(self, sku: str, category: str) -> bool:
        """True when no reward may touch the goods."""
        return sku in self.excluded_skus or category in self.excluded_categories

    def floor(self, sku: str, category: str) -> tuple[int, str] | None:
        """(minimum unit price, the floor's label) for the goods, or None."""
        found = self.floor_by_sku.get(sku)
        if found is not None:
            return found
        return self.floor_by_category.get(category)

    def floor_amount(self, sku: str, category: str, qty: Qty) -> int:
        """The least a line of `qty` units may cost after rewards (0: no floor)."""
        found = self.floor(sku, category)
        return line_amount(found[0], qty) if found is not None else 0


def compile_guard(no_rewards: NoRewardsConfig, floors: list[PriceFloor]) -> RewardGuard:
    """One guard per rules bundle."""
    by_sku: dict[str, tuple[int, str]] = {}
    by_category: dict[str, tuple[int, str]] = {}
    for floor in floors:
        for table, keys in ((by_sku, floor.skus), (by_category, floor.categories)):
            for key in keys:
                if key not in table or table[key][0] < floor.min_unit_price:
                    table[key] = (floor.min_unit_price, floor.label)
    return RewardGuard(
        excluded_skus=frozenset(no_rewards.skus),
        excluded_categories=frozenset(no_rewards.categories),
        earn_points=no_rewards.earn_points,
        label=no_rewards.label,
        floor_by_sku=by_sku,
        floor_by_category=by_category,
    )


NO_GUARD = compile_guard(NoRewardsConfig(), [])


def eligibility_notices(
    protected: Sequence[Any],
    rewardable: Sequence[Any],
    floor_cuts: Sequence[tuple[str, str, Any, int]],
    guard: RewardGuard,
    money: Callable[[int], str],
    locale: str,
) -> tuple[Notice, ...]:
    """What the cashier is told about excluded goods and floor cuts (lines are engine lines)."""
    if not protected and not floor_cuts:
        return ()
    ru = is_russian(locale)
    notices: list[Notice] = []
    if ru:
        what = "скидки, купоны и оплата баллами" if guard.earn_points else "скидки, купоны и баллы"
    else:
        what = "discounts, coupons and points" + (" payment" if guard.earn_points else "")
    if protected and not rewardable:
        text = (
            f"{guard.label}: {what} не применяются — в этом чеке вознаграждения нет"
            if ru
            else f"{guard.label}: no {what} — this basket gets no reward"
        )
        notices.append(Notice("no_rewards_basket", text))
    elif protected:
        names = ", ".join(sorted({ln.src.name for ln in protected}))
        text = (
            f"{guard.label}: {what} не применяются — {names}"
            if ru
            else f"{guard.label}: no {what} — {names}"
        )
        notices.append(Notice("no_rewards_lines", text))
    for rule_id, label, line, cut in floor_cuts:
        found = guard.floor(line.sku, line.category)
        floor_price, floor_label = found if found is not None else (0, "")
        text = (
            f"«{label}»: на {money(cut)} меньше — «{line.src.name}» не дешевле "
            f"{money(floor_price)} за единицу ({floor_label})"
            if ru
            else f"'{label}': {money(cut)} less — '{line.src.name}' not below "
            f"{money(floor_price)} a unit ({floor_label})"
        )
        notices.append(Notice("price_floor", text, rule_id=rule_id, sku=line.sku, amount=cut))
    return tuple(notices)
