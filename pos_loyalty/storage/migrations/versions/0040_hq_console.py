"""Head-office console: who published each bundle, and the figures stores report with each pull
(points owed, coupons, RFM segments), one row per store and day.

Revision ID: 0040
Revises: 0035
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

from pos_loyalty.storage.types import UTCDateTime

revision = "0040"
down_revision = "0035"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hq_bundles") as batch:
        batch.add_column(
            sa.Column("published_by", sa.String(200), nullable=False, server_default="")
        )
    op.create_table(
        "hq_store_figures",
        sa.Column("store_id", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("reported_at", UTCDateTime(), nullable=False),
        sa.Column("database", sa.String(200), nullable=False),
        sa.Column("liability_points", sa.BigInteger(), nullable=False),
        sa.Column("liability", sa.BigInteger(), nullable=False),
        sa.Column("coupons_issued", sa.Integer(), nullable=False),
        sa.Column("coupons_redeemed", sa.Integer(), nullable=False),
        sa.Column("coupons_expired", sa.Integer(), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("segments", sa.JSON(), nullable=False),
        sa.Column("segments_at", UTCDateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("hq_store_figures")
    with op.batch_alter_table("hq_bundles") as batch:
        batch.drop_column("published_by")
