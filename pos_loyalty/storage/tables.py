"""Every table of the project, imported in one place so the metadata is complete for migrations."""

from sqlmodel import SQLModel

from pos_loyalty.apikeys.models import ApiKey
from pos_loyalty.audit.models import AuditEntry
from pos_loyalty.coupons.models import Coupon
from pos_loyalty.customers.models import Card, Customer
from pos_loyalty.customers.referrals import Referral, ReferralCode
from pos_loyalty.hq.models import (
    AcceptedBundle,
    PublishedBundle,
    RegisteredStore,
    StoreFiguresReport,
    SyncState,
)
from pos_loyalty.ledger.models import LedgerEntry, LotCheckpoint
from pos_loyalty.sales.counters import CounterUse, RuleCounter
from pos_loyalty.sales.models import (
    IdempotencyRecord,
    ReceiptOutbox,
    Refund,
    RefundLine,
    SaleTransaction,
    StampCounter,
    StoredQuote,
    TransactionLine,
)
from pos_loyalty.segments.models import CustomerSegment

metadata = SQLModel.metadata

__all__ = [
    "AcceptedBundle",
    "ApiKey",
    "AuditEntry",
    "Card",
    "CounterUse",
    "Coupon",
    "Customer",
    "CustomerSegment",
    "IdempotencyRecord",
    "LedgerEntry",
    "LotCheckpoint",
    "PublishedBundle",
    "ReceiptOutbox",
    "Referral",
    "ReferralCode",
    "Refund",
    "RefundLine",
    "RegisteredStore",
    "RuleCounter",
    "SaleTransaction",
    "StampCounter",
    "StoreFiguresReport",
    "StoredQuote",
    "SyncState",
    "TransactionLine",
    "metadata",
]
