"""Customer care under 152-FZ: accounts can be closed (erased or merged into another), and every
operator action on a customer's data is kept in `audit_log`.

Revision ID: 0030
Revises: 0010 (after head office's bundles: one line of migrations)
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from pos_loyalty.storage.types import UTCDateTime

revision = "0030"
down_revision = "0010"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("closed_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("merged_into_id", sa.String(32), nullable=True))
    op.create_table(
        "audit_log",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_log_customer_id_id", "audit_log", ["customer_id", "id"])


def downgrade() -> None:
    op.drop_table("audit_log")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("merged_into_id")
        batch.drop_column("closed_at")
