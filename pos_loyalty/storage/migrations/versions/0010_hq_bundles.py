"""Head office: published rule bundles and the store registry; at a store, the bundles it accepted
and how its last sync went.

Revision ID: 0010
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

from pos_loyalty.storage.types import UTCDateTime

revision = "0010"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hq_bundles",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("published_at", UTCDateTime(), nullable=False),
        sa.Column("effective_from", UTCDateTime(), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(1000), nullable=False),
        sa.Column("rollback_of", sa.Integer(), nullable=True),
        sa.Column("envelope", sa.Text(), nullable=False),
    )
    op.create_table(
        "hq_stores",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("api_key_id", sa.Integer(), sa.ForeignKey("api_keys.id"), nullable=True),
        sa.Column("registered_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=True),
        sa.Column("active_version", sa.Integer(), nullable=True),
        sa.Column("pending_version", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=False),
        sa.Column("software_version", sa.String(64), nullable=False),
    )
    op.create_index("ix_hq_stores_region", "hq_stores", ["region"])
    op.create_index("ix_hq_stores_api_key_id", "hq_stores", ["api_key_id"])
    op.create_table(
        "store_bundles",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("effective_from", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("activated_at", UTCDateTime(), nullable=True),
        sa.Column("envelope", sa.Text(), nullable=False),
    )
    op.create_table(
        "store_sync_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("last_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("last_success_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=False),
        sa.Column("last_error_at", UTCDateTime(), nullable=True),
        sa.Column("refusals", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("store_sync_state")
    op.drop_table("store_bundles")
    op.drop_index("ix_hq_stores_api_key_id", "hq_stores")
    op.drop_index("ix_hq_stores_region", "hq_stores")
    op.drop_table("hq_stores")
    op.drop_table("hq_bundles")
