"""pos-loyalty: the in-store loyalty engine (domain, rules, ledger, coupons, identity, CLI)."""

__version__ = "0.1.0"
