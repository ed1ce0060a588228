"""The loyalty rules engine: the rule format, its compiled form and the pure `evaluate`."""

from pos_loyalty.rules.compiled import CompiledRules, compile_rules, rules_version
from pos_loyalty.rules.config import (
    PointsConfig,
    Rule,
    RulesConfig,
    RulesConfigError,
    TierConfig,
    check_rules_section,
    format_rules_errors,
    load_rules_file,
    rules_config_from_dict,
)
from pos_loyalty.rules.engine import evaluate
from pos_loyalty.rules.inputs import (
    Basket,
    BasketLine,
    CouponSnapshot,
    CustomerHistory,
    CustomerSnapshot,
    ItemHistory,
    PresentedCoupon,
)
from pos_loyalty.rules.quote import Quote

__all__ = [
    "Basket",
    "BasketLine",
    "CompiledRules",
    "CouponSnapshot",
    "CustomerHistory",
    "CustomerSnapshot",
    "ItemHistory",
    "PointsConfig",
    "PresentedCoupon",
    "Quote",
    "Rule",
    "RulesConfig",
    "RulesConfigError",
    "TierConfig",
    "check_rules_section",
    "compile_rules",
    "evaluate",
    "format_rules_errors",
    "load_rules_file",
    "rules_config_from_dict",
    "rules_version",
]
