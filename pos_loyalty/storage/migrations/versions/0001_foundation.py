"""Foundation: customers, cards, API keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from pos_loyalty.storage.types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("phone_hash", sa.String(64), nullable=False),
        sa.Column("phone_e164", sa.String(32), nullable=True),
        sa.Column("phone_masked", sa.String(32), nullable=False),
        sa.Column("birthday", sa.Date(), nullable=True),
        sa.Column("consents", sa.JSON(), nullable=False),
        sa.Column("lifetime_spend", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("points_balance", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_customers_phone_hash", "customers", ["phone_hash"], unique=True)
    op.create_table(
        "cards",
        sa.Column("number", sa.String(19), primary_key=True),
        sa.Column("customer_id", sa.String(32), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_cards_customer_id", "cards", ["customer_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("label", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_api_keys_key_hash", "api_keys", ["key_hash"], unique=True)


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_table("cards")
    op.drop_table("customers")
