"""Today's figures read a day of rows, not whole tables; head office sync counts its failures.

`/metrics` and the back office sum today's refunds, points and coupons (`reports.figures`):
without these indexes each scrape read every ledger entry, refund and coupon ever written.
`store_sync_state.failures` counts failed pulls for `/metrics` (refusals were already counted).

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-09
"""

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ledger_entries_created_at", "ledger_entries", ["created_at"])
    op.create_index("ix_coupons_created_at", "coupons", ["created_at"])
    op.create_index("ix_coupons_redeemed_at", "coupons", ["redeemed_at"])
    op.create_index("ix_refunds_created_at", "refunds", ["created_at"])
    with op.batch_alter_table("store_sync_state") as batch:
        batch.add_column(sa.Column("failures", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("store_sync_state") as batch:
        batch.drop_column("failures")
    op.drop_index("ix_refunds_created_at", "refunds")
    op.drop_index("ix_coupons_redeemed_at", "coupons")
    op.drop_index("ix_coupons_created_at", "coupons")
    op.drop_index("ix_ledger_entries_created_at", "ledger_entries")
