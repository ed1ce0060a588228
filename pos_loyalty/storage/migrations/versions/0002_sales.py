"""Sales: quotes, transactions, refunds, idempotency records, the points ledger, coupons,
stamp counters and the receipt outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from pos_loyalty.storage.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# SQLite only auto-numbers an `INTEGER PRIMARY KEY`; PostgreSQL gets a bigint.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "coupons",
        sa.Column("code", sa.String(11), nullable=False),
        sa.Column("owner_customer_id", sa.String(32), nullable=True),
        sa.Column("rule_id", sa.String(64), nullable=True),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("amount_off", sa.BigInteger(), nullable=True),
        sa.Column("percent_off", sa.Integer(), nullable=True),
        sa.Column("min_subtotal", sa.BigInteger(), nullable=False),
        sa.Column("skus", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("valid_from", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("issued_by_transaction_id", sa.String(32), nullable=True),
        sa.Column("redeemed_by_transaction_id", sa.String(32), nullable=True),
        sa.Column("redeemed_at", UTCDateTime(), nullable=True),
        sa.Column("cancelled_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_index(
        "ix_coupons_issued_by_transaction_id", "coupons", ["issued_by_transaction_id"], unique=False
    )
    op.create_index("ix_coupons_owner_customer_id", "coupons", ["owner_customer_id"], unique=False)

    op.create_table(
        "idempotency_keys",
        sa.Column("key_owner", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("endpoint", sa.String(100), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key_owner", "key"),
    )
    op.create_index(
        "ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"], unique=False
    )

    op.create_table(
        "quotes",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("rules_version", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=True),
        sa.Column("lane_id", sa.String(64), nullable=True),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_quotes_expires_at", "quotes", ["expires_at"], unique=False)

    op.create_table(
        "transactions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("store_id", sa.String(64), nullable=False),
        sa.Column("lane_id", sa.String(64), nullable=True),
        sa.Column("customer_id", sa.String(32), nullable=True),
        sa.Column("quote_id", sa.String(32), nullable=True),
        sa.Column("rules_version", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("subtotal", sa.BigInteger(), nullable=False),
        sa.Column("discount_total", sa.BigInteger(), nullable=False),
        sa.Column("burn_value", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("points_earned", sa.BigInteger(), nullable=False),
        sa.Column("points_burned", sa.BigInteger(), nullable=False),
        sa.Column("payment_method", sa.String(32), nullable=True),
        sa.Column("paid", sa.BigInteger(), nullable=True),
        sa.Column("change", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("refunded_amount", sa.BigInteger(), nullable=False),
        sa.Column("stamps", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_transactions_created_at", "transactions", ["created_at"], unique=False)
    op.create_index("ix_transactions_customer_id", "transactions", ["customer_id"], unique=False)
    op.create_index("ux_transactions_quote_id", "transactions", ["quote_id"], unique=True)

    op.create_table(
        "ledger_entries",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("lot_id", sa.BigInteger(), nullable=True),
        sa.Column("expired_lot_id", sa.BigInteger(), nullable=True),
        sa.Column("reverses_id", sa.BigInteger(), nullable=True),
        sa.Column("transaction_id", sa.String(32), nullable=True),
        sa.Column("refund_id", sa.String(32), nullable=True),
        sa.Column("rule_id", sa.String(64), nullable=True),
        sa.Column("note", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("expired_lot_id"),
    )
    op.create_index(
        "ix_ledger_entries_customer_id_id", "ledger_entries", ["customer_id", "id"], unique=False
    )
    op.create_index("ix_ledger_entries_expires_at", "ledger_entries", ["expires_at"], unique=False)
    op.create_index(
        "ix_ledger_entries_reverses_id", "ledger_entries", ["reverses_id"], unique=False
    )
    op.create_index(
        "ix_ledger_entries_transaction_id", "ledger_entries", ["transaction_id"], unique=False
    )

    op.create_table(
        "receipt_outbox",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("transaction_id", sa.String(32), nullable=False),
        sa.Column("refund_id", sa.String(32), nullable=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("lane_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_receipt_outbox_status_id", "receipt_outbox", ["status", "id"], unique=False)
    op.create_index(
        "ix_receipt_outbox_transaction_id", "receipt_outbox", ["transaction_id"], unique=False
    )

    op.create_table(
        "refunds",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("transaction_id", sa.String(32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("points_earn_reversed", sa.BigInteger(), nullable=False),
        sa.Column("points_burn_returned", sa.BigInteger(), nullable=False),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_refunds_transaction_id", "refunds", ["transaction_id"], unique=False)

    op.create_table(
        "stamp_counters",
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
        ),
        sa.PrimaryKeyConstraint("customer_id", "rule_id"),
    )
    op.create_table(
        "transaction_lines",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("transaction_id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("qty_milli", sa.BigInteger(), nullable=False),
        sa.Column("unit_price", sa.BigInteger(), nullable=False),
        sa.Column("subtotal", sa.BigInteger(), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("burn", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("stamps", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ux_transaction_lines_position",
        "transaction_lines",
        ["transaction_id", "position"],
        unique=True,
    )

    op.create_table(
        "refund_lines",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("refund_id", sa.String(32), nullable=False),
        sa.Column("transaction_id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("qty_milli", sa.BigInteger(), nullable=False),
        sa.Column("subtotal", sa.BigInteger(), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("burn", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["refund_id"],
            ["refunds.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_refund_lines_refund_id", "refund_lines", ["refund_id"], unique=False)
    op.create_index(
        "ix_refund_lines_transaction_id", "refund_lines", ["transaction_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("refund_lines")
    op.drop_table("transaction_lines")
    op.drop_table("stamp_counters")
    op.drop_table("refunds")
    op.drop_table("receipt_outbox")
    op.drop_table("ledger_entries")
    op.drop_table("transactions")
    op.drop_table("quotes")
    op.drop_table("idempotency_keys")
    op.drop_table("coupons")
