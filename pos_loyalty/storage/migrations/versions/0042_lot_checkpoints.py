"""Lot checkpoints: how far each customer's lots are known to be used up, so the receipt's
"Сгорят" line reads the lots after it instead of the customer's whole ledger; and the two indexes
that read finds them by: a customer's credits in lot order, and the debits pinned to a lot.

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

from pos_loyalty.storage.types import UTCDateTime

revision = "0042"
down_revision = "0041"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lot_checkpoints",
        sa.Column("customer_id", sa.String(32), sa.ForeignKey("customers.id"), primary_key=True),
        sa.Column("settled_expires_at", UTCDateTime(), nullable=True),
        sa.Column("settled_entry_id", sa.BigInteger(), nullable=False),
        sa.Column("seen_entry_id", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_ledger_entries_lots",
        "ledger_entries",
        ["customer_id", "expires_at", "id"],
        sqlite_where=sa.text("points > 0"),
        postgresql_where=sa.text("points > 0"),
    )
    op.create_index("ix_ledger_entries_lot_id", "ledger_entries", ["lot_id"])


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_lot_id", "ledger_entries")
    op.drop_index("ix_ledger_entries_lots", "ledger_entries")
    op.drop_table("lot_checkpoints")
