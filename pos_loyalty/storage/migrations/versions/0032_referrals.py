"""Referrals: each customer's referral code, and who brought whom (rewarded once).

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from pos_loyalty.storage.types import UTCDateTime

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "referral_codes",
        sa.Column("code", sa.String(16), primary_key=True),
        sa.Column("customer_id", sa.String(32), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "referrals",
        sa.Column("new_customer_id", sa.String(32), primary_key=True),
        sa.Column("referrer_id", sa.String(32), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("rewarded_at", UTCDateTime(), nullable=True),
        sa.Column("transaction_id", sa.String(32), nullable=True),
        sa.Column("rule_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_referrals_referrer_id", "referrals", ["referrer_id"])


def downgrade() -> None:
    op.drop_table("referrals")
    op.drop_table("referral_codes")
