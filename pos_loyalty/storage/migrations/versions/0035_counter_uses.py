"""What each sale added to its rules' counters, so a refund gives it back.

Revision ID: 0035
Revises: 0033
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rule_counter_uses",
        sa.Column("transaction_id", sa.String(32), primary_key=True),
        sa.Column("rule_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(160), primary_key=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("in_proportion", sa.Boolean(), nullable=False),
        sa.Column("returned", sa.BigInteger(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("rule_counter_uses")
