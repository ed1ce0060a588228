"""Segments: each customer's RFM scores and named segment (`customer_segments`), and an index
on transactions (customer_id, created_at) for the purchase-history queries: without it
PostgreSQL's generic plan for a prepared `customer_id = $1 AND created_at >= $2` ANDs the
customer index with half the created_at index (40 ms instead of 1 ms).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from pos_loyalty.storage.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_segments",
        sa.Column("customer_id", sa.String(32), sa.ForeignKey("customers.id"), primary_key=True),
        sa.Column("segment", sa.String(32), nullable=False),
        sa.Column("r_score", sa.SmallInteger(), nullable=False),
        sa.Column("f_score", sa.SmallInteger(), nullable=False),
        sa.Column("m_score", sa.SmallInteger(), nullable=False),
        sa.Column("frequency", sa.Integer(), nullable=False),
        sa.Column("monetary", sa.BigInteger(), nullable=False),
        sa.Column("first_purchase_at", UTCDateTime(), nullable=False),
        sa.Column("last_purchase_at", UTCDateTime(), nullable=False),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_customer_segments_segment", "customer_segments", ["segment"])
    op.create_index(
        "ix_transactions_customer_created", "transactions", ["customer_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_transactions_customer_created", table_name="transactions")
    op.drop_index("ix_customer_segments_segment", table_name="customer_segments")
    op.drop_table("customer_segments")
